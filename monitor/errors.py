"""The error tree of the monitor.

    MonitorError            anything the CLI reports as exit 1, one clear line
    ├── ConfigError         a bad configuration file or option: exit 2
    ├── StoreError          the database cannot be opened or is locked
    └── DeliveryError       the mail server refused or could not be reached

Errors from aiohttp, asyncio, ssl and smtplib are translated at one boundary
each (`check.py` into `ErrorKind`, `reports/mail.py` into `DeliveryError`).
"""

from __future__ import annotations

from monitor.types import ErrorKind

__all__ = ["MonitorError", "ConfigError", "StoreError", "DeliveryError", "ErrorKind"]


class MonitorError(Exception):
    """Base class: the message is shown to the user as is."""


class ConfigError(MonitorError):
    """A configuration or usage mistake (exit status 2)."""


class StoreError(MonitorError):
    """The history database could not be used."""


class DeliveryError(MonitorError):
    """A report could not be delivered; it stays in the outbox."""
