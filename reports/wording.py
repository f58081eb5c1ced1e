"""Reason tokens and statuses -> sentences an editor can act on.

Editors forward the report to volunteers who fix entries; "http_410" means
nothing to them, "The publisher removed this article" does. Every token the
classifier emits has a sentence here, and an unknown token still gets a
sentence (naming the token) so a new classifier reason never breaks a report.
Pure: no I/O, no dates from the clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import urlsplit

from monitor.types import FailTally, LinkKind, LinkStatus, as_utc
from monitor.wording import (LISTED_IN_SITEMAP, OLDEST_COPY, PRIVATE_BADGE, REASONS, describe, host_of,
                             oldest_copy, private_address, thing)
from monitor.wording import flap_words as monitor_flap_words

# REASONS, describe, host_of and thing live in monitor.wording, below both
# this report and `monitor check`'s listing, which say a link's problem in
# the same words; they are re-exported here for the report's modules.

__all__ = [
    "NOTICES",
    "NOT_RECHECKED",
    "WATCHED_404",
    "PAGE_NOT_RECHECKED",
    "OLDEST_COPY",
    "oldest_copy",
    "PARTIAL_RUN",
    "REASONS",
    "PRIVATE_BADGE",
    "STATUS_LABELS",
    "badge_key",
    "badge_label",
    "advice",
    "advice_marked",
    "age_words",
    "archived_copy",
    "back_words",
    "flap_words",
    "describe",
    "format_date",
    "host_of",
    "kind_note",
    "no_longer_audited_line",
    "page_gone_why",
    "no_longer_checked_lines",
    "no_longer_checked_why",
    "not_audited_why",
    "notice_words",
    "page_failure",
    "plural",
    "replaced_words",
    "since_words",
    "skip_words",
    "status_label",
    "thing",
    "updated_words",
    "upfirst",
    "weeks_between",
    "without_not_rechecked",
]

PARTIAL_RUN = ("Only some pages were checked in this run (monitor check --page): "
               "the other watched pages and their links are not in this report.")
"""Said by the report of a partial run, which is easily taken for the weekly audit."""

NOT_RECHECKED = "Not checked again this week: the page could not be fetched"
"""Said of a problem of the last report on a page that could not be fetched."""

WATCHED_404 = ("the page is not at this address (HTTP 404): it was moved or renamed, "
               "or its address in the monitor's configuration is mistyped")
"""Why a watched page answering 404 could not be read: a watched page is the
site's own, more often moved or mistyped than deleted."""


def page_failure(http_status: int | None, error: str) -> str:
    """Why a watched page could not be fetched, in an editor's words, from
    its record (`PageRecord.http_status`, `.error`): "the site had a server
    error (HTTP 503)". Said in the report's banner next to the page's name,
    where an editor looks first; the connection failures keep
    `monitor.pages`' wording ("the server could not be reached (...)"),
    which is already plain."""
    if http_status and 400 <= http_status < 500 and error.endswith(f"({LISTED_IN_SITEMAP})"):
        # A page a crawl found in the site's sitemap: the sitemap is what is
        # wrong (or the page was lost), never the monitor's configuration.
        return (f"the page is not at this address (HTTP {http_status}), though the site's sitemap "
                "lists it: restore the page, or take it out of the sitemap")
    if http_status == 404:
        return WATCHED_404
    if http_status and http_status < 400 and error:
        # The site answered (200): what is wrong is the answer, which the
        # error says ("not a web page (image/gif)"); from the status alone
        # it read "an unexpected HTTP status (200)", a server fault.
        return _answered_but(error)
    if http_status:
        return _lower_first(describe(f"http_{http_status}", kind=LinkKind.NAVIGATION))
    if error in REASONS:
        return _lower_first(describe(error, kind=LinkKind.NAVIGATION))
    return " ".join(error.split()) or "no answer"


_NOT_A_PAGE = re.compile(r"^not a web page \((?P<media>[^()]*)\)(?: \([^()]*\))?$")
"""The error of an address that serves a file, with or without a note after
it ("(listed in the site's sitemap)"): the note must not leave it unworded."""

_MEDIA_WORDS = (
    ("image/", "an image"),
    ("application/pdf", "a PDF document"),
    ("video/", "a video"),
    ("audio/", "a sound file"),
    ("font/", "a font"),
    ("application/zip", "an archive"),
)
"""A media type's name in words, by prefix; anything else is "a file"."""


