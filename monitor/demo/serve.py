"""`monitor demo --serve`: the demo's results behind the running service.

After the demo's two audits, the simulated site and the mail sink stay up
and `monitor serve`'s own code (monitor.service, monitor.web) runs on the
demo's database, with the editors' dashboard on a free loopback port, until
SIGTERM or Ctrl-C. A new user can then open the dashboard and run `check`,
`report`, `history` and `run` in another terminal against the live site.

Those commands need a configuration that reaches the simulated site:
`demo-live.toml` maps its names to the ports it listens on now (they change
at every start), trusts its CA and mails the sink. The service itself runs
on that very file, read back by `load_settings`, so what the user is told
to use is what is known to work. It is valid only while the demo runs and
is removed when it stops: ports left in a file would later reach whatever
else took them on this machine. `demo.toml` (refusing every connection)
stays for reading the results afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config import Settings, load_settings
from monitor.demo.run import DemoResult, demo_session, toml_pages, toml_string

__all__ = ["LIVE_CONFIG", "Live", "serve_demo", "toml_string", "write_live_config"]

LIVE_CONFIG = "demo-live.toml"

QUIET_LOGGERS = ("apscheduler", "mail.log")
"""At INFO, as `monitor serve` logs: APScheduler (as monitor.service.serve
does) and aiosmtpd, which logs every SMTP command of a `monitor run`."""


@dataclass(frozen=True)
class Live:
    """What `--serve` prints once the service listens."""

    result: DemoResult
    dashboard: str
    """The dashboard's address, ending in "/"."""
    config: Path
    """demo-live.toml, absolute (a second terminal may start elsewhere)."""
    next_audit: dt.datetime | None
    """The schedule's next weekly audit (the user should not be surprised by it)."""
    rechecks: tuple[float, ...]
    mail_dir: Path


def _strings(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(toml_string(v) for v in values) + "]"


def write_live_config(settings: Settings, workdir: Path) -> Path:
    """demo-live.toml: the demo's settings as a file `monitor` commands read,
    with the dashboard on and absolute paths."""
    checker, email = settings.checker, settings.email
    allow = checker.allow_private_networks
    allow_text = str(allow).lower() if isinstance(allow, bool) else _strings(allow)
    path = (workdir / LIVE_CONFIG).absolute()
    pages = toml_pages(settings)
    connect = "".join(f"{toml_string(k)} = {toml_string(v)}\n" for k, v in checker.connect_to)
    text = (
        f"# Written by `monitor demo --serve` (process {os.getpid()}) for the commands it prints.\n"
        "# Valid only while it runs: [checker.connect_to] sends the simulated site's names to\n"
        "# the loopback ports it listens on now, which change at every start. Removed when the\n"
        f"# demo stops; {(workdir / 'demo.toml').absolute()} then reads the results.\n\n"
        f"{pages}"
        "[checker]\n"
        f"timeout = {checker.timeout!r}   # short: one simulated host never answers\n"
        f"retries = {checker.retries}\nbackoff_base = {checker.backoff_base!r}\n"
        f"retry_after_max = {checker.retry_after_max!r}\n"
        "# The simulated hosts listen on 127.0.0.1; other private addresses stay refused.\n"
        f"allow_private_networks = {allow_text}\n"
        f"ca_file = {toml_string(str(Path(checker.ca_file).absolute()))}   # the simulated site's own CA\n"
        f"archive_url = {toml_string(checker.archive_url)}   # the simulated Wayback Machine\n\n"
        "# Like curl --connect-to; \"*\" = \"refuse\": no other name is ever looked up.\n"
        f"[checker.connect_to]\n{connect}\n"
        f"[database]\npath = {toml_string(str(Path(settings.database.path).absolute()))}\n\n"
        f"[schedule]\ncron = {toml_string(settings.schedule.cron)}\n"
        f"timezone = {toml_string(settings.schedule.timezone)}\n\n"
        f"[report]\ndir = {toml_string(str(Path(settings.report.dir).absolute()))}\n"
        f"site_name = {toml_string(settings.report.site_name)}\n\n"
        f"# The demo's mail sink: what it receives is filed in {(workdir / 'mail').absolute()}\n"
        f"[email]\nhost = {toml_string(email.host)}\nport = {email.port}\n"
        f"security = {toml_string(email.security)}\nsender = {toml_string(email.sender)}\n"
        f"recipients = {_strings(email.recipients)}\n\n"
        "# The editors' dashboard: loopback only, any free port (the demo prints it).\n"
        "[server]\nenabled = true\nhost = \"127.0.0.1\"\nport = 0\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


async def serve_demo(workdir: Path, *, progress: Any = None,
                     audited: Callable[[DemoResult], None] = lambda result: None,
                     ready: Callable[[Live], None] = lambda live: None) -> int:
    """The demo, then the service on its database until a signal; its exit status.

    `audited` is called once the audits are done (before the service starts,
    so the results are said even if it cannot); `ready` once the dashboard
    listens. The site and the sink stop after the service, which flushes its
    outbox to the sink on the way out."""
    from monitor.service import Service
    from monitor.store import Store

    async with demo_session(workdir, progress) as (result, running):
        audited(result)
        config = write_live_config(running.settings, workdir)
        try:
            settings = load_settings(config)
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
            Store.keep_existing()  # as `monitor serve`
            service = Service(settings)
            serving = asyncio.create_task(service.run())
            listening = asyncio.create_task(service.ready.wait())
            await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
            if not listening.done():  # the service failed to start: its error, raised here
                listening.cancel()
                return await serving
            try:
                assert service.http_url is not None  # write_live_config turns the server on
                ready(Live(result=result, dashboard=service.http_url + "/", config=config,
                           next_audit=service.next_run(), rechecks=settings.schedule.rechecks,
                           mail_dir=(workdir / "mail").absolute()))
                return await serving
            finally:
                if not serving.done():  # `ready` failed (a closed stdout): stop it as a signal would
                    service.request_stop()
                    await asyncio.wait({serving})
        finally:
            config.unlink(missing_ok=True)
