"""The scheduler wiring: cron triggers in a time zone, the backwards search for
the latest fire time, and a real AsyncIOScheduler firing a job."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor import schedule
from monitor.config import ScheduleSettings
from monitor.service import missed_fire

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")


def at(text: str, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def test_weekly_trigger_reads_day_names_in_the_configured_zone() -> None:
    trigger = schedule.weekly_trigger(ScheduleSettings(cron="0 6 * * mon", timezone="Europe/Paris"))
    # 2026-11-18 is a Wednesday: the next fire is Monday the 23rd, 06:00 Paris (05:00 UTC).
    fire = trigger.get_next_fire_time(None, at("2026-11-18T12:00:00"))
    assert fire == at("2026-11-23T06:00:00", PARIS)
    assert fire.astimezone(UTC) == at("2026-11-23T05:00:00")


@pytest.mark.parametrize(
    ("weekday", "fires_on"),
    [
        # crontab's numbers: 0 and 7 are Sunday, 1 is Monday (APScheduler 3 alone: 1 = Tuesday)
        ("1", ["Mon"]),
        ("0", ["Sun"]),
        ("7", ["Sun"]),
        ("mon", ["Mon"]),
        ("1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("5-7", ["Fri", "Sat", "Sun"]),
        ("*/2", ["Sun", "Tue", "Thu", "Sat"]),
        ("1/2", ["Mon", "Wed", "Fri", "Sun"]),
        ("0,3", ["Sun", "Wed"]),
        ("mon-3", ["Mon", "Tue", "Wed"]),
        ("sat,0", ["Sat", "Sun"]),
        ("*", ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]),
    ],
)
def test_weekday_numbers_mean_what_they_mean_in_a_crontab(weekday: str, fires_on: list[str]) -> None:
    trigger = schedule.weekly_trigger(ScheduleSettings(cron=f"0 6 * * {weekday}", timezone="UTC"))
    fire, days = at("2026-11-22T00:00:00"), set()  # a Sunday: one week of fires from here
    while (fire := trigger.get_next_fire_time(None, fire + dt.timedelta(seconds=1))) < at("2026-11-29T00:00:00"):
        days.add(fire.strftime("%a"))
    assert sorted(days) == sorted(fires_on)


@pytest.mark.parametrize(
    ("cron", "tz", "now", "window_hours", "expected"),
    [
        # the Monday before, at 06:00 UTC
        ("0 6 * * mon", "UTC", "2026-11-25T10:00:00", 24 * 8, "2026-11-23T06:00:00"),
        # exactly at the fire time: that fire counts
        ("0 6 * * mon", "UTC", "2026-11-23T06:00:00", 24, "2026-11-23T06:00:00"),
        # one second before: last week's fire, outside a one-day window
        ("0 6 * * mon", "UTC", "2026-11-23T05:59:59", 24, None),
        ("0 6 * * mon", "UTC", "2026-11-23T05:59:59", 24 * 7, "2026-11-16T06:00:00"),
        # every 20 minutes: the latest one, not the first in the window
        ("*/20 * * * *", "UTC", "2026-11-23T10:59:30", 24, "2026-11-23T10:40:00"),
        # local time across the end of daylight saving time (Paris, 25 Oct 2026)
        ("0 6 * * *", "Europe/Paris", "2026-10-25T07:00:00", 2, "2026-10-25T05:00:00"),
        ("0 6 * * *", "Europe/Paris", "2026-10-24T07:00:00", 4, "2026-10-24T04:00:00"),
    ],
)
def test_previous_fire_time(cron: str, tz: str, now: str, window_hours: float,
                            expected: str | None) -> None:
    trigger = CronTrigger.from_crontab(cron, timezone=ZoneInfo(tz))
    found = schedule.previous_fire_time(trigger, at(now), dt.timedelta(hours=window_hours))
    assert (found.astimezone(UTC) if found else None) == (at(expected) if expected else None)


def test_previous_fire_time_with_second_resolution() -> None:
    trigger = CronTrigger(second="*/2", timezone=UTC)
    now = at("2026-11-23T10:00:07.250000")
    assert schedule.previous_fire_time(trigger, now, dt.timedelta(hours=24)) == at("2026-11-23T10:00:06")


def test_previous_fire_time_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        schedule.previous_fire_time(CronTrigger(hour=6), dt.datetime(2026, 11, 23), dt.timedelta(days=1))


WEEKLY = CronTrigger.from_crontab("0 6 * * mon", timezone=UTC)
DAY = dt.timedelta(hours=24)


@pytest.mark.parametrize(
    ("last_audit_at", "now", "grace", "expected"),
    [
        # down over Monday morning, back on Monday noon: make it up
        ("2026-11-16T06:00:05", "2026-11-23T12:00:00", DAY, "2026-11-23T06:00:00"),
        # already audited this week
        ("2026-11-23T06:00:01", "2026-11-23T12:00:00", DAY, None),
        # never audited: the latest fire within grace
        (None, "2026-11-23T12:00:00", DAY, "2026-11-23T06:00:00"),
        # back on Wednesday: outside the grace period, wait for next Monday
        ("2026-11-16T06:00:05", "2026-11-25T12:00:00", DAY, None),
        # down for three weeks, grace of a month: one run for the latest fire only
        ("2026-11-02T06:00:05", "2026-11-23T12:00:00", dt.timedelta(days=30), "2026-11-23T06:00:00"),
    ],
)
def test_missed_fire(last_audit_at: str | None, now: str, grace: dt.timedelta,
                     expected: str | None) -> None:
    last = at(last_audit_at) if last_audit_at else None
    assert missed_fire(WEEKLY, last, at(now), grace) == (at(expected) if expected else None)


async def test_scheduler_fires_the_job_on_its_trigger() -> None:
    """A real AsyncIOScheduler started in the running loop fires a cron with seconds."""
    fired: list[dt.datetime] = []
    scheduler = schedule.build_scheduler("UTC")
    scheduler.start()

    async def job() -> None:
        fired.append(dt.datetime.now(UTC))

    try:
        schedule.add_weekly_job(scheduler, job, CronTrigger(second="*", timezone=UTC))
        for _ in range(50):
            if len(fired) >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        scheduler.shutdown(wait=False)
    assert len(fired) >= 2
    assert fired[1] - fired[0] >= dt.timedelta(seconds=0.5)


async def test_a_make_up_run_comes_first_then_the_trigger_resumes() -> None:
    fired: list[str] = []
    scheduler = schedule.build_scheduler("UTC")
    scheduler.start()

    async def job() -> None:
        fired.append("run")

    try:
        now = dt.datetime.now(UTC)
        job_ = schedule.add_weekly_job(scheduler, job, WEEKLY, run_now_at=now)
        assert job_.next_run_time == now
        for _ in range(30):
            if fired:
                break
            await asyncio.sleep(0.05)
        # After the make-up run, the next one is the trigger's next Monday, not another now.
        nxt = schedule.next_run_time(scheduler)
        assert nxt is not None and nxt > now + dt.timedelta(minutes=1)
        assert nxt == WEEKLY.get_next_fire_time(None, dt.datetime.now(UTC))
    finally:
        scheduler.shutdown(wait=False)
    assert fired == ["run"]


async def test_a_job_never_runs_twice_at_once() -> None:
    """max_instances=1: a fire while the job still runs is skipped, not stacked."""
    active = 0
    most = 0
    runs = 0
    scheduler = schedule.build_scheduler("UTC")
    scheduler.start()

    async def slow() -> None:
        nonlocal active, most, runs
        active += 1
        runs += 1
        most = max(most, active)
        await asyncio.sleep(0.35)
        active -= 1

    try:
        schedule.add_interval_job(scheduler, slow, 0.1, job_id="slow")
        await asyncio.sleep(1.0)
    finally:
        scheduler.shutdown(wait=False)
    assert runs >= 2
    assert most == 1


def test_interval_trigger_has_a_previous_fire_too() -> None:
    start = at("2026-11-23T00:00:00")
    trigger = IntervalTrigger(minutes=5, start_date=start)
    assert schedule.previous_fire_time(trigger, at("2026-11-23T00:12:00"), DAY) == at("2026-11-23T00:10:00")


NEW_YORK = ZoneInfo("America/New_York")


def fires(trigger: CronTrigger, start: dt.datetime, count: int) -> list[dt.datetime]:
    """The trigger's next `count` fires as the scheduler asks for them (previous fire, now)."""
    out: list[dt.datetime] = []
    previous, now = None, start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        out.append(fire.astimezone(UTC))
        previous, now = fire, fire.astimezone(UTC) + dt.timedelta(milliseconds=10)
    return out


