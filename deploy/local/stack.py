"""The whole mews system on one machine: Kafka, topics, the three services, a webhook receiver, the demo feed.

`make run` uses it interactively (deploy/local/run.py); the end-to-end and dashboard tests use it as a context
manager, so what the tests prove is what a user starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.kafka import ensure_topics

# Development-only credentials, printed by `make run`; the services refuse them outside development.
from shared.secrets import DEMO_ADMIN_TOKEN, DEMO_INGEST_KEY, DEMO_READ_KEY

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "deploy" / "local" / "kafka.sh"
DEMO_SOURCES = ROOT / "deploy" / "local" / "demo" / "sources.toml"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def run_kafka_script(action: str, env: dict[str, str]) -> None:
    """Start or stop the local broker described by env (KAFKA_PORT, KAFKA_DIR); start must succeed."""
    subprocess.run(["bash", str(KAFKA_SCRIPT), action], env=env, check=action == "start")


@dataclass
class Ports:
    ingest: int = 8001
    scoring: int = 8002
    notify: int = 8003
    receiver: int = 8099
    kafka: int = 9092


@dataclass(frozen=True)
class DemoTenant:
    company_key: str
    webhook_secret: str
    ministry_key: str


def _created(answer: httpx.Response) -> dict:
    if answer.status_code != 201:
        raise RuntimeError(
            f"demo set-up: {answer.request.method} {answer.request.url.path} answered "
            f"{answer.status_code}: {answer.text}"
        )
    return answer.json()


@dataclass
class Stack:
    """Start everything in order, wait until each part is ready, stop it all on exit."""

    state_dir: Path
    kafka_bootstrap: str | None = None
    namespace: str = ""
    ports: Ports = field(default_factory=Ports)
    log_dir: Path | None = None
    echo: bool = False
    sources: Path | None = None  # feeds the ingest service polls on their schedules (and serves metrics of)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _kafka_env: dict[str, str] | None = None

    @property
    def metrics_targets(self) -> dict[str, str]:
        """Prometheus scrape targets (host:port) by job name."""
        return {
            name: f"127.0.0.1:{port}"
            for name, port in (
                ("ingest", self.ports.ingest),
                ("scoring", self.ports.scoring),
                ("notify", self.ports.notify),
            )
        }

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, service)}"

    # --- start and stop -------------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.log_dir or self.state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self.kafka_bootstrap:
            self._start_kafka()
        asyncio.run(ensure_topics(self.kafka_bootstrap, self.namespace))
        env = self.service_env()
        self._spawn("ingest", ["ingest", "api", *(["--sources", str(self.sources)] if self.sources else [])], env)
        self._spawn("scoring", ["scoring", "run"], env)
        self._spawn("notify", ["notify", "run"], env)
        for service in ("ingest", "scoring", "notify"):
            self.wait_ready(service)

    def stop(self) -> None:
        for name, proc in reversed(list(self.processes.items())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.processes.pop(name, None)
        if self._kafka_env is not None:
            run_kafka_script("stop", self._kafka_env)
            self._kafka_env = None

    def _start_kafka(self) -> None:
        env = {
            **os.environ,
            "KAFKA_PORT": str(self.ports.kafka),
            "KAFKA_CONTROLLER_PORT": str(self.ports.kafka + 1),
            "KAFKA_DIR": str(self.state_dir / "kafka"),
        }
        run_kafka_script("start", env)
        self._kafka_env = env
        self.kafka_bootstrap = f"127.0.0.1:{self.ports.kafka}"

    def service_env(self) -> dict[str, str]:
        """The environment every service process gets: one cluster, one namespace, demo credentials."""
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap or "",
            "MEWS_TOPIC_NAMESPACE": self.namespace,
            "MEWS_ENVIRONMENT": "development",
            "MEWS_INGEST_PORT": str(self.ports.ingest),
            "MEWS_SCORING_PORT": str(self.ports.scoring),
            "MEWS_NOTIFY_PORT": str(self.ports.notify),
            "MEWS_INGEST_STATE_DIR": str(self.state_dir / "ingest"),
            "MEWS_SCORING_DATA_DIR": str(self.state_dir / "scoring"),
            "MEWS_INGEST_API_KEYS": f"{sha256_hex(DEMO_INGEST_KEY)}:ingest",
            "MEWS_SCORING_API_KEYS": f"{sha256_hex(DEMO_READ_KEY)}:government",
            "MEWS_NOTIFY_DATABASE_URL": f"sqlite:///{self.state_dir / 'notify.db'}",
            "MEWS_NOTIFY_BOOTSTRAP_ADMIN_TOKEN": DEMO_ADMIN_TOKEN,
            "MEWS_NOTIFY_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
            "MEWS_INGEST_ALLOW_PRIVATE_SOURCES": "true",  # feeds a developer serves on this machine
            "MEWS_NOTIFY_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports.notify}",
            # The console's ops desk reads risk from scoring and feed freshness from ingest with the demo keys.
            "MEWS_NOTIFY_CONSOLE_SCORING_URL": f"http://127.0.0.1:{self.ports.scoring}",
            "MEWS_NOTIFY_CONSOLE_SCORING_KEY": DEMO_READ_KEY,
            "MEWS_NOTIFY_CONSOLE_INGEST_URL": f"http://127.0.0.1:{self.ports.ingest}",
            "MEWS_NOTIFY_CONSOLE_INGEST_KEY": DEMO_INGEST_KEY,
            # Short waits so a demo alert arrives within seconds; production keeps Alertmanager's defaults.
            "MEWS_NOTIFY_GROUP_WAIT_SECONDS": "2",
            "MEWS_NOTIFY_GROUP_INTERVAL_SECONDS": "10",
            "MEWS_NOTIFY_RETRY_INITIAL_SECONDS": "2",
        }

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        assert self.log_dir is not None
        log = None if self.echo else open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
        )
        self.processes[name] = proc
        return proc

    def wait_ready(self, service: str, timeout: float = 90) -> None:
        """Poll /readyz until the service answers 200, failing fast if its process died."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            proc = self.processes.get(service)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(
                    f"{service} exited with {proc.returncode} during start-up; "
                    f"see {self.log_dir}/{service}.log\n{self.tail(service)}"
                )
            try:
                answer = httpx.get(f"{self.url(service)}/readyz", timeout=2)
                if answer.status_code == 200:
                    return
                last = answer.text
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.5)
        raise TimeoutError(f"{service} not ready after {timeout:.0f} s: {last}\n{self.tail(service)}")

    def tail(self, service: str, lines: int = 30) -> str:
        assert self.log_dir is not None
        path = self.log_dir / f"{service}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # --- demo -----------------------------------------------------------------------------------------------
    def run_cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run a `mews` command against this stack and return its result."""
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            cwd=ROOT,
            env=self.service_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def provision_demo(self, receiver_url: str) -> DemoTenant:
        """A demo company whose radar BOM needs gallium and germanium (alerts by webhook), and a ministry."""
        admin = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}
        with httpx.Client(base_url=self.url("notify"), timeout=10) as api:
            company = _created(
                api.post(
                    "/v1/organisations",
                    headers=admin,
                    json={"name": "Demo Radar Systems B.V.", "kind": "company", "clearance": "public"},
                )
            )
            company_auth = {"Authorization": f"Bearer {company['api_key']}"}
            channel = _created(
                api.post(
                    "/v1/channels",
                    headers=company_auth,
                    json={"kind": "webhook", "target": receiver_url, "language": "en", "mode": "immediate"},
                )
            )
            product = _created(
                api.post(
                    "/v1/products",
                    headers=company_auth,
                    json={
                        "name": "X-band radar module",
                        "bom": [
                            {
                                "component": "GaN power amplifier",
                                "material": "gallium",
                                "share": 0.02,
                                "origin_country": "CN",
                            },
                            {
                                "component": "Ge infrared window",
                                "material": "germanium",
                                "share": 0.05,
                                "origin_country": "CN",
                            },
                        ],
                    },
                )
            )
            _created(
                api.post(
                    "/v1/subscriptions",
                    headers=company_auth,
                    json={"product_id": product["id"], "min_severity": "warning", "channel_ids": [channel["id"]]},
                )
            )
            ministry = _created(
                api.post(
                    "/v1/organisations",
                    headers=admin,
                    json={"name": "Demo Ministry of Economic Affairs", "kind": "ministry", "clearance": "government"},
                )
            )
        return DemoTenant(
            company_key=company["api_key"], webhook_secret=channel["secret"], ministry_key=ministry["api_key"]
        )

    def _stop_stale_kafka(self) -> None:
        """Stop a broker a previous run left behind in this state directory."""
        env = {**os.environ, "KAFKA_PORT": str(self.ports.kafka), "KAFKA_DIR": str(self.state_dir / "kafka")}
        run_kafka_script("stop", env)

    def wait_sources_polled(self, timeout: float = 120) -> dict[str, dict]:
        """Wait until the ingest service has run every scheduled source once; return their health."""
        headers = {"Authorization": f"Bearer {DEMO_INGEST_KEY}"}
        deadline = time.monotonic() + timeout
        health: dict[str, dict] = {}
        while time.monotonic() < deadline:
            health = httpx.get(f"{self.url('ingest')}/v1/sources", headers=headers, timeout=5).json()
            if health and all(h["last_attempt"] for h in health.values()):
                return health
            time.sleep(1)
        raise TimeoutError(f"sources not polled within {timeout:.0f} s: {health}")
