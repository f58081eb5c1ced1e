"""monitor/wording.py: the one table of reason sentences and the one
grouping rule that `monitor check`'s listing and the report share."""

from __future__ import annotations

import datetime as dt

import pytest

from monitor.types import LinkKind, LinkResult, LinkStatus
from monitor.wording import (
    NEEDS_A_PERSON,
    NEEDS_FIXING,
    WATCHING,
    attention,
    describe,
    link_words,
    problem_confirmed,
)

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
DAY = dt.timedelta(days=1)


def test_the_report_reads_the_same_table() -> None:
    """Moved, not forked: the report's names are these very objects."""
    import monitor.wording as low
    from reports import wording

    for name in ("REASONS", "describe", "host_of", "thing"):
        assert getattr(wording, name) is getattr(low, name)


@pytest.mark.parametrize(("status", "reason", "confirmed", "group"), [
    (LinkStatus.EXPIRED, "http_404", False, NEEDS_FIXING),  # a 404 is listed at once
    (LinkStatus.MOVED, "permanent_redirect", True, NEEDS_FIXING),
    (LinkStatus.DRIFTED, "title_mismatch", True, NEEDS_FIXING),
    (LinkStatus.ERROR, "timeout", False, WATCHING),
    (LinkStatus.ERROR, "timeout", True, NEEDS_FIXING),
    (LinkStatus.BLOCKED, "http_403", True, NEEDS_A_PERSON),
    (LinkStatus.BLOCKED, "bot_challenge", False, NEEDS_A_PERSON),
    (LinkStatus.BLOCKED, "private_address", True, NEEDS_FIXING),  # no look in a browser clears it
])
def test_attention(status: LinkStatus, reason: str, confirmed: bool, group: str) -> None:
    assert attention(status, reason, confirmed=confirmed) == group


def _link(status: LinkStatus, reason: str, strikes: int = 0, since: dt.datetime | None = None,
          **extra: object) -> LinkResult:
    return LinkResult(page="https://www.sclero.org/t.html", url="https://x.org/a", text="A",
                      section="", kind=LinkKind.CITATION, status=status, reason=reason,
                      http_status=None, final_url=None, suggested_url=None, strikes=strikes,
                      failing_since=since, checked_at=NOW, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(("link", "confirmed"), [
    (_link(LinkStatus.MOVED, "permanent_redirect"), True),  # one 301 says it
    (_link(LinkStatus.DRIFTED, "title_mismatch"), True),
    (_link(LinkStatus.ERROR, "invalid_url"), True),  # a fact of the address
    (_link(LinkStatus.BLOCKED, "private_address"), True),
    (_link(LinkStatus.ERROR, "timeout", 1, NOW), False),
    (_link(LinkStatus.ERROR, "timeout", 5, NOW - DAY / 2), False),  # many, but within a day
    (_link(LinkStatus.ERROR, "timeout", 2, NOW - DAY), True),
    (_link(LinkStatus.EXPIRED, "http_404", 1, NOW - 3 * DAY), False),  # once, long ago
])
def test_problem_confirmed(link: LinkResult, confirmed: bool) -> None:
    assert problem_confirmed(link, NOW, DAY) is confirmed


@pytest.mark.parametrize(("reason", "url", "kind", "expected"), [
    ("permanent_redirect", "https://www.ncbi.nlm.nih.gov/pubmed/123", LinkKind.CITATION,
     "PubMed moved this article to a new address"),
    # a PMC article is PubMed Central's (walkthrough 8, finding 20: "PubMed moved" of a PMC link)
    ("known_move", "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC6151211/", LinkKind.CITATION,
     "PubMed Central moved this article to a new address"),
    ("permanent_redirect", "https://pmc.ncbi.nlm.nih.gov/articles/PMC1/", LinkKind.CITATION,
     "PubMed Central moved this article to a new address"),
    ("http_404", "https://www.sclero.org/news/", LinkKind.NAVIGATION,
     "The page is gone: the site answers 'not found' (HTTP 404)"),
    ("private_address", "http://10.0.0.5/a.png", LinkKind.RESOURCE,
     "The image is at a private network address (an intranet or a local machine): "
     "readers outside that network cannot open it"),
])
def test_describe_names_what_the_link_leads_to(reason: str, url: str, kind: str, expected: str) -> None:
    assert describe(reason, url=url, kind=kind) == expected


@pytest.mark.parametrize(("reason", "confirmed", "expected"), [
    ("dns", False, "The site's name could not be found (DNS lookup failed)"),
    ("dns", True, "The site's domain name does not exist any more (DNS lookup failed)"),
    ("timeout", False, "The site did not answer in time"),
    ("timeout", True, "The site did not answer in time"),
])
def test_a_failure_only_watched_is_said_as_no_more_than_one_check_shows(
        reason: str, confirmed: bool, expected: str) -> None:
    """Walkthrough 10 #14: a watched link (one failed lookup) read "The
    site's domain name does not exist any more" beside "Nothing to do yet:
    this may be temporary"; "does not exist any more" only once confirmed."""
    assert describe(reason, confirmed=confirmed) == expected
    assert link_words(_link(LinkStatus.ERROR, reason), confirmed=confirmed) == expected


def test_link_words_add_flapping_once() -> None:
    flapping = _link(LinkStatus.ERROR, "timeout", flapping=True)
    assert link_words(flapping) == ("The site did not answer in time. "
                                    "The link keeps switching between working and failing")
    assert link_words(_link(LinkStatus.ERROR, "flapping", flapping=True)) == (
        "The link keeps switching between working and failing")


@pytest.mark.parametrize(("not_audited", "config", "expected"), [
    (18, "site.toml", "www.sclero.org: at least 18 more pages found were not audited "
                      "([[sites]] max_pages = 5 in site.toml)"),
    (1, "site.toml", "www.sclero.org: at least 1 more page found was not audited "
                     "([[sites]] max_pages = 5 in site.toml)"),
    (2, "", "www.sclero.org: at least 2 more pages found were not audited ([[sites]] max_pages = 5)"),
])
def test_a_crawl_cut_short_is_said_with_its_limit_and_where_it_is_set(
        not_audited: int, config: str, expected: str) -> None:
    from monitor.types import SiteCut
    from monitor.wording import site_cut_words

    cut = SiteCut(site="www.sclero.org", start="https://www.sclero.org/", max_pages=5,
                  not_audited=not_audited, config=config)
    assert site_cut_words(cut) == expected


@pytest.mark.parametrize(("not_audited", "too_deep", "expected"), [
    (0, 1, "www.sclero.org: 1 page linked from its deepest pages was not audited ([[sites]] max_depth = 3 in s.toml)"),
    (18, 12, "www.sclero.org: at least 18 more pages found were not audited ([[sites]] max_pages = 5 in s.toml); "
             "12 pages linked from its deepest pages were not audited ([[sites]] max_depth = 3 in s.toml)"),
])
def test_a_crawl_cut_by_its_depth_is_said_with_that_limit(not_audited: int, too_deep: int, expected: str) -> None:
    from monitor.types import SiteCut
    from monitor.wording import site_cut_words

    cut = SiteCut(site="www.sclero.org", start="https://www.sclero.org/", max_pages=5, not_audited=not_audited,
                  config="s.toml", max_depth=3, too_deep=too_deep)
    assert site_cut_words(cut) == expected