@pytest.mark.parametrize(
    ("cron", "tz", "start", "expected"),
    [
        # Spring forward (Paris, 29 Mar 2026: 02:00 -> 03:00): 02:30 does not exist that
        # night; the audit runs once, at 03:30 local (01:30 UTC), not skipped.
        ("30 2 * * sun", PARIS, "2026-03-28T12:00:00", ["2026-03-29T01:30:00", "2026-04-05T00:30:00"]),
        ("30 2 * * sun", NEW_YORK, "2026-03-07T12:00:00", ["2026-03-08T07:30:00", "2026-03-15T06:30:00"]),
        # Fall back (Paris, 25 Oct 2026: 03:00 -> 02:00): 02:30 comes twice. Once, at the
        # first (summer time) one; APScheduler alone fired again an hour later.
        ("30 2 * * sun", PARIS, "2026-10-24T12:00:00", ["2026-10-25T00:30:00", "2026-11-01T01:30:00"]),
        ("30 2 * * *", PARIS, "2026-10-24T12:00:00",
         ["2026-10-25T00:30:00", "2026-10-26T01:30:00", "2026-10-27T01:30:00"]),
        ("30 1 * * sun", NEW_YORK, "2026-10-31T12:00:00", ["2026-11-01T05:30:00", "2026-11-08T06:30:00"]),
        # ISO week 53 of 2026, then week 1 of 2027; a 29 February cron waits for 2028.
        ("0 6 * * mon", PARIS, "2026-12-27T12:00:00", ["2026-12-28T05:00:00", "2027-01-04T05:00:00"]),
        ("0 6 29 2 *", PARIS, "2026-03-01T00:00:00", ["2028-02-29T05:00:00", "2032-02-29T05:00:00"]),
        # An hourly cron keeps both passes of the repeated hour: each is an hour apart.
        ("0 * * * *", PARIS, "2026-10-24T23:30:00",
         ["2026-10-25T00:00:00", "2026-10-25T01:00:00", "2026-10-25T02:00:00"]),
    ],
)
def test_the_weekly_trigger_across_daylight_saving_changes_and_calendar_edges(
        cron: str, tz: ZoneInfo, start: str, expected: list[str]) -> None:
    trigger = schedule.weekly_trigger(ScheduleSettings(cron=cron, timezone=tz.key))
    assert fires(trigger, at(start), len(expected)) == [at(e) for e in expected]


def test_a_start_after_the_repeated_hour_does_not_make_up_its_second_pass() -> None:
    """The service audited at 02:30 summer time and was restarted at 02:45 winter
    time: the second 02:30 is not a missed run."""
    trigger = schedule.weekly_trigger(ScheduleSettings(cron="30 2 * * sun", timezone="Europe/Paris"))
    last = at("2026-10-25T00:30:05")
    assert missed_fire(trigger, last, at("2026-10-25T01:45:00"), DAY) is None
    # ... but a service that was down at the first one makes that one up.
    fire = missed_fire(trigger, at("2026-10-18T00:30:05"), at("2026-10-25T01:45:00"), DAY)
    # (in UTC: an ambiguous local time never equals another zone's, PEP 495)
    assert fire is not None and fire.astimezone(UTC) == at("2026-10-25T00:30:00")
