"""The code a benchmark measures: the working tree, or an earlier commit extracted with `git archive`."""

from __future__ import annotations

import compileall
import contextlib
import io
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def code_tree(rev: str | None) -> Iterator[Path]:
    """The root of the working tree (rev None), or of `rev`'s services/ and shared/ in a temporary folder."""
    if rev is None:
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="mews-rev-") as tmp:
        extract(rev, Path(tmp))
        yield Path(tmp)


def extract(rev: str, into: Path) -> None:
    """The services/ and shared/ folders of commit `rev`, written under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "services", "shared"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def compile_tree(root: Path) -> None:
    """Byte-compile a tree's services/ and shared/, as installing the image does.

    A process started on the tree then reads the compiled modules instead of compiling some fifty of them at each
    start: with PYTHONDONTWRITEBYTECODE set, Python never caches them itself, and a benchmark timing a worker from
    its start would time the compiler too, which no deployed worker runs.
    """
    for folder in ("services", "shared"):
        compileall.compile_dir(root / folder, quiet=1)


def describe_tree(rev: str | None) -> str:
    """`working tree (abc1234 + changes)` or `3389b4b`: what a figure was measured on."""
    if rev is not None:
        return rev
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "services", "shared"], capture_output=True, text=True
    ).stdout.strip()
    return f"working tree ({head}{' + changes' if dirty else ''})"


def with_previous_names(env: dict[str, str]) -> dict[str, str]:
    """`env` plus notify's variables under the names revisions before MEWS_NOTIFY_<NAME> read (MEWS_<NAME>);
    as in the current code, the new name's value wins over an old name's."""
    kept = {"MEWS_NOTIFY_HOST", "MEWS_NOTIFY_PORT"}  # those two had the service's prefix already
    return {
        **env,
        **{
            "MEWS_" + k.removeprefix("MEWS_NOTIFY_"): v
            for k, v in env.items()
            if k.startswith("MEWS_NOTIFY_") and k not in kept
        },
    }


def spawn_service(tree: Path, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """`mews <args>` run from `tree` in a fresh interpreter, its output to `log`."""
    env = {**(env if tree == ROOT else with_previous_names(env)), "PYTHONPATH": str(tree)}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", *args],
            cwd=tree,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_service(proc: subprocess.Popen, grace: float = 20) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Poll `url` until it answers 200; fail at once, with the log's tail, if the process exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while starting:\n{tail(log)}")
        try:
            answer = httpx.get(url, timeout=2)
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s: {last}\n{tail(log)}")


def last_words(log: Path, width: int = 300) -> str:
    """The last line of a log that names an error (else its last line), cut to `width` characters."""
    lines = [line for line in tail(log, 60).splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line or "Exception" in line]
    chosen = (named or lines or ["(empty log)"])[-1].strip()
    return chosen if len(chosen) <= width else chosen[:width] + " ..."


def tail(log: Path, lines: int = 15) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
