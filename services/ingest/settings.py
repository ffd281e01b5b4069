"""Settings of the ingest service, from MEWS_INGEST_* environment variables."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from shared.settings import CommonSettings

_KEY_ENTRY = re.compile(r"^(?:(?P<name>[A-Za-z0-9_.-]{1,64})=)?(?P<digest>[0-9a-f]{64}):(?P<scopes>[a-z+]+)$")


@dataclass(frozen=True)
class ApiKey:
    """One configured API key: a name for logs and default sources, its sha256 digest, its scopes."""

    name: str
    digest: bytes
    scopes: frozenset[str]


def parse_api_keys(spec: str) -> tuple[ApiKey, ...]:
    """Parse `[name=]<sha256hex>:scope+scope,...`; a bad entry raises naming its position, never its value."""
    keys = []
    for position, raw in enumerate((p.strip() for p in spec.split(",")), start=1):
        if not raw:
            continue
        name, _, rest = raw.rpartition("=")
        match = _KEY_ENTRY.match(f"{name}={rest.lower()}" if name else rest.lower())
        if match is None:
            raise ValueError(f"API key entry {position} is not '[name=]<64 hex sha256>:scope[+scope]'")
        digest = match["digest"]
        keys.append(ApiKey(name=match["name"] or f"key{digest[:8]}", digest=bytes.fromhex(digest),
                           scopes=frozenset(match["scopes"].split("+"))))
    return tuple(keys)


def digest_of(key: str) -> str:
    """The sha256 hex digest under which a plain API key is configured."""
    return hashlib.sha256(key.encode()).hexdigest()


class IngestSettings(CommonSettings):
    """What the ingest API and poller need; defaults run locally."""

    ingest_port: int = Field(default=8001, ge=1, le=65535)
    ingest_host: str = "127.0.0.1"
    ingest_api_keys: SecretStr = Field(default=SecretStr(""),
                                       description="Comma-separated [name=]<sha256hex>:scope[+scope]")
    ingest_state_dir: Path = Path("var/ingest")
    ingest_max_batch: int = Field(default=1000, ge=1, le=100_000)
    ingest_max_body_bytes: int = Field(default=2_000_000, ge=1024)
    ingest_fetch_max_bytes: int = Field(default=50_000_000, ge=1024)
    ingest_fetch_timeout_s: float = Field(default=20.0, gt=0)
    ingest_fetch_retries: int = Field(default=3, ge=0, le=10)
    ingest_fetch_backoff_s: float = Field(default=1.0, ge=0)
    ingest_max_redirects: int = Field(default=5, ge=0, le=20)
    ingest_future_tolerance_s: float = Field(default=86_400.0, ge=0,
                                             description="How far past now a timestamp may lie (clock skew)")

    @field_validator("ingest_api_keys")
    @classmethod
    def _keys_parse(cls, v: SecretStr) -> SecretStr:
        parse_api_keys(v.get_secret_value())
        return v

    def api_keys(self) -> tuple[ApiKey, ...]:
        return parse_api_keys(self.ingest_api_keys.get_secret_value())

    @property
    def seen_store_path(self) -> Path:
        return self.ingest_state_dir / "seen.sqlite3"
