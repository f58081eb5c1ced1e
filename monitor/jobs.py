"""The jobs the entry points run: report a run, and the weekly check+report+send.

Entry-point level, like `cli` and `schedule`: the one place outside the CLI
that joins the checker (`crawl`) with the report (`reports`), so that
`monitor run`, `monitor serve` and `monitor demo` do the same thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import os
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from monitor.config import Settings, audit_scope
from monitor.errors import ConfigError, MonitorError
from monitor.forked import ChildDied
from monitor.store import Store
from monitor.types import RunInfo

if TYPE_CHECKING:
    from monitor.crawl import AuditOutcome
    from reports.render import Source

log = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    # Not crawl's: importing the checker (aiohttp) costs `monitor report` 0.2 s.
    return dt.datetime.now(dt.UTC)


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
    full_audit: int | None = None
    """When the run reported is partial (`check --page`): the latest full audit's id."""
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    """(key, address, server answer) of recipients refused while others accepted."""
    busy: bool = False
    """Another process was sending the outbox: nothing was tried."""
    unfinished: str | None = None
    """When the latest run was reported by default while a newer one is
    unfinished: a line saying so (a killed `monitor check` left run N, and
    run N-1's report came out as if it were the latest audit)."""
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason) of messages whose every recipient the mail server
    refused for good (5xx): not retried until `report --send` after a fix."""
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The recipients of each message the outbox took up, by key."""
    checked: str = ""
    """The report's own count, "90 links checked (53 URLs)", which `monitor
    run` prints: the terminal and the mail say one figure under one word."""


def smtp_password(settings: Settings) -> str | None:
    """The SMTP password, from the environment only (never from a file);
    None when mail is off or needs no login. A login whose variable is unset
    or empty is a configuration error: `run`, `serve` and `report --send`
    ask for it first, so it is said before an audit, not after."""
    email = settings.email
    if not email.enabled or not email.username:
        return None
    password = os.environ.get(email.password_env)
    if not password:
        raise ConfigError(
            f"{settings.source}: email.password_env: the environment variable {email.password_env} "
            f"is not set or empty; it must hold the SMTP password of email.username {email.username!r}")
    return password


