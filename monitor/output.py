"""Results -> the contract's JSON and CSV, and the readable terminal table.

Pure: the CLI decides where the text goes. The JSON and CSV columns are the
public contract (`LinkResult.CONTRACT_FIELDS`); new keys may be added after
them, never renamed or removed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from typing import Any

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


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def link_dict(link: LinkResult) -> dict[str, Any]:
    fields = LinkResult.CONTRACT_FIELDS + EXTRA_FIELDS
    return {name: _plain(getattr(link, name)) for name in fields}


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


def to_json(run: RunInfo, pages: Sequence[PageRecord], links: Sequence[LinkResult]) -> str:
    doc = {
        "run": run_dict(run),
        "pages": [page_dict(p) for p in pages],
        "links": [link_dict(link) for link in links],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False)


def to_csv(links: Sequence[LinkResult]) -> str:
    buffer = io.StringIO()
    fields = LinkResult.CONTRACT_FIELDS + EXTRA_FIELDS
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for link in links:
        row = link_dict(link)
        writer.writerow({k: "" if v is None else _csv_safe(v) for k, v in row.items()})
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


def counts(links: Sequence[LinkResult]) -> dict[str, int]:
    """Counts by status over distinct (url, status): a URL cited twice counts once."""
    seen: dict[str, LinkStatus] = {}
    for link in links:
        seen.setdefault(link.url, link.status)
    result = {status.value: 0 for status in STATUS_ORDER}
    for status in seen.values():
        result[status.value] += 1
    return result


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
