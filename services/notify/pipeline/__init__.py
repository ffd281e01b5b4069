"""The alert pipeline: small stages `(context, alerts) -> alerts`, each deciding with a reason (Alertmanager style).

The pure stages live in `stages.py`; `dispatch.PIPELINE` lists every stage a breach goes through.
"""

from services.notify.pipeline.alert import Alert, Decision, GroupState, LogEntry, PipelineContext, Silence, Timing
from services.notify.pipeline.stages import (
    Stage,
    classification_gate,
    deduplicate,
    group,
    inhibit,
    route,
    run_pipeline,
    silence,
)

__all__ = [
    "Alert",
    "Decision",
    "GroupState",
    "LogEntry",
    "PipelineContext",
    "Silence",
    "Stage",
    "Timing",
    "classification_gate",
    "deduplicate",
    "group",
    "inhibit",
    "route",
    "run_pipeline",
    "silence",
]
