"""`Audit` -> the HTML mail, its plain-text twin, JSON, and saved files.

Mail clients are the constraint: Gmail keeps `<style>` only in `<head>`,
drops the block on any error and clips messages over 102 KB, Outlook lays out
only tables. So the HTML is table-based, its CSS is inlined by css-inline
(keeping `@media` for phones), it has no scripts, images or web fonts, and
when a site has so many problems that the full report would be clipped the
mail becomes a summary pointing at the saved full report.

Everything in an audit came from the web (titles, anchor text, section
headings, URLs), so the Jinja environment autoescapes, nothing from the web
is ever marked safe, and a URL becomes an `href` only when it is http(s).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import css_inline
import jinja2

from monitor.types import LinkStatus
from reports import wording
from reports.audit import Audit, Problem, newest_problems

__all__ = [
    "MAX_EMAIL_BYTES",
    "SavedReport",
    "is_web_url",
    "render_email",
    "render_html",
    "render_json",
    "render_text",
    "report_basename",
    "save_report",
]

MAX_EMAIL_BYTES = 100_000
"""Gmail clips a message's HTML beyond 102 KB; stay clear of it."""

SUMMARY_LIMITS = (60, 25, 10)
"""How many problems a summarised report shows, tried in turn until it fits."""

_TEMPLATES = Path(__file__).parent / "templates"
_INLINER = css_inline.CSSInliner(keep_style_tags=False, keep_link_tags=False,
                                 keep_at_rules=True, load_remote_stylesheets=False)
_REPORT_NAME = re.compile(r"^report-(\d{4}-\d{2}-\d{2})-run-(\d+)\.html$")


@dataclass(frozen=True, slots=True)
class SavedReport:
    html: Path
    json: Path
    index: Path


def is_web_url(value: object) -> bool:
    """True for an absolute http(s) URL: the only kind we put in an href.

    `javascript:`, `data:` and scheme-relative tricks fail here and are shown
    as text; so are URLs with whitespace or control characters, which some
    clients would "repair" into something else.
    """
    if not isinstance(value, str) or not value:
        return False
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _short_url(url: str, limit: int = 70) -> str:
    """The URL without "https://", cut in the middle when very long.

    "http://" stays: an editor must see that a link moved only to https.
    """
    text = re.sub(r"^https://", "", url or "")
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: keep * 2 // 3] + "\u2026" + text[-(keep - keep * 2 // 3):]


def _clip(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.tests["web_url"] = is_web_url
    env.filters.update(
        short_url=_short_url,
        clip=_clip,
        date=wording.format_date,
        label=wording.status_label,
        skip_words=wording.skip_words,
        host=wording.host_of,
        upfirst=wording.upfirst,
    )
    env.globals.update(plural=wording.plural, Status=LinkStatus)
    return env


_ENV = _environment()


def _text_environment() -> jinja2.Environment:
    """Plain text is not HTML: escaping would print "&amp;" to the reader."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(_ENV.filters)
    env.tests.update(_ENV.tests)
    env.globals.update(_ENV.globals)
    return env


_TEXT_ENV = _text_environment()


@dataclass(frozen=True, slots=True)
class _View:
    """How much of the audit one rendering shows (full, then ever shorter)."""

    mode: str
    """full | compact (everything else as counts) | summary (problems capped)"""
    problems: tuple[Problem, ...] = ()
    more: int = 0


def _views(audit: Audit) -> Iterator[_View]:
    yield _View("full")
    yield _View("compact")
    total = len(audit.problems)
    for limit in SUMMARY_LIMITS:
        shown = tuple(newest_problems(audit, limit))
        yield _View("summary", shown, total - len(shown))


def _context(audit: Audit, view: _View, full_report_url: str | None) -> dict[str, Any]:
    return {
        "audit": audit,
        "c": audit.counts,
        "view": view,
        "full_report_url": full_report_url,
        "headline": headline(audit),
        "subject_counts": count_phrase(audit),
        "multi_page": len({p.url for p in audit.pages} | {l.page for l in audit.links}) > 1,
    }


def render_html(audit: Audit, *, full_report_url: str | None = None,
                max_bytes: int | None = MAX_EMAIL_BYTES) -> str:
    """The report as mail-ready HTML, summarised if it would exceed `max_bytes`.

    `max_bytes=None` never summarises (the saved report). The summary keeps
    the counts and the newest problems and says how many more there are and
    where the full report is.
    """
    html = ""
    for view in _views(audit):
        html = _inline(_ENV.get_template("report.html.j2").render(
            _context(audit, view, full_report_url)))
        if max_bytes is None or len(html.encode("utf-8")) <= max_bytes:
            return html
    return html


def render_email(audit: Audit, fits: Callable[[str, str], bool], *,
                 full_report_url: str | None = None) -> tuple[str, str]:
    """(html, text) of the richest rendering for which `fits(html, text)`.

    The mail's budget is the whole message (both parts and their MIME
    wrapping), which only the caller can measure; the last, shortest
    summary is returned even if it does not fit, rather than nothing.
    """
    html = text = ""
    for view in _views(audit):
        context = _context(audit, view, full_report_url)
        html = _inline(_ENV.get_template("report.html.j2").render(context))
        text = _tidy(_TEXT_ENV.get_template("report.txt.j2").render(context))
        if fits(html, text):
            break
    return html, text


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text)


def render_text(audit: Audit, *, full_report_url: str | None = None,
                max_bytes: int | None = MAX_EMAIL_BYTES) -> str:
    """The plain-text alternative: the same sections, counts and fixes."""
    text = ""
    for view in _views(audit):
        text = _tidy(_TEXT_ENV.get_template("report.txt.j2").render(
            _context(audit, view, full_report_url)))
        if max_bytes is None or len(text.encode("utf-8")) <= max_bytes:
            return text
    return text


_MEDIA_CLASSES = frozenset({"wrap", "pad", "page", "totals", "h2", "intro", "foot", "head",
                            "chips", "chip", "num"})
_CLASS_ATTR = re.compile(r'\sclass="([^"]*)"')
_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')


def _inline(html: str) -> str:
    """Inline the CSS, then drop the classes only the inliner needed.

    Classes that the kept `@media` rules still select stay; the rest would
    only add bytes towards Gmail's clipping limit.
    """
    def keep(match: re.Match[str]) -> str:
        names = [n for n in match.group(1).split() if n in _MEDIA_CLASSES]
        return f' class="{" ".join(names)}"' if names else ""

    def tight(match: re.Match[str]) -> str:
        return ' style="' + re.sub(r"\s*([:;])\s*", r"\1", match.group(1)).rstrip(";") + '"'

    html = _STYLE_ATTR.sub(tight, _CLASS_ATTR.sub(keep, _INLINER.inline(html)))
    return _fold(html.encode("ascii", "xmlcharrefreplace").decode("ascii"))


MAX_LINE = 900
"""SMTP allows 998 octets a line; an ASCII HTML part with shorter lines goes
as 7bit, with none of quoted-printable's ~6 % overhead."""


