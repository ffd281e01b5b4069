"""The material states a scoring worker holds in memory between two writes of its changelog.

A worker applies inputs to `MaterialState` objects it owns (`engine.apply_event_in_place`); the table's
changelog gets a material's record only when the agent persists, once per commit interval, and the indicators
topic a snapshot only on a beat. No faust here: the agent passes in how to load a record and writes the
records this hands out.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from services.scoring.engine import MaterialState

# The key of a record that is not part of MaterialState.to_dict(): from_dict ignores it.
OFFSETS = "input_offsets"


@functools.cache  # few input partitions, asked about per input
def position(topic: str, partition: int) -> str:
    """The key of an input partition in a record's offsets."""
    return f"{topic}/{partition}"


@dataclass(eq=False)
class Resident:
    """One material in memory: its state, its partition and the input offsets its state covers."""

    state: MaterialState
    partition: int
    # position(topic, partition) -> offset of the last input scored into this state (applied or rejected).
    offsets: dict[str, int] = field(default_factory=dict)
    published_at: float = -math.inf  # monotonic time of the last snapshot sent

    def covers(self, topic: str, partition: int, offset: int) -> bool:
        """Whether the input at this offset was already scored into this state (a re-read after a restart)."""
        return offset <= self.last_covered(topic, partition)

    def last_covered(self, topic: str, partition: int) -> int:
        """The offset of the last input of this topic partition scored into this state (-1: none)."""
        return self.offsets.get(position(topic, partition), -1)

    def scored_through(self, topic: str, partition: int, offset: int) -> None:
        """Record that the state now covers this topic partition up to `offset`, and lives in that partition."""
        self.offsets[position(topic, partition)] = offset
        self.partition = partition

    def record(self) -> dict[str, Any]:
        """The changelog value: the state's to_dict() and the offsets it covers."""
        value = self.state.to_dict()
        value[OFFSETS] = dict(self.offsets)
        return value

    @classmethod
    def from_record(cls, value: dict[str, Any], partition: int) -> Resident:
        """A resident from its changelog value (a record without offsets covers none)."""
        return cls(MaterialState.from_dict(value), partition, dict(value.get(OFFSETS, {})))


class MaterialStates:
    """The residents of one worker, which of them the changelog and the indicators topic have not seen yet."""

    def __init__(self, load: Callable[[str], dict[str, Any] | None]) -> None:
        self._load = load
        self._residents: dict[str, Resident] = {}
        self._unpersisted: dict[str, Resident] = {}
        self._unpublished: dict[str, Resident] = {}

    def __len__(self) -> int:
        return len(self._residents)

    def get(self, material: str, partition: int) -> Resident:
        """The material's resident, loaded from its record (or new) on first use after an assignment."""
        resident = self._residents.get(material)
        if resident is None:
            value = self._load(material)
            resident = (
                Resident.from_record(value, partition)
                if value is not None
                else Resident(MaterialState(material=material), partition)
            )
            self._residents[material] = resident
        return resident

    def scored(self, material: str, resident: Resident) -> None:
        """The resident changed: its record is due at the next persist."""
        self._unpersisted[material] = resident

    def unpublished(self, material: str, resident: Resident) -> None:
        """The resident's state changed since its last snapshot."""
        self._unpublished[material] = resident

    def published(self, material: str, now: float) -> None:
        """A snapshot of the material's current state was sent at `now`."""
        self._unpublished.pop(material, None)
        resident = self._residents.get(material)
        if resident is not None:
            resident.published_at = now

    def published_since(self, material: str, when: float) -> bool:
        """Whether a snapshot of the material was sent after `when` (monotonic)."""
        resident = self._residents.get(material)
        return resident is not None and resident.published_at > when

    def republish(self, material: str) -> None:
        """A snapshot counted as sent was not: the material's state is due for one again (if still resident)."""
        resident = self._residents.get(material)
        if resident is not None:
            self._unpublished[material] = resident

    def take_unpersisted(self) -> list[tuple[str, Resident]]:
        """The residents changed since the last call, each once; they count as persisted from now on."""
        taken = list(self._unpersisted.items())
        self._unpersisted.clear()
        return taken

    def due_snapshots(self, now: float, interval: float) -> list[tuple[str, Resident]]:
        """The residents changed since their last snapshot whose beat has come (every one if interval < 0)."""
        return [(m, r) for m, r in list(self._unpublished.items()) if interval < 0 or now - r.published_at >= interval]

    def drop(self, partitions: Iterable[int]) -> list[str]:
        """Forget the residents of these partitions (revoked); their records must have been persisted."""
        gone = set(partitions)
        dropped = [m for m, r in self._residents.items() if r.partition in gone]
        for material in dropped:
            del self._residents[material]
            self._unpublished.pop(material, None)
            if self._unpersisted.pop(material, None) is not None:
                raise RuntimeError(f"state of {material} dropped before it was persisted")
        return dropped
