"""The alert pipeline: small stages `(context, alerts) -> alerts`, each deciding with a reason (Alertmanager style)."""

from services.notify.pipeline.alert import Alert, Decision, GroupState, LogEntry, PipelineContext, Silence, Timing
from services.notify.pipeline.stages import (
    DEFAULT_STAGES,
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
    "DEFAULT_STAGES", "Alert", "Decision", "GroupState", "LogEntry", "PipelineContext", "Silence", "Stage",
    "Timing", "classification_gate", "deduplicate", "group", "inhibit", "route", "run_pipeline", "silence",
]
