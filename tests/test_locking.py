"""The audit lock (monitor/locking.py) on a real SQLite file."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import sys
from pathlib import Path

import pytest

from monitor.locking import AUDIT_LOCK, exclusive, holder_words
from monitor.store import Store
from simkit import DATABASE_HOLDER


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



async def test_a_lock_whose_release_failed_is_released_before_it_is_asked_for_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The disk full (or the database locked by another process) when the audit
    ends: the release fails and the row stays. The same process asking again
    found its own leftover "held" and skipped until the ttl passed (10 minutes)."""
    import monitor.store

    monkeypatch.setattr(monitor.store, "BUSY_TIMEOUT_S", 0.2)
    db = str(tmp_path / "monitor.db")
    Store.open(db).close()
    async with exclusive(db, owner="a:1") as held:
        assert held
        holder = await asyncio.create_subprocess_exec(sys.executable, "-c", DATABASE_HOLDER, db,
                                                      stdin=asyncio.subprocess.PIPE,
                                                      stdout=asyncio.subprocess.PIPE)
        assert holder.stdin is not None and holder.stdout is not None
        assert await holder.stdout.readline() == b"held\n"
    assert "event=lock_release_failed" in caplog.text
    holder.stdin.write(b"go\n")
    await holder.stdin.drain()
    assert await holder.wait() == 0
    assert lock_rows(Path(db)) == [(AUDIT_LOCK, "a:1")]  # the leftover
    async with exclusive(db, owner="b:2") as other:
        assert not other  # for anyone else it is a live holder's until its ttl
    async with exclusive(db, owner="a:1") as again:
        assert again
    assert lock_rows(Path(db)) == []


NOW = dt.datetime(2026, 11, 27, 15, 20, tzinfo=dt.UTC)


@pytest.mark.parametrize(("owner", "acquired", "said"), [
    ("vm:13366", "2026-11-27T15:13:58.161666+00:00", "process 13366 on vm, since 15:13:58 UTC"),
    ("vm:13366", "2026-11-26T23:59:01+00:00", "process 13366 on vm, since 2026-11-26 23:59:01 UTC"),
    ("box:7:pidns=4026532", "2026-11-27T16:13:58+01:00",
     "process 7 on box (pid namespace 4026532), since 15:13:58 UTC"),
    ("odd-owner", "not a time", "odd-owner, since not a time"),
])
def test_the_lock_holder_in_a_readers_words(owner: str, acquired: str, said: str) -> None:
    """Walkthrough 9 #17: was "vm:13366 since 2026-11-27T15:13:58.161666+00:00"."""
    assert holder_words(owner, acquired, NOW) == said
