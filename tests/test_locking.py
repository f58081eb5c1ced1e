"""The audit lock (monitor/locking.py) on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from monitor.locking import AUDIT_LOCK, exclusive
from monitor.store import Store


def lock_rows(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT name, owner FROM locks").fetchall()


async def test_a_second_holder_is_refused_and_the_lock_is_released_after_the_block(tmp_path: Path) -> None:
    db = str(tmp_path / "monitor.db")
    Store.open(db).close()
    async with exclusive(db, owner="a:1") as first:
        assert first
        async with exclusive(db, owner="b:2") as second:
            assert not second
        assert lock_rows(Path(db)) == [(AUDIT_LOCK, "a:1")]
    assert lock_rows(Path(db)) == []


async def test_a_holder_cancelled_again_while_it_cleans_up_still_releases_the_lock(tmp_path: Path) -> None:
    """A service stop cancels the audit; its shutdown may cancel it once more
    while the lock is being released. The second cancel used to land in the
    release and leave the lock to its ttl."""
    db = str(tmp_path / "monitor.db")
    Store.open(db).close()
    inside = asyncio.Event()

    async def holder() -> None:
        async with exclusive(db, owner="a:1") as held:
            assert held
            inside.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(holder())
    await inside.wait()
    task.cancel()
    for _ in range(3):  # into the cleanup's awaits, then cancel again there
        await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert task.cancelled()
    assert lock_rows(Path(db)) == []