def mail_tls_context(settings: Settings, given: ssl.SSLContext | None = None) -> ssl.SSLContext | None:
    """The system trust store, plus `email.ca_file` when the mail server uses a private CA."""
    if given is not None or not settings.email.ca_file:
        return given
    from monitor.tls import make_ssl_context

    return make_ssl_context(settings.email.ca_file, key="email.ca_file")


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a report is built.

    A report of 100,000 links makes a million objects that all live until
    the files are written; the collector's passes over them found nothing
    and cost 0.5-0.8 s of a 4 s report. Reference counting still frees
    everything else; the collector runs again afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
    from reports.deliver import flush_outbox, load_audit, previous_links_meanwhile, queue_report
    from reports.render import (ForeignFolder, checked_phrase, headline_text, names_report_file, save_report,
                                save_report_file)

    now = now or utcnow()
    asked = run_id
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
    # Closed: the previous report's links are read by a child forked now,
    # and no SQLite connection may cross a fork.
    with previous_links_meanwhile(settings.database.path, run_id) as previous_read, \
            Store.open(settings.database.path) as store:
        folder = out or Path(settings.report.dir)
        source = report_source(store, settings)
        key = "--out" if out is not None else f"{settings.source}: report.dir"
        refuse_foreign_folder(folder, source, key)  # before the audit is built: seconds at 100,000 links
        with _collector_paused():
            audit = load_audit(store, run_id, settings, now, previous_read=previous_read)
            try:
                saved = (save_report_file(audit, out, source) if out is not None and names_report_file(out)
                         else save_report(audit, folder, source))
            except ForeignFolder as exc:  # written meanwhile by another database's report
                raise ConfigError(f"{key}: {exc}") from None
            except ChildDied as exc:  # the JSON's writer (monitor.forked), not the folder
                raise MonitorError(
                    f"{exc}: the report was not saved; run {run_id} is saved in the database: "
                    f"`monitor report --config {settings.source} --run {run_id}` makes its report") from exc
            except OSError as exc:
                # After the audit (a disk full, a folder removed since the
                # check before it): name the key, and say the run is kept.
                # The file in the way is named when it is not the one given
                # (`--out weekly.html`, and weekly.json is a folder).
                why = exc.strerror or str(exc)
                if exc.strerror and exc.filename and Path(exc.filename) != Path(folder):
                    why = f"{exc.filename}: {exc.strerror}"
                raise MonitorError(
                    f"{key}: cannot save the report in {folder}: {why}; run {run_id} "
                    f"is saved in the database: `monitor report --config {settings.source} --run {run_id}` "
                    "makes its report once the folder can be written") from exc
        outcome = ReportOutcome(run_id, saved.html, saved.json, saved.index, headline_text(audit, "in the report"),
                                checked=checked_phrase(audit.counts))
        if asked is None:
            outcome.unfinished = unfinished_words(store, run_id, now, settings)
        if audit.run.partial:
            full = store.latest_run(full_only=True)
            outcome.full_audit = full.id if full else None
        if send:
            queued = queue_report(store, audit, settings, now, resend=resend,
                                  full_report=full_report_address(settings, saved.html))
            outcome.queued = [m.key for m in queued]
            store.mark_reported(run_id, now)
            result = await flush_outbox(store, settings.email, smtp_password(settings), now,
                                        tls_context=mail_tls_context(settings, tls_context))
            outcome.sent = list(result.sent)
            outcome.failed = list(result.failed)
            outcome.refused = list(result.refused)
            outcome.busy = result.busy
            outcome.rejected = list(result.rejected)
            outcome.addresses = dict(result.addresses)
            if outcome.sent or outcome.failed or outcome.rejected:
                _refresh_index(folder, report_source(store, settings))
    return outcome


def report_source(store: Store, settings: Settings) -> Source:
    """This database as its saved reports name it (file names only: the
    reports are published), with its runs' starts and the mail of each."""
    from reports.render import Source

    runs = store.runs(limit=2**31)
    path = settings.database.path
    return Source(store.database_id, Path(path).name, Path(settings.source).name,
                  runs={r.id: r.started_at for r in runs},
                  mail=store.mail_states(r.id for r in runs),
                  path=path if path == ":memory:" else str(Path(path).resolve()),
                  outbox=store.outbox_size())


def refuse_foreign_folder(folder: Path, source: Source, key: str) -> None:
    """Exit 2 (a configuration mistake: one `report.dir` for two databases)
    before a report of this database replaces another's."""
    from reports.render import ForeignFolder, refuse_foreign

    if not folder.is_dir():
        return
    try:
        refuse_foreign(folder, source)
    except ForeignFolder as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _refresh_index(folder: Path, source: Source) -> None:
    """The index again once mail went out, so its row says "mailed"; a
    failure here is the index's, not the report's (it was written)."""
    from reports.render import refresh_index

    try:
        refresh_index(folder, source)
    except OSError as exc:
        log.warning("event=index_not_refreshed folder=%s error=%s", folder, exc.strerror or exc)


