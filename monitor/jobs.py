"""The jobs the entry points run: report a run, and the weekly check+report+send.

Entry-point level, like `cli` and `schedule`: the one place outside the CLI
that joins the checker (`crawl`) with the report (`reports`), so that
`monitor run`, `monitor serve` and `monitor demo` do the same thing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from monitor.config import Settings
from monitor.crawl import AuditOutcome, run_audit, utcnow
from monitor.errors import MonitorError
from monitor.store import Store

log = logging.getLogger(__name__)


@dataclass
class ReportOutcome:
    run_id: int
    html_path: Path
    json_path: Path
    index_path: Path
    headline: str
    queued: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def smtp_password(settings: Settings) -> str | None:
    """The SMTP password, from the environment only (never from a file)."""
    if not settings.email.username:
        return None
    password = os.environ.get(settings.email.password_env)
    if password is None:
        raise MonitorError(
            f"{settings.source}: email.username is set but the environment variable "
            f"{settings.email.password_env} (email.password_env) holding the password is not"
        )
    return password


def mail_tls_context(settings: Settings, given: ssl.SSLContext | None = None) -> ssl.SSLContext | None:
    """The system trust store, plus `email.ca_file` when the mail server uses a private CA."""
    if given is not None or not settings.email.ca_file:
        return given
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=settings.email.ca_file)
    return context


async def report_job(
    settings: Settings,
    *,
    run_id: int | None = None,
    out: Path | None = None,
    send: bool = False,
    resend: bool = False,
    now: dt.datetime | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> ReportOutcome:
    """Render (and with `send`, queue and deliver) the report of a run."""
    from reports.deliver import flush_outbox, load_audit, queue_report
    from reports.render import headline, save_report

    now = now or utcnow()
    with Store.open(settings.database.path) as store:
        if run_id is None:
            latest = store.latest_run()
            if latest is None:
                raise MonitorError(
                    f"{settings.database.path}: no finished run to report yet; run `monitor check` first"
                )
            run_id = latest.id
        elif store.get_run(run_id) is None:
            raise MonitorError(f"{settings.database.path}: there is no run {run_id}")
        audit = load_audit(store, run_id, settings, now)
        saved = save_report(audit, out or Path(settings.report.dir))
        outcome = ReportOutcome(run_id, saved.html, saved.json, saved.index, headline(audit))
        if send:
            queued = queue_report(store, audit, settings, now, resend=resend,
                                  full_report_url=saved.html.resolve().as_uri())
            outcome.queued = [m.key for m in queued]
            store.mark_reported(run_id, now)
            result = await flush_outbox(store, settings.email, smtp_password(settings), now,
                                        tls_context=mail_tls_context(settings, tls_context))
            outcome.sent = list(result.sent)
            outcome.failed = list(result.failed)
    return outcome


async def flush_job(settings: Settings, now: dt.datetime | None = None,
                    tls_context: ssl.SSLContext | None = None) -> object:
    """Send what waits in the outbox (reports kept after a mail failure)."""
    from reports.deliver import flush_outbox

    with Store.open(settings.database.path) as store:
        if store.outbox_size() == 0:
            return None
        return await flush_outbox(store, settings.email, smtp_password(settings), now or utcnow(),
                                  tls_context=mail_tls_context(settings, tls_context))


async def weekly_job(settings: Settings, *, progress=None, now=utcnow,
                     tls_context: ssl.SSLContext | None = None) -> tuple[AuditOutcome, ReportOutcome]:
    """check + report + send, as one job. A resumed run still ends in one report."""
    # Whatever an earlier run left in the outbox goes first.
    await flush_job(settings, now(), tls_context)
    outcome = await run_audit(settings, progress=progress, now=now)
    report = await report_job(settings, run_id=outcome.run.id, send=True, now=now(),
                              tls_context=tls_context)
    return outcome, report
