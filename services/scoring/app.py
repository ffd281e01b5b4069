"""The scoring process: the faust app (agent and table) and the read API, served in one event loop.

`create_app` builds the faust app; `ReadApiService` runs the read view and uvicorn as a mode service next to
it; `run` starts both under one faust Worker, which owns SIGINT and SIGTERM and stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Iterator

import faust
import mode
import uvicorn
from aiokafka.admin import AIOKafkaAdminClient

from services.scoring.agents import INPUTS, attach_agents
from services.scoring.api import create_api
from services.scoring.engine import ScoringConfig, load_config
from services.scoring.faust_fixes import (
    DeclaredTableManager,
    hold_inputs_until_seeked,
    restart_stranded_recovery,
    seek_committed_in_one_request,
    shorten_fetch_wait,
)
from services.scoring.settings import ScoringSettings
from services.scoring.view import MaterialsView, ViewFeed
from shared import topics as declared
from shared.kafka import MAX_BATCH_BYTES, check_kafka
from shared.logging import configure_logging
from shared.metrics import serve_metrics_port

log = logging.getLogger(__name__)

USED_TOPICS = (*INPUTS, declared.BREACHES, declared.INDICATORS, declared.DEADLETTER)


def create_app(settings: ScoringSettings, config: ScoringConfig | None = None) -> faust.App:
    """The faust app of one scoring worker, namespaced so test runs and tenants never share a group."""
    app = faust.App(
        settings.group_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap_servers.split(",") if host.strip()],
        store=settings.store,
        datadir=str(settings.data_dir / settings.group_id),
        autodiscover=False,
        # Kafka 4 has no leader-assignor topic of faust's and no auto-creation: faust declares only its
        # changelog topic; every other topic comes from shared/topics.py.
        topic_allow_declare=True,
        topic_disable_leader=True,
        topic_partitions=declared.MATERIAL_PARTITIONS,
        topic_replication_factor=settings.replication_factor,
        web_enabled=False,  # the read API is served by uvicorn (ReadApiService) on the service port
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",  # a new group starts from the first input, nothing skipped
        producer_acks=-1,
        # faust's 16 KiB batch holds no material state (about 40 KiB with 400 prices) and only a few breaches: a
        # record that does not fit waits in aiokafka until the batch before it is sent. Below the broker's default
        # message.max.bytes (1 MiB).
        producer_max_batch_size=MAX_BATCH_BYTES,
        broker_commit_interval=settings.commit_interval_seconds,
        consumer_group_instance_id=settings.instance_id,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),  # several beats per session
        TableManager=DeclaredTableManager,
    )
    attach_agents(
        app,
        settings.topic_namespace,
        config or load_config(settings.config_path),
        settings.lag_interval_seconds,
        commit_interval=settings.commit_interval_seconds,
        snapshot_interval=settings.snapshot_interval_seconds,
        batch_max=settings.batch_max_inputs,
    )
    hold_inputs_until_seeked(app)
    seek_committed_in_one_request(app)
    shorten_fetch_wait(app, settings.fetch_max_wait_seconds)
    restart_stranded_recovery(app, settings.recovery_check_seconds)
    return app


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the faust Worker owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _log_feed_failure(starting: asyncio.Future) -> None:
    if not starting.cancelled() and starting.exception() is not None:
        log.error("read view feed could not start", extra={"reason": repr(starting.exception())})


class ReadApiService(mode.Service):
    """The read view and the HTTP API (with /metrics, /healthz, /readyz) on the service port."""

    def __init__(
        self, settings: ScoringSettings, app: faust.App, listening: socket.socket | None = None, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.settings = settings
        self.app = app
        self.listening = listening  # bound before the worker joins its group (see `run`); None: uvicorn binds
        self.view = MaterialsView()
        self.feed = ViewFeed(settings.kafka_bootstrap_servers, settings.topic_namespace, self.view)
        self.api = create_api(
            settings,
            self.view,
            {
                "kafka": lambda: check_kafka(settings.kafka_bootstrap_servers),
                "worker": self.worker_readiness,
                "view": self.view_readiness,
            },
        )
        self._feed_starting: asyncio.Future | None = None
        self._server: _EmbeddedServer | None = None
        self._serving: asyncio.Future | None = None

    async def worker_readiness(self) -> str | None:
        """None once the worker has joined its group and recovered its table, else why not."""
        if self.app.tables.recovery.completed.is_set():
            return None
        return "worker joining its group or recovering its table"

    async def view_readiness(self) -> str | None:
        """None once the view has caught up, else why not (also when its feed could not start)."""
        starting = self._feed_starting
        if starting is not None and starting.done() and not starting.cancelled() and starting.exception():
            return f"view feed could not start: {starting.exception()}"
        return await self.feed.readiness()

    async def on_start(self) -> None:
        # The faust app starts after this service (the Worker starts its services first): the view's feed
        # connects in the background so that joining the group does not wait for it; /readyz waits for both.
        self._feed_starting = asyncio.ensure_future(self.feed.start())
        self._feed_starting.add_done_callback(_log_feed_failure)
        config = uvicorn.Config(
            self.api,
            host=self.settings.host,
            port=self.settings.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
        serve_metrics_port(self.settings)
        self._server = _EmbeddedServer(config)
        self._serving = asyncio.ensure_future(
            self._server.serve(sockets=[self.listening] if self.listening is not None else None)
        )
        while not self._server.started:
            if self._serving.done():
                raise RuntimeError(f"read API could not listen on {self.settings.host}:{self.settings.port}")
            await asyncio.sleep(0.05)
        log.info("read API listening", extra={"host": self.settings.host, "port": self.settings.port})

    async def on_stop(self) -> None:
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._serving, 10)
        if self._feed_starting is not None and not self._feed_starting.done():
            self._feed_starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._feed_starting
        await self.feed.stop()


async def missing_topics(settings: ScoringSettings) -> list[str]:
    """Declared topics scoring uses that do not exist on the cluster (auto-creation is off)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="mews-scoring-check")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return [name for name in (settings.topic(t) for t in USED_TOPICS) if name not in existing]