def unfinished_words(store: Store, reported: int, now: dt.datetime, settings: Settings) -> str | None:
    """The line for a newer run than the one reported that has not finished:
    whether it is running now (a live lock), was stopped, or died without a
    word (SIGKILL, a power cut), and whether the next audit resumes it or
    starts a new run (`resumable_run`: the configuration changed since)."""
    from monitor.locking import AUDIT_LOCK, holder_words

    newest = store.latest_run(finished_only=False)
    if newest is None or newest.id <= reported or newest.status == "finished":
        return None
    started = newest.started_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    held = store.live_lock(AUDIT_LOCK, now)
    driver = store.run_driver(newest.id)
    # The audit lock is also held by `monitor serve`'s rechecks and `check
    # --page`: it is this run's only when its holder started or resumed it
    # (unknown for a run started by a version that did not record it).
    holder = held if held is not None and driver in (None, held[0]) else None
    if holder is not None:
        state = f"is running now (started {started}; run by {holder_words(holder[0], holder[1], now)})"
    elif newest.status == "interrupted":
        state = f"was interrupted (started {started})"
    else:
        state = f"did not finish (started {started}; its process was killed or the machine stopped)"
    line = f"run {newest.id} {state}: this is run {reported}'s report, the latest finished"
    if newest.partial:
        return line + f"; run {newest.id} audited only some pages (monitor check --page) and is not resumed"
    if holder is not None:
        return line + f"; `monitor report` once it has finished reports run {newest.id}"
    if resumable_run(store, settings) is None:
        return line + (f"; the next `monitor check` or `monitor run` starts a new run: the [[pages]], "
                       f"[[sites]] or checker.exclude of {settings.source} are not those run {newest.id} "
                       "started with")
    return line + f"; the next `monitor check` or `monitor run` resumes run {newest.id}"


def full_report_address(settings: Settings, html: Path) -> str:
    """Where a mail reader finds the whole report: its URL under
    `[report] base_url`, else the file's path on this server (a file:// link
    would open nothing on the reader's machine)."""
    base = settings.report.base_url
    if base:
        return base.rstrip("/") + "/" + urllib.parse.quote(html.name)
    return str(html.resolve())


async def flush_job(settings: Settings, now: dt.datetime | None = None,
                    tls_context: ssl.SSLContext | None = None) -> object:
    """Send what waits in the outbox (reports kept after a mail failure)."""
    from reports.deliver import flush_outbox

    with Store.open(settings.database.path) as store:
        if store.outbox_size() == 0:
            return None
        result = await flush_outbox(store, settings.email, smtp_password(settings), now or utcnow(),
                                    tls_context=mail_tls_context(settings, tls_context))
        if getattr(result, "sent", None) or getattr(result, "rejected", None):
            # a report kept earlier went out (its row says "mailed" now) or was refused for good
            _refresh_index(Path(settings.report.dir), report_source(store, settings))
        return result


LAST_AUDIT_KEY = "last_audit_at"
"""Meta key: when the latest weekly job began (its schedule's make-up decisions read it)."""
OPEN_JOB_KEY = "audit_job_open"
"""Meta key: set while a weekly job is open, so that a job cut short after its
audit, before its report, only reports on restart instead of auditing again."""


def run_of_open_job(store: Store) -> RunInfo | None:
    """The finished run of a weekly job that never closed, if its audit got that far."""
    opened = store.get_meta(OPEN_JOB_KEY)
    if not opened or store.unfinished_run() is not None:
        return None
    latest = store.latest_run(full_only=True)
    if latest is None or latest.started_at < dt.datetime.fromisoformat(opened):
        return None
    return latest


def resumable_run(store: Store, settings: Settings) -> RunInfo | None:
    """The unfinished run the next audit resumes: only one started with the
    pages, sites and exclusions the configuration has now (crawl.run_audit
    leaves any other interrupted and starts a new run)."""
    unfinished = store.unfinished_run()
    if unfinished is None or store.run_scope(unfinished.id) != audit_scope(settings):
        return None
    return unfinished


