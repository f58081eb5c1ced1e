"""The error tree of the monitor.

    MonitorError            anything the CLI reports as exit 1, one clear line
    ├── ConfigError         a bad configuration file or option: exit 2
    ├── StoreError          the database cannot be opened or is locked
    └── DeliveryError       the mail server refused or could not be reached

Errors from aiohttp, asyncio, ssl and smtplib are translated at one boundary
each (`check.py` into `ErrorKind`, `reports/mail.py` into `DeliveryError`).
"""

from __future__ import annotations

import sqlite3

from monitor.types import ErrorKind

__all__ = ["MonitorError", "ConfigError", "StoreError", "DeliveryError", "ErrorKind", "failure_line"]


class MonitorError(Exception):
    """Base class: the message is shown to the user as is."""


class ConfigError(MonitorError):
    """A configuration or usage mistake (exit status 2)."""


class StoreError(MonitorError):
    """The history database could not be used; `path` is its file, when known."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DeliveryError(MonitorError):
    """A report could not be delivered; it stays in the outbox."""


def _held_by_another(exc: BaseException) -> bool:
    """Whether `exc` comes of SQLite's lock held past the busy timeout."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, sqlite3.OperationalError):
            code = getattr(cause, "sqlite_errorcode", 0) & 0xFF
            if code == sqlite3.SQLITE_BUSY or "database is locked" in str(cause):
                return True
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    return False


def failure_line(exc: BaseException) -> str | None:
    """The line a command ends with for a failure whose own words would not
    tell a webmaster what to do, or None to keep the error's own. Said here
    once for every command: SQLite's bare "database is locked" after the
    10 s wait left the reader to guess that another program was writing."""
    if not _held_by_another(exc):
        return None
    path = getattr(exc, "path", None)
    where = f"the database {path}" if path else "the monitor's database (database.path)"
    return (f"{where} is busy: another process is writing to it (a `monitor run`, `check` or "
            "`serve`, a backup, the sqlite3 shell); try again when it has finished")
