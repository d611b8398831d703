"""Leadership on SQLite: a lock file only one holder can take at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.store.leadership import FileLockLeadership, SoleLeadership, leadership_for
from conveyor.store.postgres.leadership import AdvisoryLockLeadership

pytestmark = pytest.mark.anyio


async def test_one_holder_at_a_time_and_the_next_takes_over_on_release(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db.scheduler.lock")
    first, second = FileLockLeadership(path), FileLockLeadership(path)
    assert await first.hold()
    assert await first.hold()  # holding is stable
    assert not await second.hold()
    await first.release()
    assert await second.hold()
    assert not await first.hold()
    await second.release()


def test_the_database_decides_the_kind_of_leadership(tmp_path: Path) -> None:
    assert isinstance(leadership_for("postgresql://127.0.0.1/x"), AdvisoryLockLeadership)
    assert isinstance(leadership_for(f"sqlite:///{tmp_path}/c.db"), FileLockLeadership)
    assert isinstance(leadership_for("sqlite:///:memory:"), SoleLeadership)