def listen_for_api(settings: ScoringSettings) -> socket.socket:
    """The read API's listening socket, taken before the worker joins its group.

    The default group instance id names the port, so a second worker started on it by mistake must fail here,
    before it could fence the running worker out of the group.
    """
    listening = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((settings.host, settings.port))
        listening.listen(128)  # bound alone is not enough: Linux lets two SO_REUSEADDR sockets bind until one listens
    except OSError as exc:
        listening.close()
        raise SystemExit(f"read API cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from exc
    return listening


# Objects the collector tracks per input of a batch, counting what scoring it makes. A batch's inputs live until
# it is scored: its message (2 tracked objects), envelope and event (5) and, while it is scored, what its run or
# its own scoring makes.
TRACKED_PER_INPUT = 20


def young_collection_threshold(batch_max: int) -> int:
    """Allocations between two young collections: more than a batch makes, so one is not walked again and again.

    Nearly every object a batch makes is freed by its reference count when the batch is done, and cycles are rare.
    A young collection walks every young object it finds alive, though, and promotes them, and the older
    generation's collections walk them again. At 10,000 a 100,000-price backfill in batches of 5,000 made 87 young
    and 4 older collections, 0.68 s of a worker's 8.4 s; at 100,000 it made 2, 0.10 s.
    """
    return max(10_000, TRACKED_PER_INPUT * batch_max)


def run(settings: ScoringSettings) -> None:
    """Start the worker and the read API in one process until SIGINT or SIGTERM."""
    from faust.worker import Worker

    configure_logging(settings.log_level, settings.log_json)
    if not settings.read_keys:
        log.warning("no read keys configured: the read API will refuse every request")
    missing = asyncio.run(missing_topics(settings))
    if missing:
        raise SystemExit(f"topics missing on the cluster: {', '.join(missing)}; run `mews topics create`")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    listening = listen_for_api(settings)
    log.info(
        "scoring worker starting",
        extra={
            "group": settings.group_id,
            "instance_id": settings.instance_id,
            "session_timeout_s": settings.session_timeout_seconds,
        },
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings)
    api = ReadApiService(settings, app, listening, loop=loop)
    worker = Worker(
        app, api, loop=loop, loglevel=settings.log_level, override_logging=False, redirect_stdouts=False, quiet=True
    )
    worker.spinner = None  # a terminal spinner has no place in JSON log lines
    # What start-up made (modules, faust, pydantic's schemas, the configuration) lives as long as the process: out
    # of the collector's sight, a full collection scans only what scoring holds, not all of that again each time.
    gc.freeze()
    gc.set_threshold(young_collection_threshold(settings.batch_max_inputs), 20, 20)
    worker.execute_from_commandline()
