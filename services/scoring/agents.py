"""The scoring agent: input topics -> `engine.apply_event_in_place` -> breaches and snapshots. It only moves data.

One agent reads the five input topics. They are keyed by material and co-partitioned, so every signal of one
material meets the material's state in one partition of the `material-state` table. The inputs come in batches
straight from faust's consumer (services/scoring/intake.py). The states live in memory
(services/scoring/states.py); the table is written once per commit interval, snapshots go out on a beat. A
material's many prices in one batch (a backfill, a catch-up) are applied at once (`price_history.apply_price_run`),
and their outputs sent in input order as if applied one by one.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import faust
from faust.events import Event as FaustEvent
from prometheus_client import Counter, Gauge, Histogram

from services.scoring.engine import Rejection, ScoringConfig, apply_event_in_place, indicator_snapshot
from services.scoring.faust_fixes import committed_offset, processing
from services.scoring.intake import BatchIntake
from services.scoring.price_history import HistoryOutcome, apply_price_run
from services.scoring.states import MaterialStates, Resident
from shared import topics as declared
from shared.events import (
    SIGNALS,
    BreachRaised,
    DeadLettered,
    EnvelopeError,
    IndicatorSnapshot,
    PriceObserved,
    SignalEvent,
    decode,
    encode,
)
from shared.kafka import event_id_for
from shared.metrics import CONSUMER_LAG, child, observe_counted

log = logging.getLogger(__name__)

SOURCE = "mews/scoring"
SERVICE = "scoring"
INPUTS: tuple[declared.Topic, ...] = tuple(s.topic for s in SIGNALS.values())
EXPECTED: dict[str, type[SignalEvent]] = {s.topic.name: s.event for s in SIGNALS.values()}

EVENTS = Counter("mews_scoring_events_total", "Input events by topic and what became of them", ["topic", "outcome"])
LATE = Counter("mews_scoring_late_events_total", "Inputs rejected as older than the lateness bound", ["topic"])
BREACHES = Counter(
    "mews_scoring_breaches_total", "Breach transitions emitted", ["material", "rule", "severity", "status"]
)
PROCESSING_LAG = Histogram(
    "mews_scoring_processing_lag_seconds",
    "From an input's CloudEvents time to the end of the batch it was scored in",
    ["topic"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)
GAPS = Counter(
    "mews_scoring_input_gaps_total",
    "Input offsets passed over without being delivered, within one group generation (inputs never scored)",
    ["topic"],
)
ASSIGNED = Gauge("mews_scoring_partitions_assigned", "Input partitions this worker owns", ["topic"])
STATE_WRITES = Counter(
    "mews_scoring_state_writes_total",
    "Material states written to the changelog (at most one per material and commit interval)",
)
SNAPSHOTS = Counter("mews_scoring_snapshots_total", "Indicator snapshots sent")
RESIDENT = Gauge("mews_scoring_resident_materials", "Material states this worker holds in memory")
RUN_INPUTS = Counter(
    "mews_scoring_run_inputs_total",
    "Prices applied as part of a run of one material's prices in a batch (at once, not one by one)",
)
BATCH_SIZE = Histogram(
    "mews_scoring_batch_inputs",
    "Inputs scored per batch",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
)

STATE_TICK = 0.1  # seconds between checks whether states are due to be persisted or snapshots to be sent
# Seconds of scoring between two turns of the event loop. Scoring never waits, so without a turn a batch held the
# loop for a tenth of a second or more, and everything else waited that long at each step: a persist's flush takes
# a turn per changelog record, and its commit and the producer's and the fetcher's round trips a turn each; the
# heartbeats, the read API. A slice of time, not a count of inputs: a run of a hundred prices takes a few
# milliseconds, an input scored alone or sending breaches a few hundred microseconds.
TURN_EVERY = 0.002
READ_CHUNK = 100  # inputs decoded between two looks at the clock (about a millisecond's worth)
# A material's prices in one batch are applied at once from this many on (services/scoring/price_history.py):
# a run's fixed cost is that of about this many prices one by one.
RUN_MIN = 40


@dataclass(frozen=True)
class Accepted:
    """An input that passed the edge: its envelope and typed event."""

    envelope: dict[str, Any]
    event: SignalEvent


@dataclass
class Runs:
    """The runs of prices a batch applied at once: the batch's walk sends their breaches in input order, and counts
    the rest."""

    member: list[bool]  # per input of the batch: applied in a run (its state is the run's already)
    breaches: dict[int, tuple[HistoryOutcome, int]]  # batch index of an input with breaches -> (its run, run index)
    # per run: the material, its resident, whether the run's last input had breaches (a snapshot of the end state
    # went out with them)
    applied: list[tuple[str, Resident, bool]]
    # per run: its input topic and its inputs with nothing to send, which the batch only counts
    quiet: list[tuple[str, list[Accepted]]]

    def walk(self) -> list[int]:
        """The batch indices the walk visits, in order: inputs scored one by one, and run inputs with breaches."""
        breaches = self.breaches
        return [i for i, applied in enumerate(self.member) if not applied or i in breaches]


class Turns:
    """Turns of the event loop while a batch is scored: `due` gives one once TURN_EVERY has passed since the last."""

    def __init__(self) -> None:
        self.next_at = time.perf_counter() + TURN_EVERY

    async def due(self) -> None:
        if time.perf_counter() >= self.next_at:
            await asyncio.sleep(0)
            self.next_at = time.perf_counter() + TURN_EVERY


def read_input(raw: bytes | None, key: bytes | None, expected: type[SignalEvent]) -> Accepted | str:
    """Validate one input message; the reason it cannot be scored if it cannot."""
    if raw is None:
        return "empty message (no value)"
    try:
        envelope, event = decode(raw, expected)
    except EnvelopeError as exc:
        return str(exc)
    material = event.material
    # A key that is not the material would put this input in another partition than the material's state.
    if key is None or key.decode("utf-8", "replace") != material:
        shown = "none" if key is None else repr(key.decode("utf-8", "replace")[:80])
        return f"message key {shown} is not the event's material {material!r}"
    return Accepted(envelope, event)


def outcome_label(rejected: Rejection | None) -> str:
    """The metrics outcome of an engine result: ok, or the kind of rejection (duplicate, late, irrelevant...).

    Besides these, an input re-read after a restart that its material's recovered state already covers counts as
    `replayed`, and one that cannot be read as `invalid`.
    """
    return "ok" if rejected is None else rejected.kind


def passed_over(expected: int | None, offset: int) -> int:
    """How many offsets before `offset` were never delivered, given the next one expected (None: no expectation).

    Input topics are append-only and written without transactions, so their offsets are contiguous: within one
    group generation a partition starts at its committed offset and delivers offset after offset, or goes back
    when faust seeks to the committed offset again. A jump forward is inputs that were fetched and then dropped.
    """
    return offset - expected if expected is not None and offset > expected else 0


def stretches(messages: list[Any]) -> list[tuple[Any, Any]]:
    """A batch as its stretches of one partition with consecutive offsets in one generation: (first, last)."""
    out: list[tuple[Any, Any]] = []
    if not messages:
        return out
    first = last = messages[0]
    for message in messages[1:]:
        if (
            message.offset == last.offset + 1
            and message.partition == last.partition
            and message.topic == last.topic
            and message.generation_id == last.generation_id
        ):
            last = message
            continue
        out.append((first, last))
        first = last = message
    out.append((first, last))
    return out


def breach_event_id(breach: BreachRaised) -> str:
    """A deterministic id per transition, so a transition re-sent after a rebalance is recognisably the same."""
    return event_id_for(
        f"breach|{breach.fingerprint}|{breach.status}|{breach.severity}|{breach.observed_at.isoformat()}"
    )


def written_time(envelope: dict[str, Any]) -> str | None:
    """An input's CloudEvents `time` as written (None when there is none, or it is not text)."""
    written = envelope.get("time")
    return written if isinstance(written, str) else None


