"""The service's optional HTTP endpoint: `/healthz`, `/metrics`, and the
saved reports under `/reports/` (`/` leads to their index).

Read-only over the store: each request opens its own short-lived SQLite
connection in a worker thread (the store's connections belong to one thread),
so a slow scrape never blocks the scheduler and never writes. Bound to
127.0.0.1 by default: the numbers say which pages a site links to and when
the monitor runs, which is nobody else's business; put a reverse proxy in
front to publish it.

The reports are the files `monitor report` saved in `[report] dir`, served
read-only by name: only `index.html` and `report-DATE-run-N.html|json` exist
here (no directory listing, no path reaches outside the folder), with a
Content-Security-Policy that allows no script and no remote resource (the
reports have none; this keeps it so even if a bug let markup through).
`index.html` of this database is rendered anew for each request
(`live_index`): its summary says when the next audit is and whether mail
waits, as /healthz does at that moment (its table is kept until a report
changes: `reports.render.SAVED_ROWS`).

Bound to loopback, it answers only requests that name it by a local name
(127.0.0.1, [::1], localhost) or by the host of `[report] base_url` (a
reverse proxy that passes the public name on): a web page the operator
opens could otherwise make its own name resolve to 127.0.0.1 (DNS
rebinding) and read the endpoint as its own origin; the browser still
names that page's host in `Host`, which is refused (421).

`/metrics` follows the Prometheus text format 0.0.4. The counts of the latest
finished run do not change once it is finished, so they are computed once per
run (a large site's run has 100,000 link occurrences) and cached.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import logging
import math
import os
import re
import sqlite3
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

from monitor.config import Settings, is_loopback_host
from monitor.errors import MonitorError
from monitor.locking import AUDIT_LOCK, holder_words
from monitor.output import StatusTally
from monitor.overdue import Overdue, find_overdue
from monitor.schedule import weekly_trigger
from monitor.store import Store
from monitor.types import LinkStatus, RunInfo, iso_moment, read_no_page

__all__ = ["METRICS_CONTENT_TYPE", "ServiceStatus", "create_app", "open_report", "render_metrics", "report_path",
           "start_server"]

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUN_STATUSES = ("finished", "interrupted", "running")
"""Always exported, at 0 when absent, so a rate() over them has a series from the start."""
MAX_RUNS = 1_000_000


class ServiceStatus(Protocol):
    """What only the running service knows: the schedule and whether it audits now."""

    @property
    def running(self) -> bool: ...

    def next_run(self) -> dt.datetime | None: ...


def overdue_of(status: ServiceStatus | None, snapshot: Snapshot, settings: Settings | None) -> Overdue | None:
    """The scheduled audits that did not happen (`monitor.overdue`), judged by
    the service's own trigger and clock (`Service.overdue_audit`); a status
    without them (a test's) is judged by the configured cron and the wall
    clock. None without a service: nothing is scheduled then."""
    if status is None:
        return None
    judge = getattr(status, "overdue_audit", None)
    if callable(judge):
        found: Overdue | None = judge(snapshot.last_run, snapshot.unfinished)
        return found
    if settings is None:
        return None
    return find_overdue(weekly_trigger(settings.schedule), snapshot.last_run, snapshot.unfinished,
                        dt.datetime.now(dt.timezone.utc),
                        dt.timedelta(hours=settings.schedule.misfire_grace_hours))


@dataclass
class Snapshot:
    """What the store says, read in one worker-thread call."""

    last_run: RunInfo | None = None
    runs_by_status: Counter[str] = field(default_factory=Counter)
    outbox: int = 0
    links_by_status: dict[str, int] = field(default_factory=dict)
    links_checked: int = 0
    pages: int = 0
    """Pages the latest audit recorded, and of those, could not fetch."""
    pages_failed: int = 0
    urls_by_status: dict[str, int] = field(default_factory=dict)
    """The URLs requested, by status (adds up to `last_run.urls`)."""
    unfinished: RunInfo | None = None
    """The latest full run, when it began after `last_run` and has not
    finished (interrupted, or still marked running): a crash loop's."""
    database_id: str = ""
    report: tuple[int, dict[str, Any]] | None = None
    """(run, counts) of the newest weekly report of this database
    (`reports.render.latest_report_counts`), read by /metrics only."""
    audit_lock: tuple[str, str] | None = None
    """(owner, acquired_at) of the audit lock when a live process holds it:
    this service, or a `monitor run`/`check` from a terminal or cron."""


class _LinkCounts:
    """Per-status distinct URL counts of a finished run, kept while it is the latest."""

    def __init__(self) -> None:
        self.key: tuple[int, dt.datetime | None] | None = None
        self.counts: dict[str, int] = {}
        self.urls: dict[str, int] = {}
        """`counts` less the malformed addresses: the URLs requested, by
        status (they add up to /healthz `urls`)."""
        self.links = 0
        """Links (occurrences) checked: `run.links` less the skipped ones."""
        self.pages = (0, 0)
        """(pages recorded, pages that could not be fetched)."""

    def of(self, store: Store, run: RunInfo) -> dict[str, int]:
        key = (run.id, run.finished_at)
        if key != self.key:
            self.counts, self.links, self.urls = _checked(store, run.id)
            pages = store.run_pages(run.id)
            self.pages = (len(pages), sum(p.status == "error" for p in pages))
            self.key = key
        return self.counts


def links_checked(store: Store, run_id: int) -> dict[str, int]:
    """Distinct URLs checked in the run, by status (skipped links were not
    checked), streamed: the service never holds a run's links at once."""
    return _checked(store, run_id)[0]


def _checked(store: Store, run_id: int) -> tuple[dict[str, int], int, dict[str, int]]:
    """`links_checked`; the links (occurrences) checked: the index of
    reports' "Links checked", which /healthz gives as `links_checked`; and
    the URLs requested by status (`links_checked` less the malformed
    addresses, an error no request was made for): the report's "(N URLs)"
    and /healthz `urls`, which /metrics gives as `monitor_last_run_urls_checked`."""
    tally, requested = StatusTally(), StatusTally()
    for link in store.iter_run_links(run_id):
        if link.status is not LinkStatus.SKIPPED:
            tally.add(link)
            if link.reason != "invalid_url":
                requested.add(link)
    counts, urls = tally.counts(), requested.counts()
    del counts[LinkStatus.SKIPPED.value], urls[LinkStatus.SKIPPED.value]
    return counts, tally.links, urls


def read_snapshot(path: str, cache: _LinkCounts) -> Snapshot:
    """On a worker thread: everything /healthz and /metrics need."""
    with Store.open(path) as store:
        runs = store.runs(limit=MAX_RUNS)
        last = store.latest_run(full_only=True)  # an editor's `check --page` is no audit
        snapshot = Snapshot(
            last_run=last,
            runs_by_status=Counter(r.status for r in runs if not r.partial),
            outbox=store.outbox_size(),
            unfinished=_unfinished_after(runs, last),
            audit_lock=store.live_lock(AUDIT_LOCK, dt.datetime.now(dt.timezone.utc)),
            database_id=store.database_id,
        )
        if last is not None:
            snapshot.links_by_status = dict(cache.of(store, last))
            snapshot.urls_by_status = dict(cache.urls)
            snapshot.links_checked = cache.links
            snapshot.pages, snapshot.pages_failed = cache.pages
    return snapshot


def _unfinished_after(runs: list[RunInfo], last: RunInfo | None) -> RunInfo | None:
    full = next((r for r in runs if not r.partial), None)  # newest first
    if full is None or full.status == "finished" or (last is not None and full.id < last.id):
        return None
    return full


# -- rendering -------------------------------------------------------------------


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else iso_moment(moment)


def health(snapshot: Snapshot, status: ServiceStatus | None, settings: Settings | None = None) -> dict[str, Any]:
    """The /healthz document. `overdue` (added last, null when all is well)
    says that a scheduled audit did not happen; "status" stays "ok" and the
    answer 200: they say the endpoint and the database work, as the README
    has told monitoring since the start (503 is "the database cannot be
    read"), and a probe that restarts the service on a 503 would not bring a
    missed audit back (past misfire_grace_hours it waits for the next
    scheduled time), only restart it in a loop."""
    run = snapshot.last_run
    overdue = overdue_of(status, snapshot, settings)
    return {
        "status": "ok",
        "last_run": None if run is None else {
            "id": run.id,
            "status": run.status,
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "reported_at": _iso(run.reported_at),
            "links": run.links,
            "urls": run.urls,
            # `links` counts every link the pages list, the skipped ones too
            # (mailto:, in-page, excluded); this one what the index of
            # reports calls "Links checked".
            "links_checked": snapshot.links_checked,
            # The audit read no page (`check`/`run` exit 1): its zeros mean
            # nothing was checked, not a clean week.
            "pages": snapshot.pages,
            "pages_failed": snapshot.pages_failed,
            "read_no_page": read_no_page(snapshot.pages, snapshot.pages_failed),
        },
        "next_run": _iso(status.next_run()) if status else None,
        "outbox": snapshot.outbox,
        "running": bool(status and status.running),
        "overdue": None if overdue is None else overdue.as_json(),
        "running_elsewhere": running_elsewhere(snapshot, status),
    }


def running_elsewhere(snapshot: Snapshot, status: ServiceStatus | None) -> str | None:
    """Who audits this database now, when it is not this service: "process
    23456 on vm, since 07:28:03 UTC" (`monitor run` from cron, `monitor
    check` from a terminal); None when nobody does, or the service itself.
    `running` said false then and the dashboard nothing, and a webmaster
    restarting the service "because nothing runs" cut the audit (review 15b #3)."""
    if snapshot.audit_lock is None:
        return None
    owner, since = snapshot.audit_lock
    if status is not None and (status.running or getattr(status, "owner", None) == owner):
        return None
    return holder_words(owner, since, dt.datetime.now(dt.timezone.utc))


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, kind: str, help_text: str,
            samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")
    return lines


def render_metrics(snapshot: Snapshot, status: ServiceStatus | None, settings: Settings | None = None) -> str:
    """The Prometheus text exposition (format 0.0.4)."""
    runs = Counter({s: 0 for s in RUN_STATUSES})
    runs.update(snapshot.runs_by_status)
    # A gauge: a run moves from running to finished, a resumed one from
    # interrupted, and pruning forgets old runs; as a counter, rate() and
    # increase() read each drop as a reset (review 15b #2).
    lines = _family("monitor_runs", "gauge", "Audit runs recorded in the database, by status.",
                    (({"status": s}, n) for s, n in sorted(runs.items())))
    lines += _family("monitor_runs_total", "gauge",
                     "As monitor_runs, kept for existing dashboards: a gauge whatever its name "
                     "(it goes down); do not rate() it.",
                     (({"status": s}, n) for s, n in sorted(runs.items())))
    lines += _family("monitor_last_run_urls_checked", "gauge",
                     "URLs requested in the latest finished full audit, by link status: a URL linked "
                     "from several places counts once; they add up to /healthz last_run.urls.",
                     (({"status": s}, n) for s, n in snapshot.urls_by_status.items()))
    lines += _family("monitor_last_run_links_checked", "gauge",
                     "Distinct URLs, not links, checked in the latest finished full audit, by link "
                     "status: a URL linked from several places counts once. As "
                     "monitor_last_run_urls_checked, plus the malformed addresses (error, no request "
                     "made); the name says links and is kept for existing dashboards.",
                     (({"status": s}, n) for s, n in snapshot.links_by_status.items()))
    last = snapshot.last_run
    if last is not None:
        read = snapshot.pages - snapshot.pages_failed
        lines += _family("monitor_last_run_pages", "gauge",
                         "Pages of the latest finished full audit, read or failed (could not be fetched); "
                         "none read means nothing was checked.",
                         [({"state": "read"}, max(read, 0)), ({"state": "failed"}, snapshot.pages_failed)])
    if last is not None and last.finished_at is not None:
        duration = (last.finished_at - last.started_at).total_seconds()
        lines += _family("monitor_last_run_duration_seconds", "gauge",
                         "Wall time of the latest finished run, start to finish (a resumed run includes the pause).",
                         [({}, duration)])
        lines += _family("monitor_last_run_timestamp_seconds", "gauge",
                         "When the latest finished run finished (Unix time).",
                         [({}, last.finished_at.timestamp())])
    lines += _family("monitor_outbox_messages", "gauge", "Reports queued and not delivered yet.",
                     [({}, snapshot.outbox)])
    if snapshot.report is not None:
        run, counts = snapshot.report
        groups = [({"group": g}, counts[g]) for g in ("needs_fixing", "needs_a_person")
                  if isinstance(counts.get(g), int)]
        lines += _family("monitor_report_problems", "gauge",
                         "Problems in the newest weekly report (the mail's and the dashboard's figures), "
                         "by group: needs_fixing, needs_a_person (they add up to its open problems).", groups)
        for key, help_text in (("new", "Of them, new since the report before."),
                               ("fixed", "Problems of the report before found fixed.")):
            if isinstance(counts.get(key), int):
                lines += _family(f"monitor_report_problems_{key}", "gauge", help_text, [({}, counts[key])])
        lines += _family("monitor_report_run", "gauge", "The run the newest weekly report is of.", [({}, run)])
    if status is not None:
        lines += _family("monitor_audit_running", "gauge",
                         "1 while an audit of this database runs: this service's, or a monitor run or "
                         "check's (/healthz running_elsewhere says whose).",
                         [({}, 1 if status.running or running_elsewhere(snapshot, status) else 0)])
        nxt = status.next_run()
        if nxt is not None:
            lines += _family("monitor_next_run_timestamp_seconds", "gauge",
                             "When the next scheduled audit starts (Unix time).", [({}, nxt.timestamp())])
        overdue = overdue_of(status, snapshot, settings)
        lines += _family("monitor_audit_overdue", "gauge",
                         "1 when a scheduled audit did not happen (it is misfire_grace_hours plus the "
                         "latest audit's duration past its time, and no audit finished since): "
                         "/healthz overdue says which.", [({}, 0 if overdue is None else 1)])
    return "\n".join(lines) + "\n"


# -- the app ---------------------------------------------------------------------

class _Unavailable:
    """The database error logged last: a probe every few seconds logs it
    once, and again only once it changed or the database was back between."""

    def __init__(self) -> None:
        self.logged: str | None = None


SETTINGS_KEY: web.AppKey[Settings] = web.AppKey("settings", Settings)
STATUS_KEY: web.AppKey[Any] = web.AppKey("status", object)
CACHE_KEY: web.AppKey[_LinkCounts] = web.AppKey("link_counts", _LinkCounts)
UNAVAILABLE_KEY: web.AppKey[_Unavailable] = web.AppKey("unavailable", _Unavailable)

PATH_SHOWN = "<database.path>"
_ANY_PATH = re.compile(r"(?<![\w.])/[^\s:'\"]+")
"""An absolute path left in a message (an OS error naming a parent folder);
the lookbehind spares "disk I/O error"."""


def public_reason(message: str, database: str) -> str:
    """The store's error without where the database lives: /healthz may be
    published through a proxy, and a path tells an outsider the layout and
    the account. The key names what to look up; the log has it whole."""
    forms = {database, os.path.abspath(database), str(Path(database).resolve())}
    for form in sorted(forms, key=len, reverse=True):
        message = message.replace(form, PATH_SHOWN)
    # Its folders too, whole (a folder named "my data" is one path, not
    # "<path> data"), longest first.
    folders = {str(parent) for form in forms if os.path.isabs(form)
               for parent in Path(form).parents if str(parent) != "/"}
    for folder in sorted(folders, key=len, reverse=True):
        message = message.replace(folder, "<path>")
    return _ANY_PATH.sub("<path>", message)


async def _snapshot(request: web.Request) -> Snapshot:
    app = request.app
    try:
        snapshot = await asyncio.to_thread(read_snapshot, app[SETTINGS_KEY].database.path, app[CACHE_KEY])
    except MonitorError as exc:
        if app[UNAVAILABLE_KEY].logged != str(exc):
            app[UNAVAILABLE_KEY].logged = str(exc)
            log.warning("event=database_unavailable endpoint=%s error=%s", request.path,
                        json.dumps(str(exc), ensure_ascii=False))
        raise
    app[UNAVAILABLE_KEY].logged = None
    return snapshot


def _reason(request: web.Request, exc: MonitorError) -> str:
    return public_reason(str(exc), request.app[SETTINGS_KEY].database.path)


async def healthz(request: web.Request) -> web.Response:
    try:
        snapshot = await _snapshot(request)
    except MonitorError as exc:
        return web.json_response({"status": "error", "error": _reason(request, exc)}, status=503)
    return web.json_response(health(snapshot, request.app[STATUS_KEY], request.app[SETTINGS_KEY]))


async def metrics(request: web.Request) -> web.Response:
    try:
        snapshot = await _snapshot(request)
    except MonitorError as exc:
        return web.Response(status=503, text=f"database unavailable: {_reason(request, exc)}\n")
    from reports.render import latest_report_counts

    settings = request.app[SETTINGS_KEY]
    snapshot.report = await asyncio.to_thread(latest_report_counts, Path(settings.report.dir),
                                              snapshot.database_id)
    body = render_metrics(snapshot, request.app[STATUS_KEY], settings)
    return web.Response(body=body.encode("utf-8"), headers={"Content-Type": METRICS_CONTENT_TYPE})


REPORT_FILE = re.compile(r"index\.html|report-\d{4}-\d{2}-\d{2}-run-\d+\.(?:html|json)")
"""The names `reports.render.save_report` gives; nothing else in the folder is served."""
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def report_path(folder: str, name: str) -> Path | None:
    """The file to serve for `name`, or None: a report's name, a regular file,
    and, symbolic links followed, still inside the reports folder. Whoever
    can drop a link named like a report there (a deploy script, another
    account with write access) must not make the endpoint serve the
    configuration or /etc/passwd with it; a link within the folder, or a
    folder that is itself a link, is fine. This only looks: what is served
    is what `open_report` opens, judged on its file descriptor."""
    if not REPORT_FILE.fullmatch(name):
        return None
    try:
        root = Path(folder).resolve(strict=True)
        path = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a link loop, unreadable
        return None
    if path.parent != root or not path.is_file():
        return None
    return path


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_report(path: Path) -> BinaryIO | None:
    """`path` (as `report_path` resolved it) opened for reading, or None.

    Between `report_path`'s look and this open, the name can be replaced
    (rename is atomic): by a link to the configuration, or by a FIFO that
    would hang the open. So the open itself decides: O_NOFOLLOW refuses a
    link in place of the resolved name (`path` has none left when it was
    checked), O_NONBLOCK returns at once from a FIFO, and fstat on the
    descriptor, not on the name, must say regular file."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:  # ELOOP: a link swapped in; ENOENT: removed meanwhile
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


REPORT_TYPES = {".html": "text/html", ".json": "application/json"}
CHUNK = 256 * 1024


INDEX = "index.html"


def live_index(path: Path, settings: Settings, healthz: dict[str, Any]) -> bytes | None:
    """On a worker thread: the index of reports as `monitor report` writes it
    (`reports.render.render_index`, the same summary and table), with what
    the service knows at this moment: the next audit and the outbox, taken
    from `healthz` (this request's /healthz document), so the page and
    /healthz never disagree. None (the file is served as it is) when the
    index names no database or another one (`refuse_foreign`'s rule): this
    service would otherwise list another database's reports as its own."""
    from monitor.jobs import report_source
    from reports.render import INDEX_HEAD_CHARS, ServiceFacts, index_source_in, render_index

    file = open_report(path)
    if file is None:
        return None
    with file:
        head = file.read(INDEX_HEAD_CHARS * 4).decode("utf-8", "replace")[:INDEX_HEAD_CHARS]
    made_by = index_source_in(head)
    if made_by is None:
        return None
    with Store.open(settings.database.path) as store:
        if made_by.id != store.database_id:
            return None
        source = replace(report_source(store, settings), outbox=healthz["outbox"])
    return render_index(path.parent, site=made_by.site or "your site", source=source,
                        service=ServiceFacts.from_health(healthz)).encode("utf-8")


async def _index_now(request: web.Request, path: Path) -> bytes | None:
    """`live_index`, or None when the database cannot be read now (the file
    as it was written is better than an error page)."""
    try:
        snapshot = await _snapshot(request)
        return await asyncio.to_thread(live_index, path, request.app[SETTINGS_KEY],
                                       health(snapshot, request.app[STATUS_KEY], request.app[SETTINGS_KEY]))
    except MonitorError:  # logged by `_snapshot`, once per failure
        return None
    except (sqlite3.Error, OSError) as exc:
        log.warning("event=index_not_rendered error=%s", json.dumps(str(exc), ensure_ascii=False))
        return None


async def report_file(request: web.Request) -> web.StreamResponse:
    """The report, streamed from the descriptor `open_report` judged (not
    from its name again: aiohttp's FileResponse opens by name, following
    links). The index of reports is rendered anew (`live_index`)."""
    path = report_path(request.app[SETTINGS_KEY].report.dir, request.match_info["name"])
    if path is not None and path.name == INDEX and request.match_info["name"] == INDEX:
        body = await _index_now(request, path)
        if body is not None:
            return await _send_file(request, io.BytesIO(body), "text/html", size=len(body),
                                    etag=hashlib.sha256(body).hexdigest()[:32])
    report = None if path is None else await asyncio.to_thread(open_report, path)
    if path is None or report is None:
        raise web.HTTPNotFound(text="No such report.\n")
    with report:
        # The type the requested name says (REPORT_FILE allows .html and
        # .json only): a link inside the folder may end otherwise.
        name = request.match_info["name"]
        return await _send_file(request, report, REPORT_TYPES[name[name.rindex("."):]])


async def _send_file(request: web.Request, file: BinaryIO, content_type: str, *,
                     size: int | None = None, etag: str | None = None) -> web.StreamResponse:
    """`file` whole, or the range asked, with its validators. A page made
    for this request (`size` and `etag` given: the live index) has no
    modification time: only its ETag revalidates it."""
    mtime: float | None = None
    if size is None or etag is None:
        st = os.fstat(file.fileno())
        size, mtime = st.st_size, st.st_mtime
        etag = f"{st.st_mtime_ns:x}-{st.st_size:x}"  # as FileResponse: revalidation gets 304
    response = web.StreamResponse(headers=REPORT_HEADERS)
    response.etag = etag
    if mtime is not None:
        response.last_modified = mtime
    response.headers["Accept-Ranges"] = "bytes"
    if _not_modified(request, response.etag.value, mtime):
        response.set_status(304)
        await response.prepare(request)
        return response
    response.content_type, response.charset = content_type, "utf-8"
    span = _byte_range(request, size, response.etag.value)
    if span is None:
        response.set_status(416)
        response.headers["Content-Range"] = f"bytes */{size}"
        response.content_length = 0
        await response.prepare(request)
        await response.write_eof()
        return response
    start, stop = span
    if (start, stop) != (0, size):
        response.set_status(206)
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        await asyncio.to_thread(file.seek, start)
    response.content_length = stop - start
    await response.prepare(request)
    remaining = 0 if request.method == "HEAD" else stop - start
    while remaining > 0:
        chunk = await asyncio.to_thread(file.read, min(CHUNK, remaining))
        if not chunk:  # truncated in place meanwhile (save_report renames, never truncates)
            response.force_close()  # the client sees a short body, not a misframed next response
            break
        await response.write(chunk)
        remaining -= len(chunk)
    await response.write_eof()
    return response


def _byte_range(request: web.Request, size: int, etag: str) -> tuple[int, int] | None:
    """[start, stop) of the file to send: all of it, or the one range asked
    (a 94 MiB report JSON resumed by a download tool); None when the range
    cannot be met (416). An If-Range that no longer matches gets it all."""
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip().strip('"') != etag:
        return 0, size
    try:
        asked = request.http_range
    except ValueError:  # several ranges, or one aiohttp cannot read: ignored (RFC 9110 14.2)
        return 0, size
    start, stop = asked.start, asked.stop
    if start is None and stop is None:
        return 0, size
    if start is not None and start < 0:  # "bytes=-N": the last N bytes
        start, stop = max(0, size + start), size
    start = start or 0
    stop = size if stop is None else min(stop, size)
    return (start, stop) if start < stop else None


def _not_modified(request: web.Request, etag: str, mtime: float | None) -> bool:
    if request.if_none_match is not None:
        return any(tag.value in (etag, "*") for tag in request.if_none_match)
    since = request.if_modified_since
    return since is not None and mtime is not None and int(mtime) <= since.timestamp()


async def home(request: web.Request) -> web.StreamResponse:
    """The latest reports, or why there are none yet."""
    settings = request.app[SETTINGS_KEY]
    if report_path(settings.report.dir, "index.html") is not None:
        # A browser follows it; `curl` (which does not, by default) reads where to go
        # rather than aiohttp's bare "302: Found" (walkthrough 13 #10).
        raise web.HTTPFound("/reports/index.html",
                            text="The reports are at /reports/index.html (the index of every audit).\n")
    text = no_report_yet(request.app[STATUS_KEY], settings)
    try:
        # The first audit may have begun and never finished (a crash loop):
        # said first, as the index would.
        overdue = overdue_of(request.app[STATUS_KEY], await _snapshot(request), settings)
    except MonitorError:  # logged by `_snapshot`; /healthz answers 503
        overdue = None
    if overdue is not None:
        text = f"{overdue.message()}\n{text}"
    return web.Response(text=text, headers=REPORT_HEADERS)


def no_report_yet(status: ServiceStatus | None, settings: Settings) -> str:
    """What a webmaster opening a fresh service's page needs: when the first
    report comes, and how to have one now. Was "the first one is saved after
    the first audit", which said neither. The configuration file's path is
    not shown (the page may be reached through a proxy; see public_reason)."""
    lines = ["No report yet."]
    when = status.next_run() if status is not None else None
    if status is not None and status.running:
        lines.append("The first audit is running now: its report appears here when it ends.")
    else:
        if when is not None:
            lines.append(f"The first audit is scheduled for {when:%A %d %B %Y, %H:%M} {when.tzname() or ''}"
                         f" ([schedule] cron = \"{settings.schedule.cron}\"); its report appears here then.")
        else:
            lines.append("The first report appears here after the first audit.")
        lines.append("To have one now, run on this server: monitor run --config FILE "
                     "(FILE: the configuration file this service was started with).")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _host_name(host: str) -> str:
    """The name (or address) in a Host header or a bind setting, without
    port, brackets, trailing dot or case."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def local_names(settings: Settings) -> frozenset[str] | None:
    """The names a request may give in `Host` besides the local ones, or
    None when any will do: an endpoint bound beyond loopback was exposed on
    purpose, under names this cannot know."""
    if not is_loopback_host(_host_name(settings.server.host)):
        return None
    names = {_host_name(name) for name in settings.server.allowed_hosts}
    if settings.report.base_url:
        try:
            names.add(_host_name(urlsplit(settings.report.base_url).netloc.rpartition("@")[2]))
        except ValueError:
            pass
    return frozenset(names)


def _host_guard(allowed: frozenset[str]) -> Middleware:
    @web.middleware
    async def only_local_names(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")  # not request.host: without one, that asks DNS
        if host is not None:
            name = _host_name(host)
            if not (is_loopback_host(name) or name in allowed):
                return web.Response(status=421, text=(
                    "This endpoint answers to 127.0.0.1, [::1] and localhost only (and to the "
                    "host of [report] base_url, when a reverse proxy publishes it). A proxy "
                    f"that passes the name {name!r} on: add it to [server] allowed_hosts.\n"))
        response: web.StreamResponse = await handler(request)
        return response

    return only_local_names


SERVER_NAME = "monitor"
"""The Server header of every answer, instead of aiohttp's "Python/3.11
aiohttp/3.x": which versions run here is nobody's business (a scanner
matches them against advisories)."""


async def _name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare runs for aiohttp's own answers too (no route 404,
    405, the 500 of a handler that raised), after it set its default."""
    response.headers["Server"] = SERVER_NAME


def create_app(settings: Settings, status: ServiceStatus | None = None) -> web.Application:
    allowed = local_names(settings)
    app = web.Application(middlewares=[] if allowed is None else [_host_guard(allowed)])
    app.on_response_prepare.append(_name_the_server)
    app[SETTINGS_KEY] = settings
    app[STATUS_KEY] = status
    app[CACHE_KEY] = _LinkCounts()
    app[UNAVAILABLE_KEY] = _Unavailable()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", home)
    app.router.add_get("/reports", home)  # base_url itself: the index, not a 404
    app.router.add_get("/reports/", home)
    app.router.add_get("/reports/{name}", report_file)
    return app


class _OneLineBadRequests(logging.Filter):
    """A request aiohttp could not read (a URL over 8190 bytes, bytes that
    are not UTF-8, two Host headers) was logged at ERROR with a traceback of
    aiohttp's parser, ten lines in a journal of one line per event, for a
    400 the client already got. Said in one line instead, at INFO (or lower,
    as aiohttp logs TLS spoken to the plain port at DEBUG):
    `event=http_bad_request status=400 from=127.0.0.1 error="..."`. A
    handler's own error (a 500, a bug) keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        level = min(record.levelno, logging.INFO)
        if not REQUEST_LOG.isEnabledFor(level):
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "-"
        error = " ".join(str(exc.message).split())[:200]
        record.levelno, record.levelname = level, logging.getLevelName(level)
        record.msg = "event=http_bad_request status=%s from=%s error=%s"
        record.args = (exc.code, remote, json.dumps(error, ensure_ascii=False))
        record.exc_info, record.exc_text = None, None
        return True


REQUEST_LOG = logging.getLogger(f"{__name__}.requests")
"""aiohttp's server log of this endpoint (`_OneLineBadRequests`)."""
REQUEST_LOG.addFilter(_OneLineBadRequests())


async def start_server(settings: Settings, status: ServiceStatus | None = None) -> tuple[web.AppRunner, str]:
    """Listen on server.host:server.port (0 = any free port); returns the runner and the base URL."""
    runner = web.AppRunner(create_app(settings, status), access_log=None, logger=REQUEST_LOG)
    await runner.setup()
    host, port = settings.server.host, settings.server.port
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise MonitorError(
            f"{settings.source}: server: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    bound = runner.addresses[0]
    shown = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
    return runner, f"http://{shown}:{bound[1]}"
