"""`monitor serve`: the long-running service.

It must run for months unattended, so each rule here answers a way it could
go wrong:

- **One audit at a time, across processes.** Every audit and every batch of
  rechecks holds the store's "audit" lock (owner "host:pid", a ttl refreshed
  by a heartbeat every ttl/3). A second `serve` on the same database that
  finds the lock held skips and says so in the log. A crashed holder's lock
  is stale (dead pid on this host, or ttl passed) and is taken over. If our
  own heartbeat finds the lock gone (we were frozen past the ttl and another
  process took over), our audit is cancelled at once rather than run twice.
  Within this process the audit and the rechecks take turns (`_turn`): the
  lock is not re-entrant, and a weekly fire that came during a recheck round
  found its own lock taken and skipped the whole week; it now waits for the
  round (seconds) and a round never starts during an audit.
- **Missed runs.** APScheduler knows nothing of the time the machine was
  down. The service keeps `last_audit_at` in the database; at start, if the
  trigger's latest fire time is later than that and within
  `schedule.misfire_grace_hours`, the audit runs once now (three missed
  weeks are still one run). Every round (below) asks the same question of
  the clock: asyncio's timers count the monotonic clock, which stops while
  the machine is suspended, so after a resume (or an NTP step forward) the
  scheduler's timer wakes up late by that long; the round runs the audit
  instead, once. A `last_audit_at` later than the clock (the clock went
  back) is ignored, not taken as "every time until then is done".
- **An audit that did not happen is tried again.** When the audit fails
  (the database locked by a backup past the busy timeout, the disk full,
  the report folder unwritable) or another process holds the lock at the
  scheduled time, the rounds try it again, after 1, 2, 4, ... rounds (a
  lock held elsewhere: every round), until it is done (here or by the
  holder, which then wrote `last_audit_at`) or `misfire_grace_hours` have
  passed (`audit_missed`). One line says a job failed; the same failure
  again is logged at DEBUG, and `job_recovered` says when it works again.
- **Crashes and kills.** An unfinished run in the database is resumed at
  start (`crawl.run_audit` skips the URLs it already observed), and finishes
  as one run with one report, if the configuration still has the pages,
  sites and exclusions it started with; else it stays "interrupted" and a
  new run starts (`resume_pending config_changed=True`, `run_not_resumed`). A job that died after its audit but before its
  report (the `audit_job_open` mark is still set) only sends that report.
- **Stopping.** SIGTERM and SIGINT cancel the running job; `run_audit`
  commits the observations already made and marks the run "interrupted",
  the outbox gets one short chance to flush, the lock is released, and the
  process exits 0. The next start resumes the run.
- **Rechecks.** Every few minutes, failing links whose recheck is due
  (`schedule.rechecks` hours after the failure began) are checked again, so
  a failure is confirmed or cleared before the weekly report, and reports
  kept in the outbox after a mail failure are retried with their backoff.

Logs are single lines on stderr: `time level logger event=name key=value ...`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import signal
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from apscheduler.triggers.base import BaseTrigger

from monitor import schedule
from monitor.config import Settings
from monitor.crawl import recheck, utcnow
from monitor.errors import MonitorError, failure_line
from monitor.jobs import LAST_AUDIT_KEY, OPEN_JOB_KEY, resumable_run
from monitor.locking import AUDIT_LOCK, Presence, exclusive
from monitor.overdue import Overdue, find_overdue
from monitor.store import Store, lock_owner
from monitor.types import RunInfo, read_no_page

__all__ = [
    "AUDIT_LOCK",
    "LAST_AUDIT_KEY",
    "OPEN_JOB_KEY",
    "Service",
    "ServiceOptions",
    "log_event",
    "missed_fire",
    "serve",
]

log = logging.getLogger(__name__)


T = TypeVar("T")
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class ServiceOptions:
    """Knobs of the service itself, not of the configuration file; tests change them."""

    recheck_interval: float = 300.0
    """Seconds between two recheck-and-outbox rounds."""
    lock_ttl: dt.timedelta = dt.timedelta(minutes=10)
    """A lock not refreshed for this long is stale; the heartbeat refreshes it every ttl/3."""
    stop_timeout: float = 20.0
    """Seconds to wait for a cancelled job to write what it has (under systemd's TimeoutStopSec)."""
    flush_timeout: float = 5.0
    """Seconds the outbox gets at stop; what is not sent stays queued."""
    trigger: BaseTrigger | None = None
    """Replaces the configured cron (tests fire every two seconds)."""
    now: Clock = utcnow
    """The clock of audits, rechecks and the make-up decision (locks use the wall clock)."""
    tls_context: ssl.SSLContext | None = None
    """For the mail server (a private CA in tests)."""
    progress_every: int = 1000
    """Log an audit_progress line every this many checked URLs."""
    late_after: dt.timedelta = dt.timedelta(minutes=1)
    """A scheduled time this far behind the clock with no audit begun since is
    one the scheduler's timer slept through (a suspend): a round runs it."""


MAX_RETRY_WAIT = 64
"""Rounds between two tries of a failed audit at most (5 h 20 at 5 minutes a round)."""


# -- logging ---------------------------------------------------------------------


class _Fields:
    """key=value pairs, formatted only if the line is emitted."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return "".join(f" {key}={_value(value)}" for key, value in self.fields.items())


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def log_event(level: int, event: str, /, logger: logging.Logger = log, **fields: Any) -> None:
    """One structured line: `event=audit_started run=7 pages=2`."""
    logger.log(level, "event=%s%s", event, _Fields(fields))


# -- decisions -------------------------------------------------------------------


def missed_fire(trigger: BaseTrigger, last_audit_at: dt.datetime | None, now: dt.datetime,
                grace: dt.timedelta) -> dt.datetime | None:
    """The scheduled fire the service slept through, to make up now; None if there is none.

    Only the latest fire within `grace` counts: several missed fires are one
    run, and a fire older than the grace period is left for the next one (a
    report three weeks late helps nobody more than next Monday's). A service
    that never audited (`last_audit_at` None) makes up the latest fire too.
    """
    fire = schedule.previous_fire_time(trigger, now, grace)
    if fire is None:
        return None
    if last_audit_at is not None and fire <= last_audit_at:
        return None
    return fire


@dataclass(frozen=True)
class _Facts:
    unfinished: RunInfo | None
    last_audit_at: dt.datetime | None
    open_job: str
    config_changed: bool = False
    """The unfinished run started with other pages, sites or exclusions: the
    audit starts a new run instead of resuming it (crawl.run_audit)."""


@dataclass
class _Pending:
    """A scheduled audit that has not happened yet, tried again by the rounds."""

    fire: dt.datetime
    """The scheduled time it makes up (for a start-up job, when it was due), in UTC."""
    failures: int = 0
    """Tries that failed in a row (a lock held elsewhere is not a failure)."""
    wait: int = 0
    """Rounds to let pass before the next try."""
    error: str = ""
    skipped: bool = False


def _facts(store: Store, settings: Settings | None = None) -> _Facts:
    last = store.get_meta(LAST_AUDIT_KEY)
    unfinished = store.unfinished_run()
    return _Facts(
        unfinished=unfinished,
        config_changed=(unfinished is not None and settings is not None
                        and resumable_run(store, settings) is None),
        last_audit_at=dt.datetime.fromisoformat(last) if last else None,
        open_job=store.get_meta(OPEN_JOB_KEY) or "",
    )


def _served(store: Store, fire: dt.datetime) -> None:
    """Record that an audit served `fire`, when its job began before it.

    The job writes `last_audit_at` as the time it began, and a job that
    finished a run cut short on Sunday began on Sunday: the rounds then took
    Monday 06:00 for missed and audited again right after. The run finished
    on Monday morning is Monday's audit. A job that only sent the report of
    an audit finished earlier serves no time: an audit follows.
    """
    last = store.get_meta(LAST_AUDIT_KEY)
    if last is None or dt.datetime.fromisoformat(last) < fire:
        store.set_meta(LAST_AUDIT_KEY, fire.astimezone(dt.timezone.utc).isoformat())


# -- the service -----------------------------------------------------------------


class Service:
    """The scheduler, its two jobs, the lock, signals and the optional HTTP endpoint."""

    def __init__(self, settings: Settings, options: ServiceOptions | None = None) -> None:
        self.settings = settings
        self.options = options or ServiceOptions()
        self.owner = lock_owner()
        self.scheduler = schedule.build_scheduler(settings.schedule.timezone)
        self.trigger = self.options.trigger or schedule.weekly_trigger(settings.schedule)
        self.ready = asyncio.Event()
        """Set once the jobs are scheduled (and the HTTP endpoint listens)."""
        self.http_url: str | None = None
        self.audits_done = 0
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy: str | None = None
        self._turn = asyncio.Lock()
        """Held by the audit or a recheck round, whichever runs: one at a time in this process."""
        self._audit_active = False
        """An audit job is on (or waiting for its turn): a second one is not started."""
        self._pending: _Pending | None = None
        self._failing: dict[str, tuple[str, int]] = {}
        """Per job, the error it failed with last and how many times in a row."""
        self.rounds_done = 0
        self._clock_warned = False
        self._web: Any = None
        self._presence: Presence | None = None

    # status, read by /healthz and /metrics

    @property
    def running(self) -> bool:
        """True while this process runs an audit."""
        return self._busy == "audit"

    def next_run(self) -> dt.datetime | None:
        return schedule.next_run_time(self.scheduler)

    def overdue_audit(self, last: RunInfo | None, unfinished: RunInfo | None) -> Overdue | None:
        """The scheduled audits that did not happen by now (`monitor.overdue`),
        by this service's trigger and clock: /healthz, /metrics, the dashboard
        and the start-up line judge alike."""
        return find_overdue(self.trigger, last, unfinished, self.now(), self._grace())

    # lifecycle

    def request_stop(self, signum: int | None = None) -> None:
        name = signal.Signals(signum).name if signum else "request"
        if self._stop.is_set():
            log_event(logging.WARNING, "stop_pending", signal=name)
            return
        log_event(logging.INFO, "stopping", signal=name)
        self._stop.set()

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or `request_stop`); 0 after a clean stop."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for signum in signals:
            loop.add_signal_handler(signum, self.request_stop, signum)
        started = False
        try:
            await self._start()
            started = True
            await self._stop.wait()
        finally:
            await self._shutdown(flush=started)
            for signum in signals:
                loop.remove_signal_handler(signum)
        return 0

    async def _start(self) -> None:
        from monitor.config import require_mail_addresses
        from monitor.jobs import smtp_password

        if self.settings.email.enabled:
            require_mail_addresses(self.settings)  # no address: refused now, not at Monday's report
            smtp_password(self.settings)  # a missing password fails now, not at Monday's report
        facts, now = await self._read_facts()  # opens and migrates the database: a bad path fails here
        reason = self._startup_reason(facts, now)
        await self._say_overdue(reason)
        self._presence = Presence(self.settings.database.path, self.owner, self.options.lock_ttl)
        if other := await self._presence.start():
            log_event(logging.WARNING, "another_service", holder=other,
                      note=f"another monitor serve ({other}) uses this database; this one starts too: "
                           "both keep the schedule, recheck and mail. If that one was left running by "
                           "mistake (a manual serve beside systemd's), stop one of them")
        self.scheduler.start()
        schedule.add_weekly_job(self.scheduler, self._weekly, self.trigger)
        schedule.add_interval_job(self.scheduler, self._rechecks, self.options.recheck_interval)
        if self.settings.server.enabled:
            from monitor.web import start_server

            self._web, self.http_url = await start_server(self.settings, self)
            log_event(logging.INFO, "http_listening", url=self.http_url)
        else:
            # said, not left to be noticed: a newcomer waited for a dashboard
            # the log never mentioned (review 13 #4)
            server = self.settings.server
            log_event(logging.INFO, "dashboard_off",
                      note=f"[server] enabled = false in {self.settings.source}: no dashboard, "
                           f"/healthz or /metrics; set enabled = true under [server] to serve them "
                           f"on {server.host}:{server.port}")
        log_event(logging.INFO, "service_started", pid=self.owner.rsplit(":", 1)[-1],
                  database=self.settings.database.path, run_now=reason[0] if reason else None,
                  next_scheduled=self.trigger.get_next_fire_time(None, dt.datetime.now(dt.timezone.utc)))
        self.ready.set()
        if reason is not None:
            # Our own task, not APScheduler's next_run_time: that one is on the
            # wall clock, where `now` may be a test's or the demo's.
            self._spawn_audit(*reason)

    def _startup_reason(self, facts: _Facts, now: dt.datetime) -> tuple[str, dt.datetime] | None:
        """Why the audit job runs at once ("resume", "report", "catch_up"), and
        the time it makes up; None if nothing is to run."""
        if facts.unfinished is not None:
            log_event(logging.INFO, "resume_pending", run=facts.unfinished.id,
                      status=facts.unfinished.status, config_changed=facts.config_changed)
            return "resume", now
        if facts.open_job:
            # Died after its audit, before its report; or another process is in the middle
            # of it (then the lock makes this run skip).
            log_event(logging.INFO, "job_not_closed", started=facts.open_job)
            return "report", now
        fire = missed_fire(self.trigger, facts.last_audit_at, now, self._grace())
        if fire is not None:
            log_event(logging.INFO, "missed_run", scheduled=fire, last_audit=facts.last_audit_at)
            return "catch_up", fire
        return None

    async def _say_overdue(self, reason: tuple[str, dt.datetime] | None) -> None:
        """One WARNING at start when a scheduled audit did not happen (walkthrough
        11 #6: the log had only `service_started ... run_now=-`), saying whether
        something runs now. The missed time itself is never made up: it is past
        misfire_grace_hours, so it waits for the next scheduled time; `run_now`
        is a resume, a report, or a later time's make-up."""
        def latest(store: Store) -> tuple[RunInfo | None, RunInfo | None]:
            last = store.latest_run(full_only=True)
            unfinished = store.unfinished_run()
            if unfinished is not None and last is not None and unfinished.id < last.id:
                unfinished = None
            return last, unfinished

        last, unfinished = await self._db(latest)
        overdue = self.overdue_audit(last, unfinished)
        if overdue is None:
            return
        log_event(logging.WARNING, "audit_overdue", scheduled=overdue.scheduled,
                  last_audit=overdue.last_audit, days=overdue.days,
                  run_now=reason[0] if reason else None,
                  next_scheduled=self.trigger.get_next_fire_time(None, self.now()),
                  message=overdue.message()
                  + ("" if reason else " It is not made up: it is more than misfire_grace_hours "
                     f"({self.settings.schedule.misfire_grace_hours:g}) late, so the next audit is the "
                     "next scheduled one."))

    def _grace(self) -> dt.timedelta:
        return dt.timedelta(hours=self.settings.schedule.misfire_grace_hours)

    async def _shutdown(self, flush: bool = True) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.options.stop_timeout)
            if late:
                log_event(logging.ERROR, "stop_timeout", jobs=len(late))
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if flush:
            await self._flush_outbox_briefly()
        if self._web is not None:
            await self._web.cleanup()
        if self._presence is not None:
            await self._presence.close()
        log_event(logging.INFO, "service_stopped")

    async def _flush_outbox_briefly(self) -> None:
        from monitor.jobs import flush_job

        try:
            result = await asyncio.wait_for(
                flush_job(self.settings, self.now(), self.options.tls_context),
                self.options.flush_timeout,
            )
        except (TimeoutError, MonitorError, OSError) as exc:
            log_event(logging.WARNING, "outbox_not_flushed", error=_short(exc))
            return
        if result is not None:
            log_event(logging.INFO, "outbox_flushed", sent=len(getattr(result, "sent", ())),
                      failed=len(getattr(result, "failed", ())))

    # jobs

    def now(self) -> dt.datetime:
        return self.options.now()

    async def _weekly(self) -> None:
        """The scheduled job."""
        if self._audit_active:
            log_event(logging.DEBUG, "audit_skipped", reason="already_running")
            return
        self._audit_active = True
        await self._tracked("audit", self._audit_turn(None))

    def _spawn_audit(self, reason: str, fire: dt.datetime) -> None:
        """Start the audit job outside the schedule (start-up, a retry, a late timer)."""
        if self._audit_active:
            log_event(logging.DEBUG, "audit_skipped", reason="already_running")
            return
        self._audit_active = True
        task = asyncio.create_task(self._tracked("audit", self._audit_turn(fire)),
                                   name=f"audit-{reason}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _audit_turn(self, fire: dt.datetime | None) -> None:
        """One try of the audit job; `fire` None for the schedule's own fire."""
        try:
            if self._turn.locked():
                log_event(logging.INFO, "audit_waiting", reason="recheck_running")
            async with self._turn:
                await self._try_audit(fire)
        finally:
            self._audit_active = False

    async def _try_audit(self, fire: dt.datetime | None) -> None:
        now = self.now()
        try:
            facts, now = await self._read_facts()
            if fire is None:
                fire = self._scheduled_fire(facts, now)
                if fire is None:
                    return
            served = fire
            ran = await self._exclusive("audit", lambda: self._audit_job(served))
        except asyncio.CancelledError:
            if not self._stop.is_set() and fire is not None:
                # Our lock was lost to another process, which resumes the run; if it
                # does not finish it, the rounds will.
                self._pending = _Pending(fire.astimezone(dt.timezone.utc), skipped=True)
            raise
        except Exception as exc:
            self._audit_failed(fire or now, exc)
            return
        if ran:
            self._audit_done()
        else:
            self._audit_skipped(fire)

    def _scheduled_fire(self, facts: _Facts, now: dt.datetime) -> dt.datetime | None:
        """The fire this job serves; None when an audit began since (a round or
        another process made it up already)."""
        window = max(self._grace(), dt.timedelta(hours=1))
        fire = schedule.previous_fire_time(self.trigger, now, window) or now
        if facts.last_audit_at is not None and fire <= facts.last_audit_at:
            log_event(logging.INFO, "audit_not_due", scheduled=fire, last_audit=facts.last_audit_at)
            return None
        return fire

    def _audit_failed(self, fire: dt.datetime, exc: Exception) -> None:
        pending = self._pending_for(fire)
        pending.failures += 1
        pending.wait = min(2 ** (pending.failures - 1), MAX_RETRY_WAIT) - 1
        error = _short(exc)
        level = logging.ERROR if error != pending.error else logging.DEBUG
        pending.error = error
        seconds = (pending.wait + 1) * self.options.recheck_interval
        log_event(level, "job_failed", job="audit", error=error, retry_in=_duration(seconds),
                  until=pending.fire + self._grace())
        log.debug("the audit job failed", exc_info=exc)

    def _audit_skipped(self, fire: dt.datetime) -> None:
        pending = self._pending_for(fire)
        log_event(logging.DEBUG if pending.skipped else logging.INFO, "audit_skipped", reason="lock_held",
                  retry_in=_duration(self.options.recheck_interval))
        pending.skipped = True
        pending.wait = 0

    def _audit_done(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and pending.failures:
            log_event(logging.INFO, "job_recovered", job="audit", failures=pending.failures)

    def _pending_for(self, fire: dt.datetime) -> _Pending:
        fire = fire.astimezone(dt.timezone.utc)  # an ambiguous local time never compares equal (PEP 495)
        if self._pending is None or self._pending.fire != fire:
            self._pending = _Pending(fire)
        return self._pending

    async def _audit_if_due(self) -> None:
        """At each round: try a pending audit again, or run one the timer slept through."""
        if self._audit_active:
            return
        facts, now = await self._read_facts()
        pending = self._pending
        if pending is not None:
            if facts.last_audit_at is not None and facts.last_audit_at >= pending.fire:
                log_event(logging.INFO, "audit_done_elsewhere", scheduled=pending.fire,
                          last_audit=facts.last_audit_at)
                self._pending = None
            elif now > pending.fire + self._grace():
                log_event(logging.ERROR, "audit_missed", scheduled=pending.fire, tries=pending.failures,
                          error=pending.error or ("lock_held" if pending.skipped else None),
                          next_scheduled=self.trigger.get_next_fire_time(None, now))
                self._pending = None
            elif pending.wait > 0:
                pending.wait -= 1
            else:
                self._spawn_audit("retry", pending.fire)
            return
        fire = missed_fire(self.trigger, facts.last_audit_at, now, self._grace())
        if fire is not None and now - fire >= self.options.late_after:
            log_event(logging.INFO, "missed_run", scheduled=fire, last_audit=facts.last_audit_at,
                      reason="late_timer")
            self._spawn_audit("late", fire)

    async def _rechecks(self) -> None:
        await self._tracked("recheck", self._recheck_round())

    async def _tracked(self, kind: str, work: Awaitable[Any]) -> None:
        """Run a job so that stopping can cancel it and wait for its cleanup."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await work
        except asyncio.CancelledError:
            # The end of the job, not of the loop: APScheduler would log a traceback.
            log_event(logging.INFO, "job_cancelled", job=kind)
        except Exception as exc:
            self._failed(kind, exc)
        else:
            self._recovered(kind)
        finally:
            self._tasks.discard(task)

    def _failed(self, kind: str, exc: Exception, event: str = "job_failed",
                level: int = logging.ERROR) -> None:
        """One line per new failure: a database locked for an hour fails every
        round, and said so every five minutes."""
        error = _short(exc)
        previous, count = self._failing.get(kind, ("", 0))
        self._failing[kind] = (error, count + 1)
        log_event(level if error != previous else logging.DEBUG, event, job=kind, error=error)
        log.debug("%s failed", kind, exc_info=exc)

    def _recovered(self, kind: str) -> None:
        if kind in self._failing:
            _, count = self._failing.pop(kind)
            log_event(logging.INFO, "job_recovered", job=kind, failures=count)

    async def _exclusive(self, kind: str, body: Callable[[], Awaitable[None]]) -> bool:
        """Run `body` holding the audit lock; False when another holder has it."""
        async with exclusive(self.settings.database.path, owner=self.owner,
                             ttl=self.options.lock_ttl) as held:
            if not held:
                return False
            self._busy = kind
            try:
                await body()
            finally:
                self._busy = None
        return True

    async def _audit_job(self, fire: dt.datetime) -> None:
        from monitor.jobs import weekly_job

        facts, _ = await self._read_facts()
        if facts.last_audit_at is not None and facts.last_audit_at >= fire:
            # Asked before the lock was ours: its holder has done this audit meanwhile.
            log_event(logging.INFO, "audit_done_elsewhere", scheduled=fire, last_audit=facts.last_audit_at)
            return
        log_event(logging.INFO, "audit_started", pages=len(self.settings.pages),
                  sites=len(self.settings.sites),
                  resuming=facts.unfinished.id if facts.unfinished and not facts.config_changed else None)
        audit, report = await weekly_job(self.settings, progress=self._progress(), now=self.now,
                                         tls_context=self.options.tls_context)
        if audit is not None:
            log_event(logging.INFO, "audit_finished", run=audit.run.id, resumed=audit.resumed,
                      pages=audit.pages, pages_failed=audit.pages_failed, urls=audit.urls,
                      checked=audit.checked, seconds=round(audit.seconds, 1),
                      **{k: v for k, v in sorted(audit.by_status.items())})
            if read_no_page(audit.pages, audit.pages_failed):
                # `check`/`run` exit 1 here; a service has no exit status, so its log says it.
                log_event(logging.WARNING, "audit_read_no_page", run=audit.run.id, pages=audit.pages,
                          pages_failed=audit.pages_failed,
                          note="no watched page could be fetched, so no link was checked")
        self._log_report(report)
        if audit is not None:
            await self._db(lambda s: _served(s, fire))
        self.audits_done += 1

    @staticmethod
    def _log_report(report: Any) -> None:
        log_event(logging.INFO, "report_done", run=report.run_id, html=str(report.html_path),
                  queued=len(report.queued), sent=len(report.sent), kept=len(report.failed))
        for key, reason in report.failed:
            log_event(logging.WARNING, "report_kept", key=key, error=reason)

    def _progress(self) -> Callable[[int, int], None]:
        every = max(1, self.options.progress_every)

        def progress(done: int, total: int) -> None:
            if done % every == 0 or done == total:
                log_event(logging.INFO, "audit_progress", done=done, total=total)

        return progress

    async def _recheck_round(self) -> None:
        """Retry the outbox, the audit if one is owed, then recheck the failing links that are due."""
        try:
            await self._flush_outbox()
            await self._audit_if_due()
            await self._recheck_if_due()
        finally:
            self.rounds_done += 1

    async def _flush_outbox(self) -> None:
        from monitor.jobs import flush_job

        try:
            result = await flush_job(self.settings, self.now(), self.options.tls_context)
        except MonitorError as exc:
            self._failed("outbox", exc, "outbox_flush_failed", logging.WARNING)
            return
        self._recovered("outbox")
        if result is not None and (getattr(result, "sent", ()) or getattr(result, "failed", ())):
            log_event(logging.INFO, "outbox_flushed", sent=len(result.sent),  # type: ignore[attr-defined]
                      failed=len(result.failed))  # type: ignore[attr-defined]

    async def _recheck_if_due(self) -> None:
        now, hours = self.now(), self.settings.schedule.rechecks
        if self._turn.locked() or self._audit_active:
            return  # our own audit runs (its observations count anyway), or is waiting to
        if not await self._db(lambda s: s.due_rechecks(now, hours)):
            return  # nothing due: no lock taken, no write (a round every five minutes)
        if self._turn.locked() or self._audit_active:
            return
        async with self._turn:
            if not await self._exclusive("recheck", self._recheck_due):
                log_event(logging.DEBUG, "recheck_skipped", reason="lock_held")

    async def _recheck_due(self) -> None:
        now = self.now()
        hours = self.settings.schedule.rechecks
        due: list[str] = await self._db(lambda s: s.due_rechecks(now, hours))
        if not due:
            return
        log_event(logging.INFO, "recheck_started", urls=len(due))
        counter: Counter[str] = await recheck(self.settings, due, now=self.now)
        log_event(logging.INFO, "recheck_finished", urls=len(due),
                  **{k: v for k, v in sorted(counter.items())})

    async def _read_facts(self) -> tuple[_Facts, dt.datetime]:
        """The database's facts, and the time they are judged at.

        A `last_audit_at` in the future means the clock went back since (a
        machine booted with its clock a year ahead, audited, then corrected
        by NTP): trusted, it made every scheduled time look done until the
        clock caught up. It is ignored; the next audit writes a true one.
        """
        facts = await self._db(lambda store: _facts(store, self.settings))
        now = self.now()
        last = facts.last_audit_at
        if last is not None and last > now + self.options.late_after:
            if not self._clock_warned:
                log_event(logging.WARNING, "clock_behind", last_audit=last, now=now,
                          note="the last audit is dated later than now; ignored")
                self._clock_warned = True
            facts = replace(facts, last_audit_at=None)
        return facts, now

    # the database, one short-lived connection per call, off the loop

    async def _db(self, fn: Callable[[Store], T]) -> T:
        path = self.settings.database.path

        def call() -> T:
            with Store.open(path) as store:
                return fn(store)

        return await asyncio.to_thread(call)


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{round(seconds / 60)}m"
    return f"{seconds:g}s"


def _short(exc: BaseException) -> str:
    """An error in one line for the log and /healthz; a database another
    process holds is said as the commands say it (`failure_line`), not as
    SQLite's bare "database is locked"."""
    if words := failure_line(exc):
        return words
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def serve(settings: Settings, options: ServiceOptions | None = None) -> int:
    """`monitor serve`: run the service until a signal stops it."""
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return await Service(settings, options).run()
