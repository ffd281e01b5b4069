"""Fetching a source's bytes without trusting it: http(s) or a configured file, conditional, bounded.

Redirects are followed by hand so every hop is checked (scheme, count, and, by the client's pinned transport
of shared/outbound.py, the addresses it connects to); bodies are streamed and cut off at a maximum size; each
attempt ends within its timeout, connection and every read together, so a server trickling bytes cannot
hold it; transient failures (connection errors, timeouts, 5xx, 429) are retried with exponential backoff;
anything else fails at once with a reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from shared.outbound import TargetRefused

log = logging.getLogger(__name__)

ALLOWED_SCHEMES = ("http", "https")
USER_AGENT = "mews-ingest/0.1 (+https://github.com/mews)"


class FetchError(Exception):
    """A fetch failed; `code` is a metric label, `hostile` marks content refused (not a network hiccup)."""

    def __init__(self, code: str, detail: str, *, hostile: bool = False, body: bytes = b"") -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.hostile = hostile
        self.body = body


@dataclass(frozen=True)
class Validators:
    """What a server said identifies its current version; sent back to ask 'has it changed?'."""

    etag: str = ""
    last_modified: str = ""


@dataclass(frozen=True)
class Fetched:
    """A fetch result: body is None when the source has not changed since `validators` were seen."""

    body: bytes | None
    validators: Validators
    final_url: str = ""
    content_type: str = ""

    @property
    def not_modified(self) -> bool:
        return self.body is None


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on one fetch."""

    max_bytes: int = 50_000_000
    timeout_s: float = 20.0  # one attempt, from connecting to the last byte of the last redirect hop
    retries: int = 3
    backoff_s: float = 1.0
    max_redirects: int = 5


async def fetch_url(client: httpx.AsyncClient, url: str, previous: Validators, limits: FetchLimits) -> Fetched:
    """GET an http(s) URL conditionally, retrying transient failures with backoff."""
    attempt = 0
    while True:
        try:
            try:
                async with asyncio.timeout(limits.timeout_s):
                    return await _fetch_once(client, url, previous, limits)
            except TimeoutError as exc:
                raise FetchError("timeout", f"no whole answer within {limits.timeout_s:g} s from {url[:200]}") from exc
        except FetchError as exc:
            if exc.hostile or exc.code not in ("network", "timeout", "server_error") or attempt >= limits.retries:
                raise
            delay = limits.backoff_s * (2**attempt)
            attempt += 1
            log.info("fetch retry", extra={"url": url, "attempt": attempt, "reason": exc.detail, "delay_s": delay})
            await asyncio.sleep(delay)


async def _fetch_once(client: httpx.AsyncClient, url: str, previous: Validators, limits: FetchLimits) -> Fetched:
    headers = {"User-Agent": USER_AGENT}
    if previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    current = url
    for hop in range(limits.max_redirects + 1):
        scheme = urlsplit(current).scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise FetchError("scheme", f"scheme {scheme or '(none)'!r} refused for {current[:200]}", hostile=True)
        try:
            async with client.stream(
                "GET", current, headers=headers, follow_redirects=False, timeout=limits.timeout_s
            ) as response:
                if response.status_code == 304:
                    return Fetched(None, previous, current)
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location", "")
                    if not location:
                        raise FetchError("http_error", f"redirect without Location from {current[:200]}")
                    current = urljoin(current, location)
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    raise FetchError("server_error", f"HTTP {response.status_code} from {current[:200]}")
                if response.status_code != 200:
                    raise FetchError("http_error", f"HTTP {response.status_code} from {current[:200]}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limits.max_bytes:
                    raise FetchError("too_large", f"body of {declared} bytes exceeds {limits.max_bytes}", hostile=True)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limits.max_bytes:
                        raise FetchError(
                            "too_large",
                            f"body exceeds {limits.max_bytes} bytes",
                            hostile=True,
                            body=b"".join(chunks)[:4096],
                        )
                    chunks.append(chunk)
                validators = Validators(response.headers.get("etag", ""), response.headers.get("last-modified", ""))
                return Fetched(b"".join(chunks), validators, current, response.headers.get("content-type", ""))
        except TargetRefused as exc:
            # The configured URL is the operator's; a hop to a refused address is the server's doing.
            code = "unsafe_redirect" if hop else "unsafe_target"
            raise FetchError(code, f"{exc.refusal.detail} (for {current[:200]})", hostile=True) from exc
        except httpx.TimeoutException as exc:
            raise FetchError("timeout", f"timed out fetching {current[:200]}: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise FetchError("network", f"cannot fetch {current[:200]}: {type(exc).__name__}: {exc}") from exc
    raise FetchError("redirects", f"more than {limits.max_redirects} redirects from {url[:200]}", hostile=True)


def fetch_file(path: Path, previous: Validators, limits: FetchLimits) -> Fetched:
    """Read a configured file; its size and mtime act as the ETag so an unchanged file is not re-read."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise FetchError("missing", f"cannot read {path.name}: {exc.strerror}") from exc
    if stat.st_size > limits.max_bytes:
        raise FetchError("too_large", f"file of {stat.st_size} bytes exceeds {limits.max_bytes}", hostile=True)
    etag = '"' + hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:32] + '"'
    if previous.etag == etag:
        return Fetched(None, previous, str(path))
    with path.open("rb") as fh:
        body = fh.read(limits.max_bytes + 1)
    if len(body) > limits.max_bytes:
        raise FetchError("too_large", f"file exceeds {limits.max_bytes} bytes", hostile=True)
    return Fetched(body, Validators(etag=etag), str(path))