def _fold(html: str) -> str:
    """Break over-long lines inside tags, where a newline is just whitespace.

    Only a space before `href="` or `style="` is replaced: in text those
    quotes would have been escaped, so the match is always inside a tag.
    """
    lines = []
    for line in html.split("\n"):
        if len(line) > MAX_LINE:
            line = re.sub(r' (href|style)="', r'\n\1="', line)
        lines.append(line)
    return "\n".join(lines)


def count_phrase(audit: Audit) -> str:
    """ "3 new problems, 12 still open, 2 fixed": the subject's counts."""
    c = audit.counts
    new = "no new problems" if c.new == 0 else wording.plural(c.new, "new problem")
    return f"{new}, {c.still} still open, {c.fixed} fixed"


def headline(audit: Audit) -> str:
    """The one sentence at the top that says whether anything needs doing."""
    c = audit.counts
    if c.open == 0:
        first = "Nothing needs fixing this week."
    else:
        first = f"{wording.plural(c.open, 'link')} need{'s' if c.open == 1 else ''} attention"
        first += f" ({c.new} new, {c.still} still open)."
    if audit.previous_run is not None:
        since = f" since the report of {wording.format_date(audit.previous_run.started_at)}"
    else:
        since = ""
    fixed = f" {wording.plural(c.fixed, 'link')} fixed{since}." if c.fixed else ""
    return first + fixed


# -- JSON and files ------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def render_json(audit: Audit) -> str:
    """The whole audit as JSON, for scripts and for the index of past reports."""
    doc = {"format": "citation-monitor-audit", "version": 1}
    doc.update(_jsonable(audit))
    doc["counts"]["open"] = audit.counts.open
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def report_basename(audit: Audit) -> str:
    return f"report-{audit.date.isoformat()}-run-{audit.run.id}"


def save_report(audit: Audit, out_dir: Path) -> SavedReport:
    """Write the full (never summarised) HTML and JSON, then refresh index.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = report_basename(audit)
    html_path = out_dir / f"{base}.html"
    json_path = out_dir / f"{base}.json"
    _write(html_path, render_html(audit, max_bytes=None))
    _write(json_path, render_json(audit))
    index = out_dir / "index.html"
    _write(index, render_index(out_dir, site=audit.site))
    return SavedReport(html_path, json_path, index)


def _write(path: Path, text: str) -> None:
    """Write then rename, so a reader never opens half a report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def render_index(out_dir: Path, *, site: str) -> str:
    """index.html: every saved report in `out_dir`, newest first, with its counts."""
    rows = []
    for path in out_dir.glob("report-*-run-*.html"):
        match = _REPORT_NAME.match(path.name)
        if not match:
            continue
        counts: dict[str, Any] = {}
        try:
            doc = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            counts = doc.get("counts", {})
        except (OSError, ValueError):
            pass
        rows.append({"name": path.name, "date": match.group(1), "run": int(match.group(2)),
                     "counts": counts})
    rows.sort(key=lambda r: (r["date"], r["run"]), reverse=True)
    return _inline(_ENV.get_template("index.html.j2").render(site=site, rows=rows))