def _answered_but(error: str) -> str:
    """Why a page that answered 200 could not be read: most often the
    configured address is a file (an image, a PDF), not a page, which is a
    mistake in the configuration the webmaster can fix."""
    said = " ".join(error.split())
    match = _NOT_A_PAGE.match(said)
    if not match:
        return said
    media = match.group("media")
    what = next((words for prefix, words in _MEDIA_WORDS if media.startswith(prefix)), "a file")
    return (f"the address is not a web page but {what} ({media}), which has no links to check: "
            "watch a page that links to it instead (its url in the monitor's configuration)")


PAGE_NOT_RECHECKED = ("Not checked again this week: the page could not be fetched (see why at the "
                      "top). Its problems are listed as the last report that read it found them.")
"""Said once under the heading of a page that could not be fetched, above
the problems the last report that read it listed: each of them said
`NOT_RECHECKED`, 30 times in the demo's week without a network."""


def without_not_rechecked(words: str) -> str:
    """A row's words without the trailing `NOT_RECHECKED` sentence, which the
    report says once per page (`PAGE_NOT_RECHECKED`) instead of on each row."""
    for tail in (f". {NOT_RECHECKED}", f" {NOT_RECHECKED}."):  # a problem's, a content note's
        if words.endswith(tail):
            return words[: -len(tail)]
    return words

STATUS_LABELS: dict[str, str] = {
    LinkStatus.OK: "OK",
    LinkStatus.MOVED: "Moved",
    LinkStatus.EXPIRED: "Expired",
    LinkStatus.ERROR: "Error",
    LinkStatus.BLOCKED: "Blocked",
    LinkStatus.DRIFTED: "Drifted",
    LinkStatus.SKIPPED: "Not checked",
}

_SKIPS = {
    "mailto": "an email address",
    "tel": "a phone number",
    "javascript": "a script link",
    "fragment": "a jump within the page",
    "data": "embedded data",
    "invalid_url": "a malformed address",
    "excluded": "excluded by the configuration",
    "unsupported_scheme": "not a web address",
}


