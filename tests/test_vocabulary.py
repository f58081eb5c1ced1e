"""The README's Verdicts table is the whole vocabulary the code speaks.

A conformance review (session 12, finding 11) found tokens the classifier
emits and the table left out (`robots_disallowed`, `http_402`, `http_451`...)
and `unsupported_scheme` listed under one status while it comes under two.
A script maps `reason` tokens to what to do: each one the code can give,
under each status it comes with, must be in the table's row for that status.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.classify import classify
from monitor.extract import normalize_url
from monitor.types import ErrorKind, LinkStatus
from tests.test_classify import ob, hop

README = Path(__file__).resolve().parent.parent / "README.md"
ARTICLE = "https://journal.example.org/article/12345"


def verdict_rows() -> dict[str, str]:
    """status -> its row's reason-token cell, read from the README."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Verdicts"):]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        status = cells[0].strip("`")
        if status in {s.value for s in LinkStatus}:
            rows[status] = cells[1]
    return rows


def listed(status: str, reason: str) -> bool:
    cell = verdict_rows()[status]
    tokens = set(re.findall(r"`([a-z0-9_]+)`", cell))
    return reason in tokens or (re.fullmatch(r"http_\d{3}", reason) is not None and "`http_NNN`" in cell)


def test_the_table_has_a_row_for_every_status() -> None:
    assert set(verdict_rows()) == {s.value for s in LinkStatus}


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_error_kind_is_listed_under_its_status(kind: ErrorKind) -> None:
    redirects = [hop(ARTICLE, 301, "ftp://files.example.org/a.pdf")] if kind is ErrorKind.UNSUPPORTED_SCHEME else []
    verdict = classify(ob(ARTICLE, None, error_kind=kind, redirects=redirects))
    assert verdict.reason == kind.value
    assert listed(verdict.status.value, verdict.reason), (verdict.status, verdict.reason)


@pytest.mark.parametrize("code", [400, 401, 402, 403, 404, 405, 406, 408, 410, 414, 418, 429, 431, 451,
                                  500, 501, 502, 503, 504, 999])
def test_every_http_answer_is_listed_under_its_status(code: int) -> None:
    verdict = classify(ob(ARTICLE, code))
    assert listed(verdict.status.value, verdict.reason), (code, verdict.status, verdict.reason)


@pytest.mark.parametrize("href", ["mailto:ed@sclero.org", "tel:+15555550100", "javascript:void(0)",
                                  "data:text/plain,hi", "#bio", "ftp://files.example.org/a.pdf",
                                  "gopher://old.example.org/", "http://[not an address/"])
def test_every_link_not_requested_is_listed(href: str) -> None:
    page = "https://www.sclero.org/a.html"
    url, skip = normalize_url(href, page)
    assert url is None and skip is not None
    status = "error" if skip == "invalid_url" else "skipped"
    assert listed(status, skip), (href, skip)
