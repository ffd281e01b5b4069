"""Prometheus Alertmanager as the anchor of the notifier benchmarks: installed when missing, run on free ports."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from .trees import ROOT, stop_service, wait_ready

INSTALL_SCRIPT = ROOT / "deploy" / "tools" / "install-alertmanager.sh"


def find_or_install() -> str:
    """The Alertmanager binary; installs the Debian package (apt-get, as root) when there is none."""
    for name in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(name)
        if found:
            return found
    print(
        "Alertmanager not found: installing the Debian package prometheus-alertmanager "
        "(apt-get update && apt-get install -y, needs root) ...",
        flush=True,
    )
    done = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"could not install Alertmanager: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "unknown version"


def fanout_config(receivers: list[tuple[str, str]]) -> str:
    """Every alert to every receiver: one `continue: true` route each, one group per alert, no group wait."""
    config = {
        "route": {
            "receiver": "unrouted",
            "group_by": ["..."],  # every label set its own group, so nothing waits for companions
            "group_wait": "0s",
            "group_interval": "5m",  # Alertmanager refuses 0; only repeats of a changed group wait for it
            "repeat_interval": "4h",
            "routes": [{"receiver": name, "continue": True} for name, _ in receivers],
        },
        "receivers": [{"name": "unrouted"}]
        + [{"name": name, "webhook_configs": [{"url": url, "send_resolved": False}]} for name, url in receivers],
    }
    return yaml.safe_dump(config, sort_keys=False)


@contextlib.contextmanager
def running(binary: str, config: str, port: int) -> Iterator[str]:
    """An Alertmanager alone (no cluster) on 127.0.0.1:`port` with this configuration; its base URL."""
    with tempfile.TemporaryDirectory(prefix="mews-bench-am-") as tmp:
        work = Path(tmp)
        (work / "alertmanager.yml").write_text(config)
        log = work / "alertmanager.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={work / 'alertmanager.yml'}",
                    f"--storage.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(f"{base}/-/ready", proc, log, timeout=30)
            yield base
        finally:
            stop_service(proc, grace=10)