def bare_url(url: str | None, limit: int = 60) -> str:
    """The host without "www." and the path: the name of a link that has no
    text (an image, a stylesheet), telling apart two files of one host
    ("css.example.org/img/ok.png", not "css.example.org" twice). The root
    is the host alone; cut in the middle when very long."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    host = host_of(url)
    if not host:
        return ""
    rest = parts.path if parts.path != "/" else ""
    if parts.query:
        rest += "?" + parts.query
    text = host + rest
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: keep * 2 // 3] + "\u2026" + text[-(keep - keep * 2 // 3):]


def kind_note(kind: str, url: str | None = None) -> str:
    """Said next to a problem's title when the link is no citation: "ISN
    News" in bold reads like an entry's title, and an editor would look for
    an entry of that name."""
    if kind == LinkKind.NAVIGATION:
        return "navigation link"
    if kind == LinkKind.RESOURCE:
        return f"{thing(kind, url)} the page loads"
    return ""


def badge_key(link: Any) -> str:
    """The badge a flagged link wears, as a key (the CSS class's suffix): its
    status, or "private" for a private network address."""
    return "private" if private_address(link) else str(link.status)


def badge_label(link: Any) -> str:
    """The words on a flagged link's badge (`badge_key`)."""
    return PRIVATE_BADGE if badge_key(link) == "private" else status_label(link.status)


def status_label(status: str) -> str:
    """A badge for a status, in the contract's words so the mail, the JSON and
    `monitor check` agree; the sentence next to it explains."""
    return STATUS_LABELS.get(status, str(status).replace("_", " ").capitalize())


def skip_words(reason: str) -> str:
    """Why a link was not checked, for the compact list."""
    return _SKIPS.get(reason, reason.replace("_", " ") if reason else "not checked")


SUSPECTED_FIXING = ("Rows marked \u201csuspected\u201d are not confirmed yet: the site answered that the "
                    "page is gone, but only lately. They are checked again before the next report; fix "
                    "them now or wait until they are confirmed.")
"""Said under "Needs fixing" when it holds unconfirmed rows (review 13 #9):
a dead-link answer (a 404, a soft 404) is listed the week it is first seen,
while a failure to answer waits under "Watching"; without this an editor
could not tell whether a row of "Needs fixing" may wait."""


def suspicion(strikes: int, confirm_after: dt.timedelta) -> str:
    """Why an unconfirmed failure is only suspected, as the history shows it.

    "Failed once" was printed for every unconfirmed failure, also one that
    failed four checks in a row within the hours before the report (checks
    by hand): confirmation needs failures spread over `confirm_after`.
    """
    if strikes <= 1:
        return "suspected: failed once so far"
    hours = round(confirm_after.total_seconds() / 3600)
    span = "a day" if hours == 24 else f"{hours} hour" if hours == 1 else f"{hours} hours"
    return f"suspected: failed {strikes} checks in a row, over less than {span} so far"


def advice(status: str, *, confirmed: bool, fix_url: str | None, archived: bool = False,
           reason: str = "", kind: str = LinkKind.CITATION, url: str | None = None) -> str:
    """What the editor should do about one problem, as an instruction.

    A citation's entry can be marked "(Expired Article)"; a menu link or a
    cross-reference has no entry: it is updated or removed; an image or a
    script the page loads is replaced or removed (`kind`)."""
    if reason == "invalid_url":
        return "Correct the link's address on the page: as written, it is not a valid web address."
    if reason == "private_address":
        return _private_advice(kind, url)
    sentences = _ADVICE.get(kind, _ADVICE[LinkKind.CITATION])
    if status == LinkStatus.ERROR and not confirmed:
        return _NOTHING_YET
    case = _advice_case(status, fix_url=fix_url, archived=archived, reason=reason)
    said = sentences[case].format(it=thing(kind, url))
    if status == LinkStatus.EXPIRED and not confirmed:
        return _NOT_CONFIRMED + _lower_first(said)
    return said


def _advice_case(status: str, *, fix_url: str | None, archived: bool, reason: str = "") -> str:
    """Which instruction a problem calls for, whatever the kind of link: the
    kinds differ in their words (`_ADVICE`), not in this choice.

    A link that drifted to another title ("renamed") may hold the cited
    article under a new title, or another one: "check it still holds the
    cited article" below "The page now shows a different article" read as a
    contradiction, and said neither what to do in the first case nor that
    the archived copy offered is the fix in the second (review 15 #4)."""
    if status == LinkStatus.MOVED:
        return "moved" if fix_url else "moved_unknown"
    if status == LinkStatus.DRIFTED and reason == "title_mismatch":
        return "renamed_archived" if archived and fix_url else "renamed"
    if status in (LinkStatus.DRIFTED, LinkStatus.BLOCKED):
        return str(status)
    if archived and fix_url:
        return "archived"
    return "failing" if status == LinkStatus.ERROR else "gone"


_MARKED_CHECKED = "tell the webmaster, who can mark it checked (monitor accept)"
"""How a drifted link found fine gets out of the report: editors fix the
site's HTML, the webmaster runs the monitor (README, "Checked by hand")."""

_ADVICE: dict[str, dict[str, str]] = {
    # A citation's entry can be marked "(Expired Article)".
    LinkKind.CITATION: {
        "moved": "Replace the link with the new address.",
        "moved_unknown": "Find the article's new address and update the link.",
        "drifted": "Open the link and check it still holds the cited article; update the link or the entry.",
        "renamed": (f"If it is the cited article under a new title, {_MARKED_CHECKED}; "
                    "if not, find its new address or mark the entry expired."),
        "renamed_archived": (f"If it is the cited article under a new title, {_MARKED_CHECKED}; "
                             "if not, link to the archived copy or find its new address."),
        "blocked": "Open the link in a browser: if the article is there, nothing to do.",
        "archived": "Link to the archived copy, or find the article's new address, or mark the entry expired.",
        "failing": "The site keeps failing: find the article elsewhere or mark the entry expired.",
        "gone": "Find the article's new address, or mark the entry expired.",
    },
    # A menu link or a cross-reference: no article, no entry to mark.
    LinkKind.NAVIGATION: {
        "moved": "Replace the link with the new address.",
        "moved_unknown": "Find the page's new address and update the link.",
        "drifted": ("Open the link and check it still leads to the page its text names; "
                    "update the link or remove it."),
        "renamed": (f"If it is the same page under a new title, {_MARKED_CHECKED}; "
                    "if not, update the link or remove it."),
        "renamed_archived": (f"If it is the same page under a new title, {_MARKED_CHECKED}; "
                             "if not, link the archived copy or another page, or remove the link."),
        "blocked": "Open the link in a browser: if the page is there, nothing to do.",
        "archived": ("Find the page's new address and update the link, or link the archived copy, "
                     "or remove the link."),
        "failing": "The site keeps failing: find the page's new address and update the link, or remove it.",
        "gone": "Find the page's new address and update the link, or remove it.",
    },
    # What the page loads (an image, a script): replaced or removed; {it} names it.
    LinkKind.RESOURCE: {
        "moved": "Replace the address with the new one.",
        "moved_unknown": "Find the {it}'s new address and update the page, or remove the {it}.",
        "drifted": "Check it is still the right {it}; replace it or remove it from the page.",
        "renamed": "Check it is still the right {it}; replace it or remove it from the page.",
        "renamed_archived": "Check it is still the right {it}; replace it or remove it from the page.",
        "blocked": "Open the {it} in a browser: if it loads, nothing to do.",
        "archived": "Put the archived copy (or another {it}) on the site, or remove the {it} from the page.",
        "failing": "The site keeps failing: put a copy of the {it} on the site, or remove it from the page.",
        "gone": "Replace the {it} with a working copy, or remove it from the page.",
    },
}
"""The instruction for each case (`_advice_case`), in the words of each kind of link."""

_NOTHING_YET = "Nothing to do yet: this may be temporary, and it will be checked again."
_NOT_CONFIRMED = "Not confirmed yet, so it will be checked again; if you act now: "


def _private_advice(kind: str, url: str | None) -> str:
    """A public page linking to an intranet is broken for every reader but
    those inside that network: no browser of the editor's proves otherwise."""
    if kind == LinkKind.RESOURCE:
        return f"Put a public copy of the {thing(kind, url)} on the site, or remove it from the page."
    what = "page" if kind == LinkKind.NAVIGATION else "document"
    return f"Link a public copy of the {what} instead, or remove the link."


def advice_marked(fix_url: str | None, *, archived: bool) -> str:
    """Advice for an entry editors already marked "(Expired Article)"."""
    if archived and fix_url:
        return "Already marked \u201c(Expired Article)\u201d: link the archived copy so readers can still read it."
    if fix_url:
        return "Already marked \u201c(Expired Article)\u201d, but the article has a new address: update the link and remove the mark."
    return ("Already marked \u201c(Expired Article)\u201d and no archived copy was found: "
            "replace the entry with a current source or remove it.")


NOTICES: dict[str, str] = {
    "retracted": ("The cited article was retracted: say so in the entry (for example "
                  "\u201cRetracted in 2021\u201d), or remove the entry if it rests on the "
                  "article's findings."),
    # Cochrane withdraws a review that is out of date or in error and often
    # publishes a new one on the same question; Elsevier withdraws an article
    # in press that may appear later, corrected, or elsewhere.
    "withdrawn": ("The cited article was withdrawn by its publisher: link the version that "
                  "replaced it if there is one (a withdrawn Cochrane review is often followed "
                  "by a new review of the same question), else say so in the entry (for example "
                  "\u201cWithdrawn in 2021\u201d), or remove the entry if it rests on the "
                  "article's findings."),
}
"""What to do about a notice (`LinkResult.notice`): a link that works, whose
target says something about the cited work."""


def notice_words(notice: str, detail: str = "", *, marked: bool = False) -> str:
    """What the target said (`notice_detail`), then what to do about it;
    `marked`: the entry already says so (nothing to do but keep it in mind)."""
    if marked:
        todo = (f"Already marked in the entry (it says the article was {notice}): nothing to do, "
                "unless the entry rests on the article's findings.")
    else:
        todo = NOTICES.get(notice) or f"The page carries a notice ({notice}): check the entry."
    return f"{detail} {todo}" if detail else todo


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def upfirst(text: str) -> str:
    """Capitalise the first letter only ("since 2 Nov" -> "Since 2 Nov")."""
    return text[:1].upper() + text[1:]


def plural(n: int, word: str, many: str | None = None) -> str:
    """ "1 link", "3 links", "2 entries": counts in sentences read right."""
    if n == 1:
        return f"{n} {word}"
    if many is None:
        many = word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
    return f"{n} {many}"


def page_link_counts(ok: int, not_checked: int) -> str:
    """ "48 links work, 2 not checked": a page's line above the folded
    "Everything else", where an editor's link to their page lands."""
    parts = [plural(ok, "link") + (" works" if ok == 1 else " work")] if ok or not not_checked else []
    if not_checked:
        parts.append(f"{not_checked} not checked")
    return ", ".join(parts)


FOLD_PAGES_HEAD = "Pages with nothing to fix or look at (their links are in the list below):"


def format_date(value: dt.date | dt.datetime | None) -> str:
    """ "23 Nov 2026": unambiguous for readers on both sides of the Atlantic."""
    if value is None:
        return ""
    return f"{value.day} {value:%b %Y}"


def weeks_between(since: dt.datetime, now: dt.datetime) -> int:
    """Whole weeks from the day `format_date` prints for `since` to the day
    of `now` (naive datetimes are UTC): "open 2 weeks, since 13 Nov" on 27
    Nov, always. Counted from the instants, a link first checked 0.4 s later
    in its first audit than the clock read at the report two weeks on was
    open 13 days 23:59:59, "1 week, since 13 Nov" (walkthrough 10 #3)."""
    start, end = as_utc(since), as_utc(now)
    return max(0, (end.astimezone(start.tzinfo).date() - start.date()).days // 7)


def age_words(since: dt.datetime | None, weeks: int, *, new: bool, at_least: bool = False,
              watched: bool = False, failing: bool = True) -> str:
    """How long a problem has been open: "open 3 weeks, since 2 Nov 2026".

    `at_least`: `since` is only the last report that listed it (a malformed
    address is never checked, so no check dates its failure): it may be older.
    `watched`: a failure the last report watched too, never listed as a
    problem: "watched since 27 Nov 2026", not "open".
    `failing`: the link fails (a 404, a timeout); a move, a drift or a bot
    wall never "fails", and a new one known before is "open since"
    (walkthrough 10 #7: "[MOVED, NEW] Failing since 13 Nov").
    """
    when = format_date(since)
    if new:
        if weeks <= 0 or not when:
            return f"first seen {when}"
        return f"failing since {when}" if failing else f"open since {when}"
    if watched and when:
        return f"watched since {when}" if weeks <= 0 else f"watched {plural(weeks, 'week')}, since {when}"
    if not when:
        return "already listed in the last report"
    if at_least:
        if weeks <= 0:
            return f"open since {when} or earlier"
        return f"open {plural(weeks, 'week')} or more, since {when} or earlier"
    if weeks <= 0:
        return f"open since {when}"
    return f"open {plural(weeks, 'week')}, since {when}"


def flap_words(tally: FailTally) -> str:
    """The age line of a link that keeps switching between working and
    failing: "fails now and then: failed 18 of the last 52 checks, since
    24 Nov 2025; last ok 9 Nov 2026" (`monitor.wording.flap_words`, the
    report's dates)."""
    return monitor_flap_words(tally, format_date)


def back_words(fixed_on: dt.datetime, *, worked_again: bool) -> str:
    """The age line of a problem that the previous report listed as fixed
    and that is a problem again: "back: reported fixed on 20 Nov 2026; the
    entry links to the old address again" (walkthrough 10 #7). Its since
    date would read as if it had been open all along."""
    how = ("it answered again then, and fails again now" if worked_again
           else "the entry links to the old address again")
    return f"back: reported fixed on {format_date(fixed_on)}; {how}"


def replaced_words(replaced_on: dt.datetime | None, new_url: str, why: str) -> str:
    """What happened to a dead link the editor replaced by another broken
    one: the previous report's problem, still open under its new address
    (walkthrough 10 #1: it read as a problem first seen this week)."""
    on = f" on {format_date(replaced_on)}" if replaced_on is not None else ""
    return f"You replaced the link{on}; the new one ({new_url}) is broken too. {why}"


_WAYBACK = re.compile(r"^https?://(?:web\.)?archive\.org/web/(\d{4})(\d{2})(\d{2})\d*[a-z_]*/", re.I)
_ARCHIVES = ("web.archive.org", "archive.today", "archive.ph", "archive.is", "archive.li",
             "archive.md", "webcitation.org", "perma.cc")
"""Hosts whose addresses are archived copies of another page."""


def archived_copy(url: str) -> tuple[bool, dt.date | None]:
    """(whether `url` is an archived copy, the snapshot's date when its
    address says it): a Wayback Machine address carries its timestamp."""
    found = _WAYBACK.match(url)
    if found is not None:
        try:
            return True, dt.date(int(found[1]), int(found[2]), int(found[3]))
        except ValueError:
            return True, None
    host = host_of(url)
    return any(host == h or host.endswith("." + h) for h in _ARCHIVES), None


def updated_words(kind: LinkKind, new_url: str) -> str:
    """A fixed row whose link now points elsewhere: "The entry now links to
    a new address", or to "an archived copy (26 Jul 2018)" (walkthrough 10
    #12: a Wayback address read as the article's new home). A navigation
    link has no entry (#8)."""
    subject = "The entry now links to" if kind == LinkKind.CITATION else "The link now points to"
    archived, taken = archived_copy(new_url)
    if not archived:
        return f"{subject} a new address"
    return f"{subject} an archived copy" + (f" ({format_date(taken)})" if taken else "")


def since_words(since: dt.datetime | None, weeks: int, *, new: bool, at_least: bool = False) -> str:
    """ "since 2 Nov 2026 (3 weeks)" or "new this week"."""
    if since is None:
        return "new this week" if new else ""
    when = format_date(since)
    if at_least and not new:
        when += " or earlier"
    if weeks <= 0:
        return f"first seen {when}" if new else f"since {when}"
    return f"since {when} ({plural(weeks, 'week')}{' or more' if at_least and not new else ''})"


def fix_order(new_address: int, archived: int, other: int) -> str:
    """ "Of the 22 to fix: 5 have their new address ready to paste, 8 an
    archived copy to link, 9 need looking up." The report lists problems in
    page order, the way editors walk the site; this says where the quick
    wins are, for an editor with ten minutes. Empty when nothing is to fix."""
    total = new_address + archived + other
    if total == 0:
        return ""
    parts = []
    if new_address:
        parts.append(f"{new_address} {'has its' if new_address == 1 else 'have their'} "
                     "new address ready to paste")
    if archived:
        parts.append(f"{archived} {'has' if archived == 1 else 'have'} an archived copy to link"
                     if not parts else f"{archived} an archived copy to link")
    if other:
        parts.append(f"{other} {'needs' if other == 1 else 'need'} looking up")
    return f"Of the {total} to fix: " + ", ".join(parts) + "."



# -- what the previous report listed and this one no longer follows ------------


def no_longer_checked_why(reason: str, *, crawls: bool = False) -> str:
    """Why a link the previous report listed as a problem is not checked
    now: almost always an exclusion added to the configuration since, which
    silences the link, and fixes nothing (walkthrough 9, finding 4)."""
    if reason == "excluded":
        return ("now excluded by checker.exclude or a [[sites]] exclude_links" if crawls
                else "now excluded by checker.exclude")
    return f"now not checked: {skip_words(reason)}"


def no_longer_checked_lines(rows: Sequence[Any]) -> list[str]:
    """One quiet line per cause for `Audit.no_longer_checked` (`Fixed` rows):
    "1 link no longer checked (ncbi.nlm.nih.gov): now excluded by
    checker.exclude (it was: moved)." The hosts say which exclusion; what
    the links were says what it silenced."""
    causes: dict[str, list[Any]] = {}
    for row in rows:
        causes.setdefault(row.words, []).append(row)
    lines = []
    for why, links in causes.items():
        hosts = list(dict.fromkeys(host_of(r.link.url) or r.link.url for r in links))
        named = ", ".join(hosts[:3]) + (f" and {len(hosts) - 3} more" if len(hosts) > 3 else "")
        statuses: dict[str, int] = {}
        for r in links:
            label = status_label(r.link.status).lower()
            statuses[label] = statuses.get(label, 0) + 1
        if len(links) == 1:
            was = f"it was: {next(iter(statuses))}"
        else:
            was = "they were: " + ", ".join(f"{n} {label}" for label, n in statuses.items())
        lines.append(f"{plural(len(links), 'link')} no longer checked ({named}): {why} ({was}).")
    return lines


def not_audited_why(url: str, configured: Collection[str] | None, *, crawls: bool = False) -> str:
    """Why a page of the previous report was not audited this time, as far
    as the configuration (its `[[pages]]` urls, whether it crawls `[[sites]]`)
    tells; None: not known."""
    if configured is None:
        return "not audited in this run"
    if url in configured:
        return "in the configuration, but not audited in this run"
    if crawls:
        return "no longer in the configuration's [[pages]], nor reached by its [[sites]] crawl"
    return "no longer in the configuration"


def page_gone_why(http_status: int) -> str:
    """Why a page of the previous report was not audited when this run found
    it gone: a crawl reached it (or a page links to it), and the link to it
    is this report's problem; "not reached by the crawl" was untrue."""
    return f"the page is gone (HTTP {http_status}): the link to it is listed as a problem"


def no_longer_audited_line(page: Any) -> str:
    """The line under the counts for a `GonePage`: "No longer audited:
    Raynaud's (https://...), no longer in the configuration: its 11 open
    problems are not followed any more." Without it the previous report's
    open problems were neither still open, nor fixed, nor said."""
    named = page.title if page.title == page.url else f"{page.title} ({page.url})"
    if page.open:
        what = f"its {plural(page.open, 'open problem')}"
        if page.watching:
            # "Watching" is the report's group of suspected problems: not
            # "watched" twice in one line with two meanings.
            what += f" (and {plural(page.watching, 'suspected problem')}, not confirmed yet)"
        verb = "is" if page.open == 1 else "are"
    else:
        what = f"its {plural(page.watching, 'suspected problem')} (not confirmed yet)"
        verb = "is" if page.watching == 1 else "are"
    return f"No longer audited: {named}, {page.why}: {what} {verb} not followed any more."


def ordinal(n: int) -> str:
    """2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def nth_on_page(n: int, words: str) -> str:
    """Said beside "Find the link on the page" when the words it scrolls to
    stand earlier on the page too and nothing near the link sets it apart:
    the browser highlights the first, the editor looks further."""
    return f"it is the {ordinal(n)} \u201c{words}\u201d on the page"


NOT_LINKED = {
    "parked_domain": "the domain no longer belongs to the publisher",
    "private_address": "a private network address",
    "tls": "the site's certificate fails",
    "invalid_url": "a malformed address",
}
"""Why a link's address is shown as text in the report and the mail, not
as a link: a parked domain's page (ads, sometimes worse), an intranet
address, a host whose certificate fails (the browser warns, or it is not
the site any more), an address that opens nothing. The editor still sees
the address, to find it in the page's source."""


NOT_LINKED_CONFIRMED = {
    "dns": "the domain no longer exists",
}
"""`NOT_LINKED`'s reasons said only of a confirmed failure: a lapsed
domain is the one a squatter registers next (and then it is parked), but
one failed lookup (a resolver's hiccup) proves nothing: a watched link
stays a link, as `SUSPECTED_REASONS` does not say "does not exist"."""


def not_linked(reason: str, confirmed: bool = False) -> str:
    """Why an address with this check reason is not made a link; "" for one that is."""
    return NOT_LINKED.get(reason, "") or (NOT_LINKED_CONFIRMED.get(reason, "") if confirmed else "")


_IF_IT_STAYS_DOWN = {"Archived copy": "an archived copy", "New address": "a new address",
                     "Suggested address": "a suggested address"}


def if_it_stays_down(fix_label: str) -> str:
    """The quiet line's words before a watched row's fix ("If it stays down,
    an archived copy"): under "Watching" there is nothing to do yet, and the
    fix's box read as an instruction (review 15 #11)."""
    return f"If it stays down, {_IF_IT_STAYS_DOWN.get(fix_label, fix_label.lower())}"


# -- one fix, many rows ------------------------------------------------------------


BULK_HEAD = "One fix, many rows"
BULK_INTRO = ("Each line below is one change that clears many rows at once; the rows are still "
              "listed (and counted) under their pages.")


def _where_shown(url: str, page: str, limit: int = 80) -> str:
    """A link's address as a line says it: its path on the site's own host
    ("/about/contact-us.html"), else the host and path (`bare_url`)."""
    try:
        same = urlsplit(url).hostname == urlsplit(page).hostname and urlsplit(url).hostname
        path = urlsplit(url).path or "/"
        query = urlsplit(url).query
    except ValueError:
        return bare_url(url, limit) or url[:limit]
    if same:
        text = path + ("?" + query if query else "")
        return text if len(text) <= limit else text[: limit - 1] + "\u2026"
    return bare_url(url, limit) or url[:limit]


def _answers(status: str, http_status: int | None) -> str:
    """What a shared link does, in three words ("answers 404")."""
    if status == LinkStatus.BLOCKED:
        return "refuses automated checks"
    if status == LinkStatus.MOVED:
        return "moved"
    if status == LinkStatus.DRIFTED:
        return "shows another page now"
    if http_status:
        return f"answers {http_status}"
    return "is gone" if status == LinkStatus.EXPIRED else "does not answer"


def shared_link_parts(shared: Any) -> tuple[str, str, str]:
    """One URL flagged on many pages, as one thing to do, in three parts
    (before the address, the address as shown, after it): "Fix it in the
    site's template: “Contact us” → " "/about/contact-us.html" " answers 404
    on 100 pages, line 30". A navigation link on most of them is the
    template's; a site refusing checks is opened once in a browser."""
    if shared.status == LinkStatus.BLOCKED:
        lead = "Open it once in a browser (then monitor accept)"
    elif shared.navigation:
        lead = "Fix it in the site\u2019s template"
    else:
        lead = "Fix it once, on every page citing it"
    text = shared.text if len(shared.text) <= 90 else shared.text[:89] + "\u2026"
    named = f"\u201c{text}\u201d \u2192 " if text and text != shared.url else ""
    line = f", line {shared.line}" if shared.line is not None else ""
    after = f" {_answers(shared.status, shared.http_status)} on {plural(shared.pages, 'page')}{line}"
    if shared.fix_url:
        after += f"; the new address: {_where_shown(shared.fix_url, shared.first_page)}"
    return f"{lead}: {named}", _where_shown(shared.url, shared.first_page), after


def shared_link_line(shared: Any) -> str:
    """`shared_link_parts` as one line."""
    return "".join(shared_link_parts(shared))


def host_move_line(move: Any) -> str:
    """A host whose links all moved the same way, as one search and replace:
    "journal5.example.org moved to www.newpublisher.example.com: 21 links on
    21 pages; the new addresses are in each row"."""
    if move.new_host != move.host:
        what = f"{move.host} moved to {move.new_scheme + '://' if move.new_scheme else ''}{move.new_host}"
        if move.same_paths:
            what += " (same paths: replace the host)"
    elif move.old_part or move.new_part:
        what = f"{move.host} changed {move.old_part or '/'} to {move.new_part or '/'} in its addresses"
        if move.new_scheme:
            what += f" (and moved to {move.new_scheme})"
    else:
        what = f"{move.host} moved to {move.new_scheme}"
    return (f"{what}: {plural(move.links, 'link')} on {plural(move.pages, 'page')}; "
            "the new addresses are in each row")


REWRITE_HOSTS_NAMED = 3
"""A shared rewrite's line names this many of its hosts (the most rows
first) and counts the rest: the line stays one line at 372 hosts."""


def shared_rewrite_line(rewrite: Any) -> str:
    """A rewrite many sites made, each on its own host, as one search and
    replace naming what to replace with what: "372 sites changed /doi/ to
    /doi/full/ in their addresses: 4013 links on 500 pages
    (journal0.example.org, journal1.example.org, journal2.example.org and
    369 more); replace “/doi/” with “/doi/full/” in these sites’
    addresses", or "41 sites moved from http to https, same paths: ...;
    replace “http://” with “https://” in these sites’ addresses"."""
    hosts = list(rewrite.hosts)
    sites = plural(len(hosts), "site")
    scheme = rewrite.old_scheme and rewrite.new_scheme
    swaps = []
    if rewrite.old_part or rewrite.new_part:
        what = f"{sites} changed {rewrite.old_part or '/'} to {rewrite.new_part or '/'} in their addresses"
        if scheme:
            what += f" (and moved from {rewrite.old_scheme} to {rewrite.new_scheme})"
        swaps.append(f"\u201c{rewrite.old_part or '/'}\u201d with \u201c{rewrite.new_part or '/'}\u201d")
    else:
        what = f"{sites} moved from {rewrite.old_scheme} to {rewrite.new_scheme}"
        if rewrite.same_paths:
            what += ", same paths"
    if scheme:
        swaps.append(f"\u201c{rewrite.old_scheme}://\u201d with \u201c{rewrite.new_scheme}://\u201d")
    named = hosts[:REWRITE_HOSTS_NAMED]
    if len(hosts) > len(named):
        listed = ", ".join(named) + f" and {len(hosts) - len(named)} more"
    else:
        listed = ", ".join(named[:-1]) + " and " + named[-1]
    todo = (f"replace {' and '.join(swaps)} in these sites\u2019 addresses" if rewrite.replace_gives_new
            else "some changed more than that: the new addresses are in each row")
    return f"{what}: {plural(rewrite.links, 'link')} on {plural(rewrite.pages, 'page')} ({listed}); {todo}"


def bulk_more_line(more_links: int, more_hosts: int, more_rewrites: int = 0) -> str:
    """What the block's bound left out, counted."""
    parts = []
    if more_links:
        parts.append(f"{plural(more_links, 'more address', 'more addresses')} flagged on several pages")
    if more_hosts:
        parts.append(f"{plural(more_hosts, 'more host')} whose links moved the same way")
    if more_rewrites:
        parts.append(f"{plural(more_rewrites, 'more change')} that several sites made to their addresses")
    return ("And " + " and ".join(parts) + ", in the rows below.") if parts else ""