@functools.lru_cache(maxsize=1024)  # a producer writes one time per batch it sends: a backfill repeats them
def posix_time(text: str | None) -> float | None:
    """A CloudEvents `time` as a POSIX timestamp (None when it is no usable time)."""
    if text is None:
        return None
    try:
        sent = datetime.fromisoformat(text)
    except ValueError:
        return None
    if sent.tzinfo is None:
        return None
    return sent.timestamp()


def attach_agents(
    app: faust.App,
    namespace: str,
    config: ScoringConfig,
    lag_interval: float,
    *,
    commit_interval: float = 1.0,
    snapshot_interval: float = 1.0,
    batch_max: int = 1000,
) -> faust.Table:
    """Declare the topics, the `material-state` table, the scoring agent, its input intake and timers on an app.

    States live in memory (`MaterialStates`); `persist` writes the changed ones to the table once per commit
    interval and only then acks the inputs they cover, so faust never commits an input offset beyond what the
    changelog holds (see docs/methodology.md, "How scoring state is persisted").
    """
    by_name = {t.qualified(namespace): t for t in INPUTS}
    expected_of = {name: EXPECTED[t.name] for name, t in by_name.items()}  # the event type each input topic carries
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    inputs = app.topic(*by_name, **raw)
    breaches_topic = declared.BREACHES.qualified(namespace)
    indicators_topic = declared.INDICATORS.qualified(namespace)
    deadletter_topic = declared.DEADLETTER.qualified(namespace)
    table = app.Table(
        "material-state",
        default=None,
        key_type=str,
        partitions=declared.MATERIAL_PARTITIONS,
        help="per material: MaterialState.to_dict() and the input offsets it covers",
    )
    states = MaterialStates(table.get)
    intake = BatchIntake(app, by_name, batch_max)
    intake.install()
    processing_lags = {t.name: PROCESSING_LAG.labels(t.name) for t in INPUTS}  # looked up once, observed per batch
    last_offsets: dict[Any, int] = {}
    next_offsets: dict[Any, tuple[int, int]] = {}  # partition -> (generation, offset expected next)
    unacked: list[Any] = []  # the messages of scored inputs whose states are not persisted yet
    # Breach transitions sent since the last batch's log line, by (status, severity): a backfill sends thousands a
    # second, so they are logged one line per batch (each one at debug level, and all on the breaches topic).
    transitions: collections.Counter[tuple[str, str]] = collections.Counter()
    unsent: list[IndicatorSnapshot] = []  # with interval 0: each input's snapshot, sent once its state is persisted
    # Held while a batch is scored and while a persist takes its cut, so a persisted state covers exactly the
    # inputs acked, and their breaches are sent before the state is written.
    scoring = asyncio.Lock()
    persisting = asyncio.Lock()  # one persist at a time, so the table gets a material's records in order
    last_persist = time.monotonic()
    halted = False  # set once a batch failed halfway: from then on nothing is persisted or acked

    async def send(topic: str, key: bytes, value: bytes) -> None:
        # Straight to faust's producer: faust's Topic.send wraps each record in a FutureMessage, a PendingMessage
        # and a published callback, which cost more than the record itself. The producer is the one faust flushes
        # before it commits (and `persist` before it writes states), so the order of what is on the broker holds.
        await app.producer.send(topic, key, value, None, None, None)

    async def quarantine(message: Any, reason: str) -> None:
        topic = by_name[message.topic].name
        EVENTS.labels(topic, "invalid").inc()
        letter = DeadLettered.of(
            message.value or b"", reason, source=SOURCE, stage=SERVICE, intended_topic=message.topic
        )
        await send(deadletter_topic, SOURCE.encode(), encode(letter, source=SOURCE))
        log.warning(
            "input dead-lettered",
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "reason": reason[:300],
            },
        )

    async def publish(snap: IndicatorSnapshot) -> None:
        await send(indicators_topic, snap.material.encode(), encode(snap, source=SOURCE))
        SNAPSHOTS.inc()

    async def emit(breaches: list[BreachRaised]) -> None:
        for breach in breaches:
            await send(
                breaches_topic,
                breach.fingerprint.encode(),
                encode(breach, source=SOURCE, event_id=breach_event_id(breach)),
            )
            child(BREACHES, breach.material, breach.rule, breach.severity.value, breach.status.value).inc()
            transitions[(breach.status.value, breach.severity.value)] += 1
            if log.isEnabledFor(logging.DEBUG):  # a backfill sends thousands a second: build no record for nothing
                log.debug(
                    "breach",
                    extra={
                        "material": breach.material,
                        "rule": breach.rule,
                        "severity": breach.severity.value,
                        "status": breach.status.value,
                        "fingerprint": breach.fingerprint,
                        "value": breach.value,
                    },
                )

    async def score(
        message: Any,
        declared_topic: declared.Topic,
        checked: Accepted | str,
        now: float,
    ) -> str:
        """Score one input (as `read_input` read it) into its material's state; the metrics outcome."""
        if isinstance(checked, str):
            await quarantine(message, checked)
            return "invalid"
        material = checked.event.material
        resident = states.get(material, message.partition)
        if resident.covers(declared_topic.name, message.partition, message.offset):
            return "replayed"  # re-read after a restart, already in the recovered state: applying it again is wrong
        resident.scored_through(declared_topic.name, message.partition, message.offset)
        states.scored(material, resident)
        outcome = apply_event_in_place(resident.state, checked.event, event_id=checked.envelope["id"], config=config)
        resident.state = outcome.state
        label = outcome_label(outcome.rejected)
        if outcome.rejected is not None:
            if label == "late":
                LATE.labels(declared_topic.name).inc()
            if label in ("late", "rejected"):  # valid input that could not count: keep it, with the reason
                letter = DeadLettered.of(
                    message.value, str(outcome.rejected), source=SOURCE, stage=SERVICE, intended_topic=message.topic
                )
                await send(deadletter_topic, SOURCE.encode(), encode(letter, source=SOURCE))
            log.info(
                "input not scored",
                extra={
                    "topic": message.topic,
                    "material": material,
                    "event_id": checked.envelope["id"],
                    "reason": str(outcome.rejected),
                },
            )
        else:
            await emit(outcome.breaches)
            if outcome.breaches:
                # A breach transition goes out with its snapshot, after the material's older snapshots still
                # waiting for their persist (interval 0), so a reader sees them in order.
                earlier = [snap for snap in unsent if snap.material == material]
                if earlier:
                    unsent[:] = [snap for snap in unsent if snap.material != material]
                for snap in (*earlier, indicator_snapshot(resident.state, config)):
                    await publish(snap)
                states.published(material, now)
            elif snapshot_interval == 0:  # a snapshot of every input's state, sent once that state is persisted
                unsent.append(indicator_snapshot(resident.state, config))
            else:
                states.unpublished(material, resident)
        return label

    async def emit_in_run(run: HistoryOutcome, k: int) -> None:
        """The breaches of input k of a run applied at once, with the snapshot after it, as `score` sends them."""
        await emit(run.breaches[k])
        await publish(run.snapshot_after(k))

    async def plan_runs(messages: list[Any], read: list[Accepted | str], turn: Turns) -> Runs:
        """Apply the batch's runs of prices at once (see `Runs` for what the batch's walk gets).

        A material's inputs in the batch make a run when they are at least RUN_MIN prices of one partition that
        its state does not cover yet and `apply_price_run` takes them; otherwise they are scored one by one.
        The residents get the runs' states and offsets here; the batch's walk sends each input's breaches.
        Only with a snapshot beat: with a snapshot per input (interval 0) every input is scored one by one.
        """
        runs = Runs([False] * len(messages), {}, [], [])
        if snapshot_interval == 0:
            return runs
        by_material: dict[str, list[tuple[int, str, PriceObserved]]] = {}  # batch index, event id, price
        mixed: set[str] = set()  # materials with other inputs in the batch too: scored one by one, in order
        for i, checked in enumerate(read):
            if isinstance(checked, str):
                continue
            if isinstance(checked.event, PriceObserved):
                by_material.setdefault(checked.event.material, []).append((i, checked.envelope["id"], checked.event))
            else:
                mixed.add(checked.event.material)
        for material, inputs in by_material.items():
            if len(inputs) < RUN_MIN or material in mixed:
                continue
            await turn.due()
            first = messages[inputs[0][0]]
            if any(messages[i].partition != first.partition or messages[i].topic != first.topic for i, _, _ in inputs):
                continue
            try:
                resident = states.get(material, first.partition)
                topic = by_name[first.topic].name
                covered = resident.last_covered(topic, first.partition)
                fresh = [x for x in inputs if messages[x[0]].offset > covered]
                if len(fresh) < RUN_MIN:
                    continue
                run = apply_price_run(resident.state, [e for _, _, e in fresh], [d for _, d, _ in fresh], config)
            except Exception:  # the prices are scored one by one instead, each with its own outcome
                log.exception("applying a run of prices failed", extra={"material": material, "inputs": len(inputs)})
                continue
            if run is None:
                continue
            last = messages[fresh[-1][0]]
            resident.scored_through(topic, last.partition, last.offset)
            resident.state = run.state
            states.scored(material, resident)
            member = runs.member
            for i, _, _ in fresh:
                member[i] = True
            for k in run.breaches:
                runs.breaches[fresh[k][0]] = (run, k)
            runs.applied.append((material, resident, len(fresh) - 1 in run.breaches))
            quiet = [read[i] for k, (i, _, _) in enumerate(fresh) if k not in run.breaches]
            runs.quiet.append((topic, quiet))  # type: ignore[arg-type]  # every input of a run was read
            RUN_INPUTS.inc(len(fresh))
        return runs

    def check_continuity(parts: list[tuple[Any, Any]]) -> None:
        """Count the offsets a batch (as its `stretches`) passes over: within a stretch there are none."""
        for message, last in parts:
            generation, expected = next_offsets.get(message.tp, (None, None))
            if generation != message.generation_id:
                # The first input of an assignment should be the one at the committed offset faust seeked to.
                expected = committed_offset(app, message.tp)
            missed = passed_over(expected, message.offset)
            if missed:
                GAPS.labels(by_name[message.topic].name).inc(missed)
                log.error(
                    "inputs passed over unscored",
                    extra={
                        "topic": message.topic,
                        "partition": message.partition,
                        "expected_offset": expected,
                        "offset": message.offset,
                        "generation": message.generation_id,
                    },
                )
            next_offsets[message.tp] = (message.generation_id, last.offset + 1)

    async def persist(everything: bool = False) -> None:
        """Write the changed states to the table, ack the inputs they cover, then send the snapshots now due.

        Under the `scoring` lock only a cut is taken: the inputs scored so far, the records of the states they
        changed and the snapshots due, all copies. Scoring goes on while they are written (with one snapshot per
        input, interval 0, it waits, so each input's snapshot follows the previous one). Each step waits for the
        producer: the breaches and dead letters these inputs caused are on the broker before a state saying they
        were scored, and that state before the inputs are acked (faust commits only acked offsets, and flushes
        the producer again before it does) and before a snapshot showing it. `everything` (at a rebalance or a
        stop) sends every snapshot still waiting for its beat.
        """
        nonlocal last_persist
        if halted:  # the states hold part of a batch, which no persisted state may show
            return
        async with persisting:
            async with scoring:
                now = last_persist = time.monotonic()
                cut = take_cut(now, everything)
                if snapshot_interval == 0:
                    await write_cut(*cut, now)
            if snapshot_interval != 0:
                await write_cut(*cut, now)
        if cut[0]:
            await app.consumer.commit()  # now rather than at faust's next beat: a restart re-reads less

    def take_cut(
        now: float, everything: bool
    ) -> tuple[list[Any], list[tuple[str, Resident, dict[str, Any]]], list[IndicatorSnapshot]]:
        """The inputs scored since the last cut, the records of the states they changed, the snapshots now due."""
        done = unacked.copy()
        unacked.clear()
        records = [(m, r, r.record()) for m, r in states.take_unpersisted()] if done else []
        snaps = unsent.copy()
        unsent.clear()
        for material, resident in states.due_snapshots(now, -1.0 if everything else snapshot_interval):
            snaps.append(indicator_snapshot(resident.state, config))
            states.published(material, now)
        return done, records, snaps

    async def write_cut(
        done: list[Any],
        records: list[tuple[str, Resident, dict[str, Any]]],
        snaps: list[IndicatorSnapshot],
        taken_at: float,
    ) -> None:
        if done:
            try:
                await app.producer.flush()
                # Every changed state was changed by an input of the cut, of the state's own partition.
                of_partition = {message.partition: message for message in done}
                for material, resident, record in records:
                    message = of_partition[resident.partition]
                    with processing(FaustEvent(app, message.key, message.value, None, message)):
                        table[material] = record
                await app.producer.flush()
            except BaseException:  # not persisted: write them again next time, and ack nothing now
                for material, resident, _ in records:
                    states.scored(material, resident)
                if halted:  # a batch failed halfway meanwhile: these inputs will never be acked either
                    intake.untrack(done)
                else:
                    unacked[:0] = done
                if snapshot_interval == 0:
                    unsent[:0] = snaps
                else:
                    for snap in snaps:
                        states.republish(snap.material)
                raise
            intake.ack(done)
            STATE_WRITES.inc(len(records))
        for snap in snaps:
            # A breach since the cut sent a newer snapshot of this material: this one would arrive after it.
            if snapshot_interval == 0 or not states.published_since(snap.material, taken_at):
                await publish(snap)

    async def score_batch(messages: list[Any]) -> collections.Counter[tuple[str, str]]:
        """Score a batch's inputs in order, under the `scoring` lock, and observe their lags; the outcomes, counted."""
        outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        # Per topic, the CloudEvents times of the inputs (for their lag), counted: a producer writes one time per
        # batch it sends, so a batch holds few of them.
        sent_times: dict[str, collections.Counter[str | None]] = collections.defaultdict(collections.Counter)
        now = time.monotonic()
        turn = Turns()
        read: list[Accepted | str] = []
        for chunk in range(0, len(messages), READ_CHUNK):
            read += [read_input(m.value, m.key, expected_of[m.topic]) for m in messages[chunk : chunk + READ_CHUNK]]
            await turn.due()
        runs = await plan_runs(messages, read, turn)
        parts = stretches(messages)
        check_continuity(parts)
        for name, quiet in runs.quiet:  # applied in their run and nothing to send: only counted
            outcomes[(name, "ok")] += len(quiet)
            sent_times[name].update(written_time(checked.envelope) for checked in quiet)
        for index in runs.walk():
            message = messages[index]
            declared_topic = by_name[message.topic]
            checked = read[index]
            breach_input = runs.breaches.get(index)
            await turn.due()
            try:
                if breach_input is None:
                    label = await score(message, declared_topic, checked, now)
                else:
                    await emit_in_run(*breach_input)
                    label = "ok"
            except Exception as exc:  # one poisonous input must not stop every material's scoring
                log.exception("scoring failed", extra={"topic": message.topic, "offset": message.offset})
                await quarantine(message, f"scoring failed: {type(exc).__name__}: {exc}")
            else:
                if label != "invalid":
                    outcomes[(declared_topic.name, label)] += 1
                if isinstance(checked, Accepted) and label != "replayed":  # its lag, from its time
                    sent_times[declared_topic.name][written_time(checked.envelope)] += 1
        for material, resident, published in runs.applied:  # as the run's last input left it, as `score` does
            if published:
                states.published(material, now)
            else:
                states.unpublished(material, resident)
        for _, last in parts:  # for the lag: from now on the batch counts as processed
            last_offsets[last.tp] = last.offset
        # The whole batch was scored by now: one clock reading serves every input's lag.
        scored_at = time.time()
        for name, sent in sent_times.items():
            lags = [(max(0.0, scored_at - at), n) for text, n in sent.items() if (at := posix_time(text)) is not None]
            observe_counted(processing_lags[name], lags)
        return outcomes

    def halt(batch: list[Any]) -> None:
        """Stop persisting once a batch failed halfway (a fault outside any one input's scoring, or a cancel).

        The states in memory hold part of the batch. No persisted state may show that, so nothing more is written
        or acked. The inputs scored since the last persist leave faust's set of those being processed, so its
        rebalance and its stop do not wait for acks that will never come. The worker stops; whoever scores these
        partitions next re-reads them from the committed offsets, and the changelog's states say which of them are
        in already.
        """
        nonlocal halted
        halted = True
        intake.untrack([*unacked, *batch])
        unacked.clear()
        unsent.clear()

    @app.agent(inputs, name="score-materials")
    async def score_materials(stream: faust.StreamT) -> None:
        # One agent instance scores every assigned input partition, in offset order per partition; a material
        # lives in one partition, so its inputs are scored in order. faust's stream of the inputs is declared
        # (it subscribes the topics) but never read: the intake hands the fetched inputs over in batches.
        # Acks wait for `persist`.
        async for messages in intake.batches():
            async with scoring:
                if halted:
                    return
                if not intake.current(messages):  # a rebalance began while the batch waited for the lock
                    continue
                intake.track(messages)
                try:
                    outcomes = await score_batch(messages)
                except asyncio.CancelledError as exc:
                    halt(messages)
                    if not app.should_stop:  # cancelled, but not by the stop: stop all the same
                        app.add_future(app.crash(exc))  # the app holds the task until it has run
                    raise
                except Exception as exc:
                    halt(messages)
                    log.critical(
                        "scoring a batch failed halfway: the worker stops, to be restarted from its committed offsets",
                        exc_info=True,
                        extra={"inputs": len(messages), "error": f"{type(exc).__name__}: {exc}"},
                    )
                    await app.crash(exc)
                    return
                unacked.extend(messages)
            BATCH_SIZE.observe(len(messages))
            for (topic, label), count in outcomes.items():
                child(EVENTS, topic, label).inc(count)
            if transitions:
                log.info(
                    "breach transitions sent",
                    extra={
                        "inputs": len(messages),
                        **{f"{status}_{severity}": n for (status, severity), n in sorted(transitions.items())},
                    },
                )
                transitions.clear()
            # The next batch may be queued already, and nothing above waits: let the producer send what this
            # batch produced, and a persist take its cut, before scoring on.
            await asyncio.sleep(0)

    @app.task
    async def keep_states() -> None:
        # A loop of its own, not an app timer: timers stop when the app begins to stop, and the app's stop waits
        # for every input to be acked, which only `persist` does.
        while True:
            await asyncio.sleep(STATE_TICK)
            try:
                closing = app.rebalancing or app.should_stop
                now = time.monotonic()
                if closing or now - last_persist >= commit_interval:
                    await persist(everything=closing)
                RESIDENT.set(len(states))
            except Exception:  # keep persisting: a failed round is retried at the next tick
                log.exception("persisting states failed")

    async def drop_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:  # sender: the faust.App
        # faust waited for every input to be acked (so persisted) before this signal; persist anything left.
        await persist(everything=True)
        dropped = states.drop({tp.partition for tp in revoked if tp.topic in by_name})
        log.info("states of revoked partitions dropped", extra={"materials": len(dropped)})

    app.on_partitions_revoked.connect(drop_revoked)  # type: ignore[arg-type]  # mypy cannot match mode's handler union

    @app.timer(lag_interval, name="measure-consumer-lag")
    async def measure_consumer_lag() -> None:
        # Owned partitions are counted only between rebalances: a partition is owned when it is being
        # processed, not when the group coordinator has handed it over and its state is still recovering.
        settled = app.tables.recovery.completed.is_set() and not app.rebalancing and not app.in_recovery
        measure_lag(app, by_name, last_offsets, count_owned=settled)

    return table


def measure_lag(
    app: faust.App, by_name: dict[str, declared.Topic], last_offsets: dict[Any, int], count_owned: bool = False
) -> None:
    """Set per-topic consumer lag (highwater minus next offset to process) and, if asked, owned partitions."""
    assignment = [tp for tp in app.consumer.assignment() if tp.topic in by_name]
    lag: dict[str, int] = dict.fromkeys((t.name for t in by_name.values()), 0)
    owned: dict[str, int] = dict.fromkeys(lag, 0)
    for tp in assignment:
        name = by_name[tp.topic].name
        owned[name] += 1
        highwater = app.consumer.highwater(tp)
        if highwater is None:
            continue
        done = last_offsets.get(tp)
        # Before this worker has processed anything on a partition, the group's committed offset says where it is.
        position = done + 1 if done is not None else committed_offset(app, tp)
        if position is not None:
            lag[name] += max(0, highwater - position)
    for name in lag:
        CONSUMER_LAG.labels(SERVICE, name).set(lag[name])
        if count_owned:
            ASSIGNED.labels(name).set(owned[name])
