"""Results -> the contract's JSON and CSV, and the readable terminal table.

Pure: the CLI decides where the text goes. The JSON and CSV columns are the
public contract (`LinkResult.CONTRACT_FIELDS`); new keys may be added after
them, never renamed or removed.

`write_json` and `write_csv` take the links as an iterable and write each one
as it comes (the CLI feeds them from the database's cursor): at 100,000 links,
building every dict and one JSON string first took 772 MiB. The JSON is one
document, the same shape as before, one link object per line.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import operator
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from monitor.types import HistoryEntry, LinkResult, LinkStatus, PageRecord, RunInfo

# The order a webmaster reads the table in: what needs a fix first.
STATUS_ORDER = (
    LinkStatus.EXPIRED,
    LinkStatus.MOVED,
    LinkStatus.DRIFTED,
    LinkStatus.ERROR,
    LinkStatus.BLOCKED,
    LinkStatus.OK,
    LinkStatus.SKIPPED,
)

EXTRA_FIELDS = ("detail", "entry_title", "entry_source", "expired_mark", "flapping", "archived_url")
LINK_FIELDS = LinkResult.CONTRACT_FIELDS + EXTRA_FIELDS
_link_values = operator.attrgetter(*LINK_FIELDS)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _iso(value: Any) -> Any:
    """json's hook for what it cannot encode itself: dates and times."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# The C encoder walks the dict, calling back only for dates (no indent: with
# one, json falls back to its pure-Python encoder).
_dumps = functools.partial(json.dumps, ensure_ascii=False, default=_iso)


def link_dict(link: LinkResult) -> dict[str, Any]:
    return {name: _plain(value) for name, value in zip(LINK_FIELDS, _link_values(link))}


def run_dict(run: RunInfo) -> dict[str, Any]:
    return {
        "id": run.id,
        "started_at": _plain(run.started_at),
        "finished_at": _plain(run.finished_at),
        "status": run.status,
    }


def page_dict(page: PageRecord) -> dict[str, Any]:
    return {
        "url": page.url,
        "status": page.status,
        "title": page.title,
        "links": page.links,
        "http_status": page.http_status,
        "error": page.error,
    }


def write_json(out: TextIO, run: RunInfo, pages: Iterable[PageRecord], links: Iterable[LinkResult]) -> int:
    """The contract's document, {"run": ..., "pages": [...], "links": [...]},
    written link by link; returns the number of links."""
    out.write(f'{{"run": {_dumps(run_dict(run))},\n "pages": [')
    sep = "\n  "
    for page in pages:
        out.write(sep + _dumps(page_dict(page)))
        sep = ",\n  "
    out.write('],\n "links": [')
    sep, n = "\n  ", 0
    for link in links:
        out.write(sep + _dumps(dict(zip(LINK_FIELDS, _link_values(link)))))
        sep = ",\n  "
        n += 1
    out.write("]}\n")
    return n


def write_csv(out: TextIO, links: Iterable[LinkResult]) -> int:
    """The links as CSV (the JSON links' columns), row by row; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LINK_FIELDS)
    n = 0
    for link in links:
        writer.writerow(["" if v is None else _csv_safe(_plain(v)) for v in _link_values(link)])
        n += 1
    return n


def to_json(run: RunInfo, pages: Sequence[PageRecord], links: Iterable[LinkResult]) -> str:
    buffer = io.StringIO()
    write_json(buffer, run, pages, links)
    return buffer.getvalue()


def to_csv(links: Iterable[LinkResult]) -> str:
    buffer = io.StringIO()
    write_csv(buffer, links)
    return buffer.getvalue()


def _csv_safe(value: Any) -> Any:
    """Defuse spreadsheet formulas: anchor text comes from the web."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def group_by_status(links: Sequence[LinkResult]) -> list[tuple[LinkStatus, list[LinkResult]]]:
    groups: dict[LinkStatus, list[LinkResult]] = {}
    for link in links:
        groups.setdefault(link.status, []).append(link)
    return [(status, groups[status]) for status in STATUS_ORDER if status in groups]


class StatusTally:
    """Counts by status over distinct URLs (a URL cited twice counts once, by
    its first occurrence), taken one link at a time."""

    def __init__(self) -> None:
        self.links = 0
        self._seen: dict[str, LinkStatus] = {}

    def add(self, link: LinkResult) -> None:
        self.links += 1
        self._seen.setdefault(link.url, link.status)

    def counts(self) -> dict[str, int]:
        result = {status.value: 0 for status in STATUS_ORDER}
        for status in self._seen.values():
            result[status.value] += 1
        return result


def counts(links: Iterable[LinkResult]) -> dict[str, int]:
    """Counts by status over distinct (url, status): a URL cited twice counts once."""
    tally = StatusTally()
    for link in links:
        tally.add(link)
    return tally.counts()


def history_dicts(entries: Sequence[HistoryEntry]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        out.append({
            "run_id": e.run_id,
            "checked_at": _plain(e.checked_at),
            "status": e.status.value,
            "reason": e.reason,
            "http_status": e.http_status,
            "final_url": e.final_url,
            "redirects": [{"url": h.url, "status": h.status, "location": h.location} for h in e.redirects],
            "elapsed_ms": e.elapsed_ms,
            "bytes_read": e.bytes_read,
            "title": e.title,
            "detail": e.detail,
            "suggested_url": e.suggested_url,
        })
    return out
