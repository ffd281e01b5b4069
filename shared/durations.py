"""The one duration syntax of every mews configuration file: "30s", "15m", "2h", "7d", "2w" or seconds."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str | int | float) -> float:
    """Seconds from "30s", "15m", "2h", "7d", "2w" or a bare number of seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration like '0s', '12h', '7d' or '2w'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if m is None:
            raise ValueError(f"{value!r} is not a duration like '0s', '12h', '7d' or '2w'")
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r}: a duration is a finite number of seconds, not negative")
    return seconds


# A pydantic field type: accepts the syntax above, holds seconds.
Duration = Annotated[float, BeforeValidator(parse_duration)]
# The same, for settings held as whole seconds (link lifetimes, Retry-After): "1.5s" is refused, "7d" is 604800.
WholeDuration = Annotated[int, BeforeValidator(parse_duration)]
