"""Links checked by hand and found fine (`monitor accept`). Pure.

A "Needs a person" row (a bot wall, a login, a 403) asks an editor to open
the link in a browser; nothing recorded that they did, so the same rows came
back every week, counted "still open", for as long as the publisher kept its
wall (walkthrough 10 #6). `checker.exclude` was the only way out, and it
stops checking the URL for good.

An acceptance records who opened the link, when, and what they found. The
link is still checked every week; while it answers as it did when accepted,
its rows leave the problems and the counts for one quiet line. It lapses,
for good, when the link answers otherwise (now a 404, or it works again),
when it is undone, or after `ACCEPT_WEEKS`: a bot wall answers the same
whether the article is behind it or was removed, so nothing the monitor
sees can tell that the article went; a person has to look again now and
then. Half a year is two looks a year per link: a handful of minutes,
against 26 weekly reports that stay quiet.

Only what a person can judge in a browser can be accepted: a `blocked` link
(but an intranet address, `private_address`, which no outside reader can
open whatever the person sees) and a `drifted` one (the page changed; a
person can tell that it still holds the cited item). A moved, expired or
failing link has a fix or may pass by itself: accepting it would only hide
it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from monitor.types import Acceptance, LinkStatus, as_utc

__all__ = [
    "ACCEPTABLE",
    "ACCEPT_WEEKS",
    "accepted_head",
    "accepted_words",
    "current",
    "ended_words",
    "in_force",
    "lapsed_since",
    "refusal",
]

ACCEPT_WEEKS = 26
"""How long an acceptance holds while the link answers the same (see the
module's docstring for why half a year)."""

ACCEPTABLE = frozenset({LinkStatus.BLOCKED, LinkStatus.DRIFTED})
"""Statuses whose rows a person's look can clear."""

NOT_AN_ANSWER = frozenset({LinkStatus.ERROR})
"""An observation with this status (no answer in time, a 5xx) neither keeps
nor ends an acceptance: it says nothing of the article. While the link fails
so, its rows are listed as any failing link's; when the wall answers again,
the acceptance holds again."""


def refusal(status: LinkStatus | str, reason: str) -> str:
    """Why a link with this answer cannot be accepted ("" when it can): the
    one clear line `monitor accept` says."""
    status = LinkStatus(status)
    if status in ACCEPTABLE and reason != "private_address":
        return ""
    if reason == "private_address":
        return ("it points at a private network address (an intranet): readers outside that network "
                "cannot open it, whatever a browser here shows; link a public copy or remove it")
    return {
        LinkStatus.OK: "it works: there is nothing to accept",
        LinkStatus.MOVED: "it moved to a new address: update the link (the report gives the new one)",
        LinkStatus.EXPIRED: "the site says it is gone (expired): fix the link; a person's look cannot clear that",
        LinkStatus.ERROR: "the site fails to answer (error): it is checked again and may pass by itself; "
                          "nothing a person sees now would last",
        LinkStatus.SKIPPED: "the monitor does not check it (skipped): it is never a problem",
    }.get(status, f"its status ({status.value}) is not one a person can judge")


def in_force(a: Acceptance, status: LinkStatus | str, at: dt.datetime) -> bool:
    """Whether `a` clears a row with `status` at time `at`: accepted by then,
    not undone, not expired, the link answering as when accepted, and no
    check since `a` was made having answered otherwise up to `at`."""
    at = as_utc(at)
    if as_utc(a.accepted_at) > at or at >= as_utc(a.until):
        return False
    if a.undone_at is not None and as_utc(a.undone_at) <= at:
        return False
    if a.changed_at is not None and as_utc(a.changed_at) <= at:
        return False
    return LinkStatus(status) == a.status


def current(records: Iterable[Acceptance], at: dt.datetime) -> Acceptance | None:
    """The acceptance that speaks for a URL at `at`: the latest made by then."""
    at = as_utc(at)
    made = [a for a in records if as_utc(a.accepted_at) <= at]
    return max(made, key=lambda a: (as_utc(a.accepted_at), a.id)) if made else None


def ended_at(a: Acceptance) -> dt.datetime:
    """When `a` stopped holding for good (its undoing, the first other
    answer, or its expiry, whichever came first)."""
    ends = [as_utc(a.until)] + [as_utc(t) for t in (a.undone_at, a.changed_at) if t is not None]
    return min(ends)


def _date(when: dt.datetime) -> str:
    return f"{when.day} {when:%b %Y}"


def accepted_words(a: Acceptance) -> str:
    """ "checked by ana on 27 Nov 2026: “the article is there”"."""
    who = f" by {a.by}" if a.by else ""
    note = f": \u201c{a.note}\u201d" if a.note else ""
    return f"checked{who} on {_date(as_utc(a.accepted_at))}{note}"


def ended_words(a: Acceptance, status: LinkStatus | str, at: dt.datetime) -> str:
    """Why a row `a` used to clear is listed again, for its row:
    "Checked by hand on 20 Nov 2026 by ana (“fine”); listed again: its answer
    changed on 27 Nov 2026 (now expired, http_404)". "" while it holds."""
    if in_force(a, status, at):
        return ""
    at = as_utc(at)
    said = accepted_words(a)
    said = said[:1].upper() + said[1:]
    if a.undone_at is not None and as_utc(a.undone_at) <= at and as_utc(a.undone_at) == ended_at(a):
        why = f"the acceptance was undone on {_date(as_utc(a.undone_at))}"
    elif a.changed_at is not None and as_utc(a.changed_at) <= at and as_utc(a.changed_at) == ended_at(a):
        then = a.status.value + (f" ({a.reason})" if a.reason and a.reason != a.status.value else "")
        now = a.changed_status + (f" ({a.changed_reason})" if a.changed_reason
                                  and a.changed_reason != a.changed_status else "")
        why = (f"its answer changed on {_date(as_utc(a.changed_at))} from {then} to {now}: "
               "an acceptance holds only while the answer stays the same")
    elif at >= as_utc(a.until):
        why = (f"{ACCEPT_WEEKS} weeks have passed (an acceptance lasts until "
               f"{_date(as_utc(a.until))}): open it again, and `monitor accept` it again if it is fine")
    else:
        # failing now (no answer): the acceptance holds again once the site answers as before
        why = f"the site does not answer now ({LinkStatus(status).value}); it was {a.status.value}"
    return f"{said}; listed again: {why}."


def lapsed_since(records: Sequence[Acceptance], status: LinkStatus | str, at: dt.datetime,
                 since: dt.datetime | None) -> Acceptance | None:
    """The acceptance to mention on a row listed at `at`: the current one
    when it does not hold, if it ended after `since` (the previous report's
    time; None: whenever), or has not ended and the link only fails to
    answer now. A row back for more than one report is an ordinary
    still-open row."""
    a = current(records, at)
    if a is None or in_force(a, status, at):
        return None
    end = ended_at(a)
    if end > as_utc(at) or since is None or end > as_utc(since):
        return a
    return None


def accepted_head(count: int) -> str:
    """The quiet line's opening, said by the report and its text part."""
    links = "1 link" if count == 1 else f"{count} links"
    return (f"{links} checked by hand and found fine: not counted; "
            f"{'it comes' if count == 1 else 'they come'} back if "
            f"{'its' if count == 1 else 'their'} answer changes or after {ACCEPT_WEEKS} weeks:")
