"""The TLS trust the monitor's connections use: one builder for the checker
and the mail, apart from the HTTP client so that `monitor report` (mail
only) does not import aiohttp for it."""

from __future__ import annotations

import ssl

from monitor.errors import ConfigError

__all__ = ["make_ssl_context"]


def make_ssl_context(ca_file: str = "", key: str = "checker.ca_file") -> ssl.SSLContext:
    """The system trust store (OpenSSL honours SSL_CERT_FILE/SSL_CERT_DIR),
    plus a private CA when given, for an intranet, a mail relay or a test
    server. `key` names the setting in the error an unreadable file gives."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{key}: cannot load {ca_file!r}: {exc}") from None
    return context
