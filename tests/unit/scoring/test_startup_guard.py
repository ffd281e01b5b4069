"""Guards on the faust 0.15.3 start-up that services/scoring/app.py shortens; no broker.

`DeclaredTableManager.on_start` is faust's `TableManager.on_start` without its one-second sleep. When a guard fails
after a faust upgrade, compare the new `on_start` with the override and bring the override in line first.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from faust.tables import TableManager

from services.scoring.app import DeclaredTableManager, create_app
from services.scoring.settings import ScoringSettings


def test_faust_table_manager_start_is_a_sleep_then_what_the_override_does():
    lines = [line.strip() for line in inspect.getsource(TableManager.on_start).splitlines()]
    body = [line for line in lines if line and not line.startswith(("async def", '"""'))]
    assert body == ["await self.sleep(1.0)", "if not self.should_stop:", "await self._update_channels()",
                    "await self.recovery.start()"]


def test_the_scoring_app_starts_its_tables_without_the_sleep(tmp_path: Path):
    app = create_app(ScoringSettings(data_dir=tmp_path))
    assert type(app.tables) is DeclaredTableManager
    assert "sleep" not in inspect.getsource(DeclaredTableManager.on_start)


def test_a_table_declared_after_the_tables_started_is_still_refused(tmp_path: Path):
    app = create_app(ScoringSettings(data_dir=tmp_path))
    app.tables._tables_finalized.set()  # what `_update_channels` does first when the manager starts
    with pytest.raises(RuntimeError, match="Too late to add tables"):
        app.Table("late-table", default=None)
