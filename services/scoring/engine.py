"""The scoring engine's public entry: what the live service, the backtest and the tests drive.

The code lives beside it, one module per job: `state.py` (MaterialState and its serialisation), `apply.py`
(`apply_event` and the appliers, indicators and rules it runs), `evidence.py` (the inputs behind a breach) and
`summary.py` (a breach in one plain-language line).
"""

from services.scoring.apply import Outcome, Rejection, apply_event, apply_event_in_place, indicator_snapshot
from services.scoring.config import ScoringConfig, load_config
from services.scoring.state import MaterialState, PriceSeries

__all__ = [
    "MaterialState",
    "Outcome",
    "PriceSeries",
    "Rejection",
    "ScoringConfig",
    "apply_event",
    "apply_event_in_place",
    "indicator_snapshot",
    "load_config",
]
