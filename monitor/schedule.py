"""APScheduler 3.x wiring for `monitor serve`: triggers and jobs, no decisions.

Why these settings (see ../shared/DEPENDENCIES.md):

- `AsyncIOScheduler` must be started inside the running loop, so
  `build_scheduler` only builds it and `service` starts it.
- Jobs live in the default in-memory job store. Downtime is not APScheduler's
  business here: the service keeps its own `last_audit_at` in the database
  and makes up a missed run at start (re-adding a persistent job would
  recompute its next run time and lose the missed one anyway).
- `coalesce=True` and `max_instances=1`: a loop that wakes late (a suspended
  laptop, a long garbage collection) runs the job once, never twice at once.
  `misfire_grace_time=None` runs a late fire however late, since coalescing
  already limits it to one.
- Cron strings are read with `CronTrigger.from_crontab` in the configured
  IANA time zone, so "0 6 * * mon" is 06:00 local time on both sides of a
  daylight-saving change. Weekday numbers are crontab's (0 and 7 Sunday,
  1 Monday), not APScheduler 3's (0 Monday): `config.crontab_weekdays`
  writes them as day names first.
- A local time that does not exist (02:30 on the spring-forward night) fires
  once, an hour later by the clock (03:30), as APScheduler does. A local time
  that happens twice (02:30 on the fall-back night) fires once, at the first
  pass: APScheduler fires at both, an hour apart, which was a second audit
  and a second mail (`LocalCronTrigger`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import ScheduleSettings, crontab_weekdays

__all__ = [
    "RECHECK_JOB",
    "WEEKLY_JOB",
    "add_interval_job",
    "add_weekly_job",
    "build_scheduler",
    "next_run_time",
    "LocalCronTrigger",
    "previous_fire_time",
    "weekly_trigger",
]

WEEKLY_JOB = "weekly"
RECHECK_JOB = "rechecks"

JobFunc = Callable[[], Awaitable[Any]]

_JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


class LocalCronTrigger(CronTrigger):
    """A cron trigger that fires once at a local time the clock shows twice.

    On the fall-back night 02:30 comes twice (summer time, then an hour later
    winter time) and APScheduler 3 fires at both. Like Vixie cron, a job at a
    fixed hour runs at the first pass only; a job whose hour field is a
    wildcard ("0 * * * *", "*/20 */2 * * *") runs at both, since each pass is
    its own hour of elapsed time.
    """

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None,
                           now: dt.datetime) -> dt.datetime | None:
        fire = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and self._second_pass(fire):
            after = fire.astimezone(dt.timezone.utc) + dt.timedelta(microseconds=1)
            fire = super().get_next_fire_time(fire, after)
        return fire

    def _second_pass(self, fire: dt.datetime) -> bool:
        if fire.fold != 1 or self._hour_is_wildcard():
            return False
        first = fire.replace(fold=0)
        return first.utcoffset() != fire.utcoffset()  # the same wall time existed an hour earlier

    def _hour_is_wildcard(self) -> bool:
        hour = next(f for f in self.fields if f.name == "hour")
        return str(hour).startswith("*")


def weekly_trigger(schedule: ScheduleSettings) -> CronTrigger:
    """The audit's cron trigger, in the configured time zone."""
    return LocalCronTrigger.from_crontab(crontab_weekdays(schedule.cron),
                                         timezone=ZoneInfo(schedule.timezone))


def build_scheduler(timezone: str = "UTC") -> AsyncIOScheduler:
    """A scheduler with our job defaults; start it inside the running loop."""
    return AsyncIOScheduler(timezone=ZoneInfo(timezone), job_defaults=dict(_JOB_DEFAULTS))


def add_weekly_job(scheduler: AsyncIOScheduler, func: JobFunc, trigger: BaseTrigger,
                   *, run_now_at: dt.datetime | None = None) -> Job:
    """The audit job; `run_now_at` makes its first run then (a make-up run), not at the trigger's.

    After that first run APScheduler asks the trigger for the next fire time
    after it, so a make-up run never adds a second run for the same fire.
    """
    extra: dict[str, Any] = {}
    if run_now_at is not None:
        extra["next_run_time"] = run_now_at
    return scheduler.add_job(func, trigger, id=WEEKLY_JOB, name="weekly audit",
                             replace_existing=True, **extra)


def add_interval_job(scheduler: AsyncIOScheduler, func: JobFunc, seconds: float,
                     *, job_id: str = RECHECK_JOB) -> Job:
    """A job every `seconds` (the rechecks and the outbox), first run one interval from now."""
    return scheduler.add_job(func, IntervalTrigger(seconds=seconds), id=job_id, name=job_id,
                             replace_existing=True)


def next_run_time(scheduler: AsyncIOScheduler, job_id: str = WEEKLY_JOB) -> dt.datetime | None:
    job = scheduler.get_job(job_id)
    return None if job is None else job.next_run_time


def previous_fire_time(trigger: BaseTrigger, now: dt.datetime,
                       window: dt.timedelta) -> dt.datetime | None:
    """The trigger's latest fire time in [now - window, now], or None.

    APScheduler 3 triggers only look forward (`get_next_fire_time`), so this
    searches backwards by bisection over whole seconds: next(s), the first
    fire at or after s, grows with s, and we want the largest s whose next
    fire is still <= now. About 20 trigger calls for a one-day window, where
    stepping forward through a `second="*/2"` trigger would take 43,200.
    """
    if now.tzinfo is None:
        raise ValueError("previous_fire_time needs an aware datetime")
    start = now - window

    def first_from(offset: int) -> dt.datetime | None:
        return trigger.get_next_fire_time(None, start + dt.timedelta(seconds=offset))

    first = first_from(0)
    if first is None or first > now:
        return None
    lo, hi = 0, int(window.total_seconds()) + 1  # first_from(lo) <= now; first_from(hi) > now
    while hi - lo > 1:
        mid = (lo + hi) // 2
        fire = first_from(mid)
        if fire is not None and fire <= now:
            lo = mid
        else:
            hi = mid
    return first_from(lo)