async def weekly_job(settings: Settings, *, progress=None, now=None,
                     tls_context: ssl.SSLContext | None = None,
                     notice=None) -> tuple[AuditOutcome | None, ReportOutcome]:
    """check + report + send, as one job that a crash cannot split or repeat.

    A job killed during its audit resumes that run (a new one if the pages,
    sites or exclusions were edited since: `resumable_run`); one killed after
    its audit but before its report only reports (the audit is None then).
    Either way one run ends in one report, sent once. `now` is a clock for
    runs that keep their own time (the demo's "last week", tests).
    """
    clock = now or utcnow
    with Store.open(settings.database.path) as store:  # a folder of another database's: before the audit
        refuse_foreign_folder(Path(settings.report.dir), report_source(store, settings),
                              f"{settings.source}: report.dir")
    # Whatever an earlier job left in the outbox goes first.
    early = await flush_job(settings, clock(), tls_context)
    with Store.open(settings.database.path) as store:
        done = run_of_open_job(store)
        unfinished = store.unfinished_run()
        resumed = resumable_run(store, settings)
        if unfinished is not None and resumed is None:
            # Its run will not be resumed (the configuration changed): this job's
            # audit begins now, and the schedule must count it from now.
            opened = clock().isoformat()
        else:
            opened = store.get_meta(OPEN_JOB_KEY) or (
                resumed.started_at.isoformat() if resumed else clock().isoformat())
        store.set_meta(OPEN_JOB_KEY, opened)
    outcome: AuditOutcome | None = None
    if done is not None:
        log.info("event=job_resumed run=%d note=the audit had finished; reporting it", done.id)
        run_id = done.id
    else:
        from monitor.crawl import run_audit

        outcome = await (run_audit(settings, progress=progress, now=now, notice=notice) if now
                         else run_audit(settings, progress=progress, notice=notice))
        run_id = outcome.run.id
    report = await report_job(settings, run_id=run_id, send=True, now=clock(), tls_context=tls_context)
    if sent_early := list(getattr(early, "sent", ())):
        # a report kept by an earlier job went out first: said with this
        # one's (`monitor run` named only this run's messages)
        report.sent[:0] = sent_early
        report.addresses = {**dict(getattr(early, "addresses", ())), **report.addresses}
    with Store.open(settings.database.path) as store:
        store.set_meta(LAST_AUDIT_KEY, opened)
        store.set_meta(OPEN_JOB_KEY, "")
    await prune_job(settings, clock())
    return outcome, report


def prune_reports(settings: Settings, now: dt.datetime) -> list[str]:
    """Remove the saved reports older than `report.keep_weeks` (see
    `reports.render.prune_saved`); logged, never fatal, like the history's."""
    weeks = settings.report.keep_weeks
    folder = Path(settings.report.dir)
    if weeks <= 0 or not folder.is_dir():
        return []
    from reports.render import prune_saved

    try:
        with Store.open(settings.database.path) as store:
            source = report_source(store, settings)
        removed = prune_saved(folder, (now - dt.timedelta(weeks=weeks)).date(), source)
    except (OSError, MonitorError) as exc:
        log.warning("event=reports_prune_failed folder=%s error=%s", folder,
                    getattr(exc, "strerror", None) or exc)
        return []
    if removed:
        log.info("event=reports_pruned files=%d older_than_weeks=%d folder=%s", len(removed), weeks, folder)
    return removed


async def prune_job(settings: Settings, now: dt.datetime) -> tuple[int, int]:
    """Forget the history older than `database.keep_weeks` (see Store.prune),
    and remove the saved reports older than `report.keep_weeks`.

    After the report, inside the job (so under the audit lock), in a thread:
    deleting a 100,000-link run takes seconds, and `monitor serve` keeps
    answering /healthz meanwhile. A failure is logged, never fatal: the
    report has gone out, and next week's job tries again.
    """
    prune_reports(settings, now)
    weeks = settings.database.keep_weeks
    if weeks <= 0:
        return 0, 0

    stopping = threading.Event()

    def prune() -> tuple[int, int]:
        with Store.open(settings.database.path, mapped=False) as store:  # one pass
            return store.prune(now - dt.timedelta(weeks=weeks), stop=stopping.is_set)

    work = asyncio.ensure_future(asyncio.to_thread(prune))
    try:
        runs, observations = await asyncio.shield(work)
    except asyncio.CancelledError:
        # A stop: the thread ends after the run it is deleting (its own
        # transaction, seconds at most); the rest waits for next week.
        stopping.set()
        await asyncio.wait({work})
        raise
    except MonitorError as exc:
        log.warning("event=prune_failed error=%s", exc)
        return 0, 0
    if runs or observations:
        log.info("event=history_pruned runs=%d observations=%d older_than_weeks=%d",
                 runs, observations, weeks)
    return runs, observations
