"""Whether a scheduled audit did not happen, said where a webmaster or a
monitoring system looks: the dashboard's first line, /healthz `overdue`,
/metrics `monitor_audit_overdue`, and `monitor serve`'s start.

Walkthrough 11 #6: a service started on Friday 27 Nov over a database whose
latest audit ran Mon 16 Nov showed "Latest audit 16 Nov ... Next audit Mon
30 Nov" and /healthz "ok"; the audit of Mon 23 Nov never ran (the machine
was down past `misfire_grace_hours`, the service stopped, a crash loop) and
only a jq recipe on /healthz could notice.

The rule: a scheduled time later than the end of the latest finished full
audit, and further back than the grace, is an audit that did not happen.
The grace is `misfire_grace_hours` (until then the service itself may still
make the audit up: at start, or by its retries) plus how long the latest
audit took (one begun at the last moment of that grace would have finished
by then). An audit that ends after a scheduled time counts as that time's,
as the service's own bookkeeping does (`service._served`: a run resumed on
Monday morning is Monday's audit).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from monitor.schedule import previous_fire_time
from monitor.types import RunInfo, iso_moment
from monitor.types import as_utc as _aware

__all__ = ["Overdue", "find_overdue"]

UTC = dt.timezone.utc


def _utc(moment: dt.datetime) -> dt.datetime:
    """In UTC (a trigger answers in its own time zone; naive is UTC)."""
    return _aware(moment).astimezone(UTC)


STARTS_WITHIN = dt.timedelta(minutes=1)
"""A scheduled audit begins within seconds of its time: a run that never
finished, with no finished one before it, served the time just before it began."""


@dataclass(frozen=True, slots=True)
class Overdue:
    """The audits that did not happen, as of `now`."""

    scheduled: dt.datetime
    """The latest scheduled time whose audit did not happen (UTC)."""
    first: dt.datetime
    """The first such time since the latest finished audit (`scheduled` when one)."""
    since: dt.datetime
    """From when `scheduled` counts as missed: it plus the grace."""
    now: dt.datetime
    last_audit: dt.datetime | None = None
    """When the latest finished full audit began; None: none ever finished."""
    unfinished: RunInfo | None = None
    """A full run begun after it that has not finished (interrupted, or running)."""

    @property
    def days(self) -> int | None:
        return None if self.last_audit is None else (self.now - self.last_audit).days

    @property
    def began_but_unfinished(self) -> bool:
        """The missed time's audit began (the unfinished run is its), and did not end."""
        return (self.unfinished is not None
                and _utc(self.unfinished.started_at) >= self.scheduled - STARTS_WITHIN)

    def message(self) -> str:
        """ "No audit since 16 Nov (11 days): the audit of Mon 23 Nov 06:00 UTC did not run." """
        if self.last_audit is None:
            head = "No audit has finished yet"
        else:
            days = self.days or 0
            head = f"No audit since {_day(self.last_audit, self.now)} ({days} day{'s' if days != 1 else ''})"
        if self.first < self.scheduled:
            what = (f"the audits from {_moment(self.first, self.now)} to "
                    f"{_moment(self.scheduled, self.now)} did not run"
                    + (" or did not finish" if self.unfinished is not None else ""))
        elif self.began_but_unfinished:
            what = f"the audit of {_moment(self.scheduled, self.now)} began but did not finish"
        else:
            what = f"the audit of {_moment(self.scheduled, self.now)} did not run"
        text = f"{head}: {what}"
        run = self.unfinished
        if run is not None:
            text += (f" (run {run.id} began {_moment(_utc(run.started_at), self.now)} "
                     f"and is marked {run.status})")
        return text + "."

    def as_json(self) -> dict[str, Any]:
        """/healthz `overdue`."""
        run = self.unfinished
        return {
            "scheduled": iso_moment(self.scheduled),
            "first_scheduled": iso_moment(self.first),
            "overdue_since": iso_moment(self.since),
            "last_audit": None if self.last_audit is None else iso_moment(self.last_audit),
            "days": self.days,
            "unfinished_run": None if run is None else {
                "id": run.id, "status": run.status, "started_at": iso_moment(_utc(run.started_at))},
            "message": self.message(),
        }


def find_overdue(trigger: BaseTrigger, last: RunInfo | None, unfinished: RunInfo | None,
                 now: dt.datetime, misfire_grace: dt.timedelta) -> Overdue | None:
    """The audits `trigger` scheduled that did not happen by `now`, or None.

    `last` is the latest finished full audit, `unfinished` a full run begun
    after it that did not finish. With neither, nothing is said: nothing
    tells when the service was installed, and "No report yet" says when the
    first audit comes.
    """
    now = _utc(now)
    if last is not None and last.finished_at is not None:
        done = _utc(last.finished_at)
        grace = misfire_grace + max(done - _utc(last.started_at), dt.timedelta(0))
    elif unfinished is not None:
        done = _utc(unfinished.started_at) - STARTS_WITHIN
        grace = misfire_grace
    else:
        return None
    latest_due = now - grace
    if latest_due <= done:
        return None
    scheduled = previous_fire_time(trigger, latest_due, latest_due - done)
    if scheduled is None or _utc(scheduled) <= done:
        return None
    first = trigger.get_next_fire_time(None, done + dt.timedelta(microseconds=1))
    first = _utc(first) if first is not None and first <= scheduled else _utc(scheduled)
    if first <= done:
        first = _utc(scheduled)
    return Overdue(scheduled=_utc(scheduled), first=first, since=_utc(scheduled) + grace, now=now,
                   last_audit=None if last is None else _utc(last.started_at), unfinished=unfinished)


def _day(when: dt.datetime, now: dt.datetime) -> str:
    """ "16 Nov" ("16 Nov 2025" in another year), as the dashboard writes dates."""
    when = when.astimezone(UTC)
    return f"{when.day} {when:%b}" + (f" {when.year}" if when.year != now.year else "")


def _moment(when: dt.datetime, now: dt.datetime) -> str:
    """ "Mon 23 Nov 06:00 UTC", as the dashboard's "Next audit"."""
    when = when.astimezone(UTC)
    return f"{when:%a} {_day(when, now)} {when:%H:%M} UTC"
