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
open whatever the person sees), a `drifted` one (the page changed; a
person can tell that it still holds the cited item), and an `expired` one
whose "gone" is the monitor's guess from a page that answered 200 OK
(`GUESSED`: a title or words reading like "page not found", an "expired"
notice, a redirect to the home page, a parked-domain page). An article
titled "Scleroderma: when the cause is not found" is no error page; before
review 13 #7 only `checker.exclude` could say so, and it stops checking the
link for good. Such an acceptance holds while the answer is the same page:
the same reason and final address (`Acceptance.final_url`), and for a page
read from its own words the same title (`TITLE_KEPT`); a 404, another
address or that other title ends it. A 404 or 410 is the site's own
word, a moved link has a new address to paste, a failing one may pass by
itself: accepting those would only hide them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from monitor.types import Acceptance, LinkStatus, as_utc

__all__ = [
    "ACCEPTABLE",
    "ACCEPT_WEEKS",
    "AUDITS_FROM_NOW",
    "NEXT_AUDITS",
    "GUESSED",
    "TITLE_KEPT",
    "accepted_answer",
    "accepted_head",
    "accepted_words",
    "changed_answer",
    "current",
    "ended_words",
    "guessed",
    "in_force",
    "lapsed_since",
    "refusal",
]

ACCEPT_WEEKS = 26
"""How long an acceptance holds while the link answers the same (see the
module's docstring for why half a year)."""

ACCEPTABLE = frozenset({LinkStatus.BLOCKED, LinkStatus.DRIFTED})
"""Statuses whose rows a person's look can clear."""

GUESSED = frozenset({"soft_404", "expired_notice", "redirect_to_home", "parked_domain"})
"""The `expired` reasons the monitor infers from a page that answered (200,
or a redirect to one: monitor/classify.py), not the site's own 404 or 410:
a person who opens the page can see that it holds the article."""

NOT_AN_ANSWER = frozenset({LinkStatus.ERROR})
"""An observation with this status (no answer in time, a 5xx) neither keeps
nor ends an acceptance: it says nothing of the article. While the link fails
so, its rows are listed as any failing link's; when the wall answers again,
the acceptance holds again."""


def refusal(status: LinkStatus | str, reason: str) -> str:
    """Why a link with this answer cannot be accepted ("" when it can): the
    one clear line `monitor accept` says."""
    status = LinkStatus(status)
    if status in ACCEPTABLE and reason != "private_address" or guessed(status, reason):
        return ""
    if reason == "private_address":
        return ("it points at a private network address (an intranet): readers outside that network "
                "cannot open it, whatever a browser here shows; link a public copy or remove it")
    if status == LinkStatus.EXPIRED and reason.startswith("http_"):
        code = reason.removeprefix("http_")
        return (f"the site itself answers {code} ({'gone' if code == '410' else 'not found'}): fix the "
                "link (the report gives the ways); if the article opens in a browser all the same, the "
                "site answers the monitor otherwise than browsers: list the address in checker.exclude "
                "(it is then no longer checked)")
    return {
        LinkStatus.OK: "it works: there is nothing to accept",
        LinkStatus.MOVED: "it moved to a new address: update the link (the report gives the new one)",
        LinkStatus.EXPIRED: "the site says it is gone (expired): fix the link; a person's look cannot clear that",
        LinkStatus.ERROR: "the site fails to answer (error): it is checked again and may pass by itself; "
                          "nothing a person sees now would last",
        LinkStatus.SKIPPED: "the monitor does not check it (skipped): it is never a problem",
    }.get(status, f"its status ({status.value}) is not one a person can judge")


TITLE_KEPT = frozenset({"soft_404", "expired_notice"})
"""The guessed verdicts read from the page's own title and words: another
title is another page. A redirect to the home page or a parked domain is
judged by where it leads; that page's title (a home page's with the date or
a headline in it) changes without saying anything of the link (review 13b #5)."""


def guessed(status: LinkStatus | str, reason: str) -> bool:
    """Whether the verdict is the monitor's reading of a page that answered
    (`GUESSED`): accepted, its final address and title are kept with it."""
    return LinkStatus(status) == LinkStatus.EXPIRED and reason in GUESSED


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
        then, now = changed_answer(a)
        why = (f"its answer changed on {_date(as_utc(a.changed_at))} from {then} to {now}: "
               "an acceptance holds only while the answer stays the same")
    elif at >= as_utc(a.until):
        why = (f"{ACCEPT_WEEKS} weeks have passed (an acceptance lasts until "
               f"{_date(as_utc(a.until))}): open it again, and `monitor accept` it again if it is fine")
    else:
        # failing now (no answer): the acceptance holds again once the site answers as before
        why = f"the site does not answer now ({LinkStatus(status).value}); it was {a.status.value}"
    return f"{said}; listed again: {why}."


def changed_answer(a: Acceptance) -> tuple[str, str]:
    """The answer `a` was given for and the one that ended it, in the words
    the report and `monitor history` both say: "expired (soft_404)", then
    "expired (http_404)", or "another page (now titled “Home”)" when the
    status and reason stayed and the page changed (a guessed verdict)."""
    then = a.status.value + (f" ({a.reason})" if a.reason and a.reason != a.status.value else "")
    now = a.changed_status + (f" ({a.changed_reason})" if a.changed_reason
                              and a.changed_reason != a.changed_status else "")
    return then, now if now != then else _other_page(a)


def _other_page(a: Acceptance) -> str:
    """The change a guessed verdict's acceptance ended on, when the status
    and reason stayed: "another page (now titled “Home”)". Text from the web
    on one line, as the listing prints it (`output.one_line`, imported here:
    output imports this module)."""
    from monitor.output import one_line

    if a.final_url is not None and a.changed_final_url and a.changed_final_url != a.final_url:
        return f"another page (the link now leads to {one_line(a.changed_final_url)[:300]})"
    title = " ".join(one_line(a.changed_title or "").split())
    return f"another page (now titled \u201c{title[:120]}\u201d)" if title else "another page (now untitled)"


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


NEXT_AUDITS = ("the reports of audits from now on (the next `monitor run`, or `monitor check` then "
               "`monitor report`)")
"""The reports an acceptance, or its undoing, changes."""

AUDITS_FROM_NOW = (f"Left out of {NEXT_AUDITS}; reports already made keep it, also when "
                   "rendered again.")
"""Which reports an acceptance changes, said by `monitor accept`: "left out
of the next report" read as the next `monitor report`, which re-renders the
latest run's report unchanged (review 15 #3)."""


def accepted_answer(reason: str, url: str) -> str:
    """The answer accepted, in the report's words for it ("LinkedIn refuses
    automated checks (HTTP 999)"), not its code (`http_999`: review 15 #10;
    the code stays in `monitor history --format json`). Less the request
    to open the link in a browser: the person just did."""
    from monitor.wording import describe

    words = describe(reason, url=url).split("; please open it in a browser")[0]
    # after "accepted: ", a sentence's first word in lower case; a name
    # ("LinkedIn refuses ...", "YouTube ...") as it is
    first = words.split(" ", 1)[0]
    return words[:1].lower() + words[1:] if first in _SENTENCE_STARTS else words


_SENTENCE_STARTS = frozenset({"The", "This", "A", "An", "It", "Its"})
"""The first words of `describe`'s sentences that are no name."""
