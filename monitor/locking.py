"""One audit at a time per database, across processes.

`monitor serve`, `monitor run` and `monitor check` all hold the store's
"audit" lock while they audit: two audits on one database would both resume
the same unfinished run and observe its URLs twice. The lock has a ttl that a
heartbeat refreshes every ttl/3, so a crashed holder's lock goes stale and is
taken over (the store also takes over the lock of a dead pid on this host).
A holder that finds its lock gone (it was frozen past the ttl and someone
else took over) cancels its own work rather than audit alongside.

A release can fail (the disk full, the database locked by another process
past the busy timeout): the row stays, and for everyone else it is a live
holder's until the ttl passes. This process remembers it and deletes it
before asking for the lock again: `monitor serve` retrying the audit once
the disk had room skipped it as "lock held" by its own leftover for ten
minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from monitor.errors import MonitorError
from monitor.store import Store, lock_owner

log = logging.getLogger(__name__)

AUDIT_LOCK = "audit"
DEFAULT_TTL = dt.timedelta(minutes=10)

T = TypeVar("T")

_unreleased: set[tuple[str, str, str]] = set()
"""(path, name, owner) of the locks this process failed to release."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _db(path: str, fn: Callable[[Store], T]) -> T:
    def call() -> T:
        with Store.open(path) as store:
            return fn(store)

    return await asyncio.to_thread(call)


@contextlib.asynccontextmanager
async def exclusive(path: str, *, owner: str | None = None, ttl: dt.timedelta = DEFAULT_TTL,
                    name: str = AUDIT_LOCK) -> AsyncIterator[bool]:
    """Hold the lock for the block; yields False (and holds nothing) when it is taken."""
    owner = owner or lock_owner()
    key = (path, name, owner)
    if key in _unreleased:
        # Failing again (the disk still full) is that error, not "lock held" by ourselves.
        await _db(path, lambda s: s.release_lock(name, owner))
        _unreleased.discard(key)
    if not await _db(path, lambda s: s.acquire_lock(name, owner, _utcnow(), ttl)):
        yield False
        return
    _unreleased.discard(key)
    holder = asyncio.current_task()
    assert holder is not None
    heartbeat = asyncio.create_task(_heartbeat(path, name, owner, ttl, holder), name=f"{name}-lock-heartbeat")
    failing = False
    try:
        yield True
    except BaseException:
        failing = True
        raise
    finally:
        heartbeat.cancel()
        # A stop cancels the holder, and may cancel it again while it cleans
        # up: the release runs as a task of its own that a second cancel
        # cannot interrupt (left to the ttl, the lock would make the next
        # `monitor run` refuse for ten minutes).
        release = asyncio.create_task(_release(path, name, owner, heartbeat, quiet=failing))
        try:
            await asyncio.shield(release)
        except asyncio.CancelledError:
            await asyncio.wait({release})
            raise


async def _release(path: str, name: str, owner: str, heartbeat: asyncio.Task[None],
                   *, quiet: bool = False) -> None:
    """Delete the lock's row. After a job that failed (or was stopped), a
    failed release is logged at INFO: it is that failure again (the disk
    full), which the job's own error says; a WARNING line before it made a
    full disk five lines instead of one."""
    await asyncio.gather(heartbeat, return_exceptions=True)
    try:
        await _db(path, lambda s: s.release_lock(name, owner))
    except MonitorError as exc:
        _unreleased.add((path, name, owner))
        log.log(logging.INFO if quiet else logging.WARNING,
                "event=lock_release_failed lock=%s error=%s note=released before it is taken again", name, exc)


async def _heartbeat(path: str, name: str, owner: str, ttl: dt.timedelta, holder: asyncio.Task[object]) -> None:
    while True:
        await asyncio.sleep(ttl.total_seconds() / 3)
        try:
            kept = await _db(path, lambda s: s.refresh_lock(name, owner, _utcnow(), ttl))
        except MonitorError as exc:
            log.warning("event=lock_refresh_failed lock=%s error=%s", name, exc)
            continue
        if not kept:
            log.error("event=lock_lost lock=%s note=another process took it over; stopping our job", name)
            holder.cancel()
            return


def held_by(path: str, name: str = AUDIT_LOCK) -> str:
    """Who holds the lock, for an error message ("process 13366 on vm, since 15:13:58 UTC")."""
    with Store.open(path) as store:
        row = store._row("SELECT owner, acquired_at FROM locks WHERE name = ?", (name,))
    return holder_words(row[0], row[1], dt.datetime.now(dt.UTC)) if row else "another process"


SERVICE_LOCK = "service"
"""The row a running `monitor serve` keeps fresh: not a lock that refuses
anything (the audit lock already keeps two audits apart), the sign that a
service uses the database, so that a second one says it is not alone (a
forgotten manual `serve` beside systemd's mails and rechecks twice)."""


class Presence:
    """This service's row under SERVICE_LOCK, refreshed every ttl/3.

    `other` is who held it when we started ("host:pid since ..."), or None:
    then the row is ours until `close`. A service that started second does
    not take the row over while the first runs; it tries again at each
    refresh, so once the first stops, the next one to start warns of it."""

    def __init__(self, path: str, owner: str, ttl: dt.timedelta = DEFAULT_TTL) -> None:
        self.path, self.owner, self.ttl = path, owner, ttl
        self.other: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str | None:
        """Take the row; the other service holding it, in words, if any.

        Best effort: a database locked past the busy timeout (a backup) must
        not stop the service from starting (its jobs retry such failures);
        the refresh tries again."""
        try:
            if not await self._take():
                self.other = await asyncio.to_thread(held_by, self.path, SERVICE_LOCK)
        except MonitorError as exc:
            log.debug("event=presence_unknown error=%s", exc)
        self._task = asyncio.create_task(self._refresh(), name="service-presence")
        return self.other

    async def _take(self) -> bool:
        return await _db(self.path, lambda s: s.acquire_lock(SERVICE_LOCK, self.owner, _utcnow(), self.ttl))

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.ttl.total_seconds() / 3)
            try:
                kept = await _db(self.path, lambda s: s.refresh_lock(SERVICE_LOCK, self.owner, _utcnow(),
                                                                    self.ttl))
                if not kept:
                    await self._take()
            except MonitorError as exc:  # a busy or full database: the next refresh tries again
                log.debug("event=presence_refresh_failed error=%s", exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await _db(self.path, lambda s: s.release_lock(SERVICE_LOCK, self.owner))
        except MonitorError as exc:  # left to the ttl: the next service waits that long to be "alone"
            log.debug("event=presence_release_failed error=%s", exc)


def holder_words(owner: str, acquired_at: str, now: dt.datetime) -> str:
    """A lock's owner ("vm:13366", "vm:13366:pidns=4026532") and start in a
    reader's words: "process 13366 on vm, since 15:13:58 UTC" (the date too
    when it is not today's). Was "vm:13366 since 2026-11-27T15:13:58.161666+00:00"."""
    host, _, rest = owner.partition(":")
    pid, _, namespace = rest.partition(":")
    who = f"process {pid} on {host}" if pid.isdigit() else owner
    if namespace.startswith("pidns="):
        who += f" (pid namespace {namespace.removeprefix('pidns=')})"
    try:
        since = dt.datetime.fromisoformat(acquired_at).astimezone(dt.UTC)
    except (TypeError, ValueError):
        return f"{who}, since {acquired_at}"
    shown = f"{since:%H:%M:%S} UTC" if since.date() == now.astimezone(dt.UTC).date() \
        else f"{since:%Y-%m-%d %H:%M:%S} UTC"
    return f"{who}, since {shown}"
