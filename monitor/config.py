"""TOML configuration -> frozen `Settings`, validated strictly.

Every default lives here. A mistake in the file is a `ConfigError` whose
message is one line naming the file, the key and the problem; the CLI turns
it into exit status 2. Unknown keys are errors, not silently ignored, because
a misspelt `per_hosts = 1` that is ignored makes a monitor impolite.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import ipaddress
import json
import math
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.paths import misplaced

DEFAULT_USER_AGENT = (
    "citation-monitor/0.1 (link-rot audit for the site's editors; "
    "+https://github.com/citation-monitor)"
)


@dataclass(frozen=True, slots=True)
class PageSettings:
    url: str
    name: str = ""
    owner: str = ""


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """A whole site: crawled from `start` and/or its sitemap."""

    start: str = ""
    sitemap: str = ""
    name: str = ""
    owner: str = ""
    max_depth: int = 3
    max_pages: int = 500
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_links: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return self.start or self.sitemap


@dataclass(frozen=True, slots=True)
class CheckerSettings:
    timeout: float = 15.0
    concurrency: int = 64
    per_host: int = 4
    retries: int = 2
    user_agent: str = DEFAULT_USER_AGENT
    allow_private_networks: bool | tuple[str, ...] = False
    max_redirects: int = 20
    max_body_bytes: int = 65536
    retry_after_max: float = 60.0
    backoff_base: float = 0.5
    soft404_probe: bool = True
    exclude: tuple[str, ...] = ()
    connect_to: tuple[tuple[str, str], ...] = ()
    """("host:port", "ip:port") pairs, like curl --connect-to: staging and tests."""
    archive_url: str = ""
    """Wayback-style availability API used to suggest archived copies; "" = off."""
    ca_file: str = ""
    """Extra CA bundle (PEM) trusted besides the system store: a corporate CA."""


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    path: str = "var/monitor.db"
    keep_weeks: int = 104
    """Runs older than this are forgotten after each weekly job (0: keep
    everything). A run of 100,000 links is about 65 MB of history."""


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    cron: str = "0 6 * * mon"
    timezone: str = "UTC"
    rechecks: tuple[float, ...] = (1.0, 24.0)
    """Hours after a first failure at which the link is checked again."""
    misfire_grace_hours: float = 24.0


@dataclass(frozen=True, slots=True)
class ReportSettings:
    dir: str = "reports/out"
    site_name: str = ""
    max_citation_age_years: int = 0
    """0 = off; otherwise citations older than this many years are listed."""
    confirm_after_hours: float = 24.0
    base_url: str = ""
    """Where `dir` is published over HTTP (e.g. https://www.sclero.org/link-audits/):
    the mail then links to the full report instead of naming a file on the server."""
    keep_weeks: int = 104
    """Saved reports (HTML and JSON) of runs older than this are removed after
    each weekly job (0: keep them all): 131 MB a week at 100,000 links."""


@dataclass(frozen=True, slots=True)
class EmailSettings:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = "MONITOR_SMTP_PASSWORD"
    sender: str = ""
    recipients: tuple[str, ...] = ()
    """Both written by the user, never a made-up default: "webmaster@example.org"
    received the report of a medical site when the file had no [email]
    (review 13 #1). A command that mails refuses to start without them
    (`require_mail_addresses`); the others do not need them."""
    timeout: float = 30.0
    enabled: bool = True
    ca_file: str = ""
    """Extra CA (PEM) trusted for the mail server's certificate: a private CA."""
    allow_plain_login: bool = False
    """`security = "none"` with a username sends the password in clear: refused
    for a server not on this machine unless this says the network is trusted."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The optional HTTP endpoint of `monitor serve` (/healthz, /metrics)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8089
    allowed_hosts: tuple[str, ...] = ()
    """Names a request may give in `Host` when bound to loopback, besides
    127.0.0.1, [::1], localhost and the host of `[report] base_url`: those a
    reverse proxy passes on (Caddy passes the visitor's by default)."""


@dataclass(frozen=True, slots=True)
class Settings:
    pages: tuple[PageSettings, ...] = ()
    sites: tuple[SiteSettings, ...] = ()
    checker: CheckerSettings = field(default_factory=CheckerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    source: str = "<defaults>"


def audit_scope(settings: Settings) -> str:
    """A digest of what decides which links an audit checks and where its
    report goes: the `[[pages]]` (url, name, owner), the `[[sites]]` (every
    key) and `checker.exclude`. Recorded with each full run; an interrupted
    run is resumed only while the configuration still has the same digest,
    so a resumed run never reports pages, sites or exclusions the file no
    longer has (walkthrough 9, finding 1). Timeouts, concurrency and the
    like are not in it: they change how the rest is checked, not what."""
    scope = {
        "pages": [[p.url, p.name, p.owner] for p in settings.pages],
        "sites": [dataclasses.asdict(s) for s in settings.sites],
        "exclude": list(settings.checker.exclude),
    }
    text = json.dumps(scope, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


MAX_HOURS = 100_000
"""Durations in hours (about 11 years) and weeks (about 100 years) beyond which
the dates computed from them overflow: refused at load, not after the audit."""
MAX_WEEKS = 5200


# -- validation helpers --------------------------------------------------------


class _Reader:
    """Reads one TOML table, remembering the file and key path for errors."""

    def __init__(self, source: str, prefix: str, table: Any) -> None:
        self.source = source
        self.prefix = prefix
        if not isinstance(table, dict):
            self.fail(prefix.rstrip(". "), "must be a table")
        self.table: dict[str, Any] = table
        self.used: set[str] = set()

    def fail(self, key: str, problem: str) -> None:
        raise ConfigError(f"{self.source}: {key}: {problem}")

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def get(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(name)
        if name not in self.table:
            return default
        value = self.table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a TOML `true` is never a number here.
        if isinstance(value, bool) and bool not in kinds:
            self.fail(self.key(name), f"expected {_kind_name(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            self.fail(
                self.key(name), f"expected {_kind_name(kinds)}, got {_toml_type(value)}"
            )
        return value

    def number(self, name: str, default: float, *, minimum: float = 0, integer: bool = False,
               maximum: float | None = None) -> Any:
        kinds: tuple[type, ...] = (int,) if integer else (int, float)
        value = self.get(name, kinds, default)
        if not math.isfinite(value):  # TOML nan/inf: nan passes every bound, inf overflows later
            self.fail(self.key(name), f"expected a finite number, got {value}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.fail(self.key(name), f"must be {bound}, got {value}")
        return int(value) if integer else float(value)

    def strings(self, name: str, default: tuple[str, ...],
                check: Callable[[str], str | None] | None = None) -> tuple[str, ...]:
        value = self.get(name, list, None)
        if value is None:
            return default
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"{self.key(name)} #{i + 1}", f"expected a string, got {_toml_type(item)}")
            if check is not None and (problem := check(item)):
                self.fail(f"{self.key(name)} #{i + 1}", problem)
        return tuple(value)

    def url(self, name: str, default: str = "", *, required: bool = False) -> str:
        value = self.get(name, str, None)
        if value is None:
            if required:
                self.fail(self.key(name), "is required" + self._instead(name))
            return default
        if problem := url_problem(value):
            self.fail(self.key(name), problem)
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(name, str, default)
        if value not in choices:
            self.fail(self.key(name), f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def _instead(self, name: str) -> str:
        """For a required key that is missing: the key written in its place
        (`uri =` for `url =`), so that the error names both; was only
        "pages[0].url: is required", never naming the stray key."""
        others = [key for key in self.table if key not in self.used]
        close = difflib.get_close_matches(name, others, n=1, cutoff=0.5)
        if close:
            return f"; the table has {close[0]!r} instead: did you mean {name}?"
        if others:
            return f" (found instead: {', '.join(sorted(others))})"
        return ""

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            close = difflib.get_close_matches(unknown[0], sorted(self.used), n=1, cutoff=0.6)
            guess = f"did you mean {close[0]}? " if close else ""
            self.fail(self.key(unknown[0]), f"unknown key ({guess}known keys here: {known})")


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list", dict: "a table"}
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def url_problem(value: str) -> str | None:
    """Why `value` is not an absolute http(s) URL, or None when it is."""
    if not value.strip():
        return "must be an absolute http(s) URL, got an empty string"
    if _has_password(value):  # said before any problem that would echo the address
        return ("holds a password (user:password@ before the host name): the address is printed "
                "in the report, the mail and the command's output, where every reader would see "
                "it; write the address without it")
    shown = _without_password(value)
    if value != value.strip() or any(c.isspace() for c in value):
        return f"URL must not contain spaces: {shown!r}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return f"not a valid URL ({exc}): {shown!r}"
    if parts.scheme not in ("http", "https"):
        return f"must be an http:// or https:// URL, got {shown!r}{_did_you_mean_https(shown)}"
    if not parts.hostname:
        return f"URL has no host name: {shown!r}"
    return None


_SCHEMELESS_LOGIN = re.compile(r"^(\s*(?!mailto:)[^\s/:@]+):[^\s/@]+@(?=[^\s/@]+\.)")


def _without_password(value: str) -> str:
    """`value` as an error may echo it: "webmaster:s3cret@www.sclero.org/a.html",
    an address written without its https:// (so no password urlsplit can
    see), becomes "webmaster:***@www.sclero.org/a.html" (review 12)."""
    return _SCHEMELESS_LOGIN.sub(r"\1:***@", value, count=1)


def _has_password(value: str) -> bool:
    try:
        return bool(urlsplit(value.strip()).password)
    except ValueError:  # a malformed address: said as such, after this
        return False


_CONTROL_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", "\x00": "NUL",
                  "\x1b": "ESC", "\x7f": "DEL"}


def _control_problem(value: str) -> str | None:
    """The first control character in a value meant as one line of text
    (a header, a subject, a name in the report), or None. TOML can write
    them ("\\u0001", a multi-line string); nothing shown or sent wants them."""
    for i, char in enumerate(value):
        if unicodedata.category(char) == "Cc":
            name = _CONTROL_NAMES.get(char, "a control character")
            return (f"holds {name} (U+{ord(char):04X}) at character {i + 1}: write it as one line "
                    "of text, without control characters")
    return None


_BARE_HOST = re.compile(r"(?://)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?::\d+)?(?:[/?#]|$)", re.IGNORECASE)


def _did_you_mean_https(value: str) -> str:
    """"www.sclero.org/x.html" is an address without its scheme: offer it whole."""
    if "://" in value or not _BARE_HOST.match(value):
        return ""
    return f"; did you mean 'https://{value.removeprefix('//')}'?"


def _network_problem(item: str) -> str | None:
    try:
        ipaddress.ip_network(item, strict=False)
        return None
    except ValueError:
        pass
    host = item.strip().lower()
    if host and all(part and all(c.isalnum() or c in "-_" for c in part) for part in host.split(".")):
        return None
    return f"expected a CIDR (10.0.0.0/8) or a host name, got {item!r}"


def _email_problem(item: str) -> str | None:
    if problem := _control_problem(item):
        return f"not an email address: it {problem.partition(':')[0]}"
    local, _, domain = item.rpartition("@")
    if not local or not domain or any(c.isspace() or c in "<>,;" for c in item):
        return f"not an email address: {item!r}"
    return None


def _hostname_problem(item: str) -> str | None:
    """A host name as a browser sends it in `Host` (no scheme, path or port)."""
    if not item.strip() or any(c in item for c in "/:@ \t") and not item.startswith("["):
        return f"expected a host name such as links.example.org (no scheme, port or path), got {item!r}"
    return None


def is_loopback_host(host: str) -> bool:
    """Whether `host` names this machine without asking DNS: localhost (and
    *.localhost, RFC 6761) or a loopback address. A name that resolves to
    127.0.0.1 only through /etc/hosts is not known to be local here."""
    name = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.partition("%")[0])  # a zone id names no other host
    except ValueError:
        return False
    # Python 3.11 does not call ::ffff:127.0.0.1 loopback; it is 127.0.0.1.
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _hostport_problem(item: str) -> str | None:
    host, sep, port = item.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()):  # "²" is a digit to isdigit, not to int
        return f"expected host:port, got {item!r}"
    if not 1 <= int(port) <= 65535:
        return f"port {int(port)} is not a port number (1 to 65535) in {item!r}"
    return None


# -- sections ------------------------------------------------------------------


def _pages(source: str, raw: Any) -> tuple[PageSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: pages: expected an array of tables ([[pages]])")
    pages = []
    seen: dict[str, int] = {}
    for i, table in enumerate(raw):
        r = _Reader(source, f"[[pages]] #{i + 1} ", table)  # counted as a reader counts them
        name, owner = _checked(r, "name", _control_problem), _checked(r, "owner", _email_problem)
        # url last: a missing one is then said with the keys that are not known here
        pages.append(PageSettings(url=r.url("url", required=True), name=name, owner=owner))
        r.finish()
        if (first := seen.setdefault(pages[-1].url, i)) != i:
            r.fail(f"[[pages]] #{i + 1} url", f"the same page as [[pages]] #{first + 1} ({pages[-1].url})")
    return tuple(pages)


def _nonempty(r: _Reader, name: str, default: str) -> str:
    value = r.get(name, str, default)
    if not value.strip():
        r.fail(r.key(name), "must not be empty")
    return value


def _path(r: _Reader, name: str, default: str, *, nonempty: bool = False) -> str:
    """A file or folder name: never NUL, which no name can hold (written
    "\\u0000" in TOML, it ended `check` or `report` in a bare "monitor:
    ValueError: embedded null byte", exit 1). A line break is left alone:
    odd, but a name may hold one."""
    value = _nonempty(r, name, default) if nonempty else r.get(name, str, default)
    if "\x00" in value:
        r.fail(r.key(name), f"holds NUL (U+0000) at character {value.index(chr(0)) + 1}: "
               "no file name can hold it")
    return value


def _host(r: _Reader, name: str, default: str) -> str:
    """A host name or address to connect to or listen on: one word, no
    control character (NUL ended `report --send` and `serve` in a bare
    ValueError; a line break made the error two lines)."""
    value = _nonempty(r, name, default)
    if problem := _control_problem(value):
        r.fail(r.key(name), problem)
    if any(c.isspace() for c in value.strip()):
        r.fail(r.key(name), f"expected a host name or address, got {value!r}")
    return value


def _checked(r: _Reader, name: str, check: Callable[[str], str | None]) -> str:
    value = r.get(name, str, "")
    if value and (problem := check(value)):
        r.fail(r.key(name), problem)
    return value


def _regex_problem(pattern: str) -> str | None:
    """A pattern `re` refuses, said at load time (not as exit 1 mid-audit)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"not a valid regular expression ({exc}): {pattern!r}"
    return None


def _sites(source: str, raw: Any) -> tuple[SiteSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: sites: expected an array of tables ([[sites]])")
    sites = []
    for i, table in enumerate(raw):
        r = _Reader(source, f"[[sites]] #{i + 1} ", table)
        site = SiteSettings(
            start=r.url("start"),
            sitemap=r.url("sitemap"),
            name=_checked(r, "name", _control_problem),
            owner=_checked(r, "owner", _email_problem),
            max_depth=r.number("max_depth", 3, integer=True),
            max_pages=r.number("max_pages", 500, minimum=1, integer=True),
            include=r.strings("include", (), _regex_problem),
            exclude=r.strings("exclude", (), _regex_problem),
            exclude_links=r.strings("exclude_links", (), _regex_problem),
        )
        if not site.start and not site.sitemap:
            r.fail(f"[[sites]] #{i + 1}", "needs a start URL or a sitemap URL")
        r.finish()
        sites.append(site)
    return tuple(sites)


def _checker(source: str, raw: Any) -> CheckerSettings:
    r = _Reader(source, "checker.", raw)
    d = CheckerSettings()
    allow = r.get("allow_private_networks", (bool, list), False)
    if isinstance(allow, list):
        allow = r.strings("allow_private_networks", (), _network_problem)
    connect_to_raw = r.get("connect_to", dict, {})
    connect_to = []
    for key, value in connect_to_raw.items():
        if key == "*" and value == "refuse":
            connect_to.append((key, value))  # offline: unmapped names fail as DNS
            continue
        if problem := _hostport_problem(key):
            r.fail(f"checker.connect_to.{key}", problem)
        if not isinstance(value, str) or (problem := _hostport_problem(value)):
            r.fail(f"checker.connect_to.{key}", problem or "expected a string ip:port")
        connect_to.append((key.lower(), value))
    settings = CheckerSettings(
        timeout=r.number("timeout", d.timeout, minimum=0.01),
        concurrency=r.number("concurrency", d.concurrency, minimum=1, integer=True, maximum=10000),
        per_host=r.number("per_host", d.per_host, minimum=1, integer=True, maximum=1000),
        retries=r.number("retries", d.retries, integer=True, maximum=10),
        user_agent=r.get("user_agent", str, d.user_agent),
        allow_private_networks=allow,
        max_redirects=r.number("max_redirects", d.max_redirects, minimum=1, integer=True, maximum=100),
        max_body_bytes=r.number("max_body_bytes", d.max_body_bytes, minimum=1024, integer=True),
        retry_after_max=r.number("retry_after_max", d.retry_after_max),
        backoff_base=r.number("backoff_base", d.backoff_base),
        soft404_probe=r.get("soft404_probe", bool, d.soft404_probe),
        exclude=r.strings("exclude", (), _regex_problem),
        connect_to=tuple(connect_to),
        archive_url=r.url("archive_url", ""),
        ca_file=_path(r, "ca_file", ""),
    )
    if settings.ca_file and not Path(settings.ca_file).is_file():
        r.fail("checker.ca_file", _no_such_file("checker.ca_file", settings.ca_file, source))
    if not settings.user_agent.strip():
        r.fail("checker.user_agent", "must be one non-empty line")
    if problem := _control_problem(settings.user_agent):
        # was CR and LF only: a NUL, ESC or DEL passed, then every request was
        # refused and each page said "not a usable address" (contract12 #1)
        r.fail("checker.user_agent", problem)
    r.finish()
    return settings


def _database(source: str, raw: Any) -> DatabaseSettings:
    r = _Reader(source, "database.", raw)
    d = DatabaseSettings()
    path = _path(r, "path", d.path, nonempty=True)
    keep_weeks = r.number("keep_weeks", d.keep_weeks, integer=True, maximum=MAX_WEEKS)
    r.finish()
    return DatabaseSettings(path=path, keep_weeks=keep_weeks)


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_ITEM = re.compile(r"(\*|\w+)(?:-(\w+))?(?:/(\d+))?")


def _day_number(token: str) -> int:
    if token.isascii() and token.isdigit():  # "¹" is a digit to isdigit, not to int
        if int(token) > 7:
            raise ValueError(f"weekday {token} is not 0-7 (0 and 7 are Sunday)")
        return int(token) % 7
    if token.lower()[:3] in _DAY_NAMES and len(token) == 3:
        return _DAY_NAMES.index(token.lower())
    raise ValueError(f"weekday {token!r} is neither 0-7 nor a day name (mon, tue, ...)")


def crontab_weekdays(cron: str) -> str:
    """The cron expression with its weekday numbers read as crontab reads
    them (0 and 7 Sunday, 1 Monday), written as day names.

    APScheduler 3 counts from Monday = 0, so "0 6 * * 1", what every crontab
    and tutorial means by Monday, fired on Tuesdays. Names and "*" mean the
    same in both and are left alone; numbers, ranges and steps are expanded
    to the days crontab would run on ("1-5" mon-fri, "*/2" sun,tue,thu,sat).
    """
    fields = cron.split()
    if len(fields) != 5:
        return cron
    if fields[2] not in ("*", "?") and fields[4] not in ("*", "?"):
        # crontab runs on either; APScheduler only when both match
        raise ValueError("a day of the month and a weekday together mean 'either' in a crontab "
                         "but 'both' in this scheduler: restrict one of them only")
    if not any(ch.isdigit() for ch in fields[4]):
        return cron
    days: set[int] = set()
    for item in fields[4].split(","):
        match = _DAY_ITEM.fullmatch(item)
        if match is None:
            raise ValueError(f"cannot read the weekday {item!r}")
        first, last, step = match.groups()
        if first == "*":
            if last is not None:
                raise ValueError(f"cannot read the weekday {item!r}")
            start, end = 0, 6
        else:
            start = _day_number(first)
            end = _day_number(last) if last is not None else (7 if step else start)
            if last is not None and last.isascii() and last.isdigit() and int(last) == 7:
                end = 7
        if end < start:
            raise ValueError(f"weekday range {item!r} runs backwards")
        if step is not None and int(step) == 0:
            raise ValueError(f"weekday step {item!r} is 0")
        days.update(day % 7 for day in range(start, end + 1, int(step or 1)))
    fields[4] = ",".join(_DAY_NAMES[(day + 1) % 7] for day in sorted((d - 1) % 7 for d in days))
    return " ".join(fields)


def _schedule(source: str, raw: Any) -> ScheduleSettings:
    r = _Reader(source, "schedule.", raw)
    d = ScheduleSettings()
    cron = r.get("cron", str, d.cron)
    if len(cron.split()) != 5:
        r.fail("schedule.cron", f"expected five fields (minute hour day month weekday), got {cron!r}")
    # The default needs no reading: `monitor check`, which never
    # schedules, then starts without loading APScheduler (7-17 ms).
    if cron != d.cron:
        try:
            from apscheduler.triggers.cron import CronTrigger

            CronTrigger.from_crontab(crontab_weekdays(cron))
        except ValueError as exc:
            r.fail("schedule.cron", f"invalid cron expression {cron!r}: {exc}")
    tz = r.get("timezone", str, d.timezone)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except Exception:
        r.fail("schedule.timezone", f"unknown time zone {tz!r} (use an IANA name like Europe/Paris)")
    rechecks = r.get("rechecks", list, list(d.rechecks))
    for i, h in enumerate(rechecks):
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not h > 0 or not math.isfinite(h):
            r.fail(f"schedule.rechecks #{i + 1}", f"expected a positive number of hours, got {h!r}")
        if h > MAX_HOURS:
            r.fail(f"schedule.rechecks #{i + 1}", f"must be at most {MAX_HOURS} hours, got {h!r}")
    settings = ScheduleSettings(
        cron=cron, timezone=tz, rechecks=tuple(float(h) for h in rechecks),
        misfire_grace_hours=r.number("misfire_grace_hours", d.misfire_grace_hours, maximum=MAX_HOURS),
    )
    r.finish()
    return settings


def _report(source: str, raw: Any) -> ReportSettings:
    r = _Reader(source, "report.", raw)
    d = ReportSettings()
    settings = ReportSettings(
        dir=_path(r, "dir", d.dir, nonempty=True),  # "" was the working directory, pruned by keep_weeks
        site_name=_checked(r, "site_name", _control_problem),
        max_citation_age_years=r.number("max_citation_age_years", 0, integer=True, maximum=1000),
        confirm_after_hours=r.number("confirm_after_hours", d.confirm_after_hours, maximum=MAX_HOURS),
        base_url=r.url("base_url", d.base_url),
        keep_weeks=r.number("keep_weeks", d.keep_weeks, integer=True, maximum=MAX_WEEKS),
    )
    r.finish()
    return settings


def _email(source: str, raw: Any) -> EmailSettings:
    r = _Reader(source, "email.", raw)
    d = EmailSettings()
    settings = EmailSettings(
        host=_host(r, "host", d.host),
        port=r.number("port", d.port, minimum=1, integer=True, maximum=65535),
        security=r.choice("security", ("starttls", "tls", "none"), d.security),
        username=r.get("username", str, d.username),
        password_env=r.get("password_env", str, d.password_env),
        sender=r.get("sender", str, d.sender),
        recipients=_recipients(r),
        timeout=r.number("timeout", d.timeout, minimum=0.1),
        enabled=r.get("enabled", bool, d.enabled),
        ca_file=_path(r, "ca_file", d.ca_file),
        allow_plain_login=r.get("allow_plain_login", bool, d.allow_plain_login),
    )
    if settings.ca_file and not Path(settings.ca_file).is_file():
        r.fail("email.ca_file", _no_such_file("email.ca_file", settings.ca_file, source))
    if "sender" in r.table and (problem := _email_problem(settings.sender)):
        r.fail("email.sender", problem)
    if settings.enabled and "recipients" in r.table and not settings.recipients:
        r.fail("email.recipients", "is empty: the report would go to no one "
               "(list an address, or set email.enabled = false)")
    if problem := _password_env_problem(settings):
        r.fail("email.password_env", problem)
    if (settings.enabled and settings.security == "none" and settings.username
            and not settings.allow_plain_login and not is_loopback_host(settings.host)):
        r.fail("email.security", f'"none" with email.username set sends the password in clear to '
               f'{settings.host}; use "starttls" (port 587) or "tls" (port 465), or set '
               "email.allow_plain_login = true if the network to that server is trusted")
    if "password" in r.table:
        r.fail("email.password", "passwords do not belong in files; put it in the environment "
               f"variable named by email.password_env ({settings.password_env})")
    r.finish()
    return settings


def _recipients(r: _Reader) -> tuple[str, ...]:
    """One address written without its list brackets is answered with the
    line to write (was "expected a list, got the string ...": review 13 #18)."""
    written = r.table.get("recipients")
    if isinstance(written, str):
        r.fail("email.recipients", f"expected a list, got the string {written!r}: write it "
               f"as a list, recipients = [{json.dumps(written, ensure_ascii=False)}]")
    return r.strings("recipients", EmailSettings().recipients, _email_problem)


MAIL_TO_EXAMPLE = 'recipients = ["you@your-site.org"]'
MAIL_FROM_EXAMPLE = 'sender = "monitor@your-site.org"'


def require_mail_addresses(settings: Settings) -> None:
    """Before a command that mails (`run`, `serve`, `report --send`): the
    addresses are the user's to write, so their absence is a configuration
    error said before anything is audited or recorded, not a report mailed
    to a placeholder or a message failing in the outbox after the audit.
    Page owners are extra recipients, never the webmaster's replacement:
    with owners but no `recipients` it is refused all the same."""
    email = settings.email
    if not email.enabled:
        return
    missing = [key for key, value in (("sender", email.sender), ("recipients", email.recipients))
               if not value]
    if not missing:
        return
    off = "or enabled = false to keep the reports without mailing them"
    owners = " (page owners receive only their pages' part)" if _has_owners(settings) else ""
    if len(missing) == 2:
        raise ConfigError(
            f"{settings.source}: email.sender, email.recipients: not set, so the weekly report has "
            f"no address to come from and no one to go to{owners}: add {MAIL_FROM_EXAMPLE} and "
            f"{MAIL_TO_EXAMPLE} under [email], {off}")
    if missing == ["recipients"]:
        raise ConfigError(
            f"{settings.source}: email.recipients: not set, so the weekly report goes to no "
            f"one{owners}: add {MAIL_TO_EXAMPLE} under [email], {off}")
    raise ConfigError(
        f"{settings.source}: email.sender: not set, so the report has no address to come from: "
        f"add {MAIL_FROM_EXAMPLE} (an address your mail server sends for) under [email], {off}")


def _has_owners(settings: Settings) -> bool:
    return any(p.owner for p in settings.pages) or any(s.owner for s in settings.sites)


def _password_env_problem(email: EmailSettings) -> str | None:
    """The key names a variable. Empty, it is refused only with a
    `email.username`: without one no password is read, and a file that
    wrote "" for "no password" kept working before this check and still does."""
    name = email.password_env
    if not name.strip():
        if email.username:
            return "must name an environment variable holding the password of email.username"
        return None
    if name.startswith("$"):
        return f"name the environment variable without the $: {name[1:]!r}, not {name!r}"
    if any(c.isspace() or c == "=" for c in name) or _control_problem(name):
        return f"not the name of an environment variable: {name!r}"
    return None


def _server(source: str, raw: Any) -> ServerSettings:
    r = _Reader(source, "server.", raw)
    d = ServerSettings()
    settings = ServerSettings(
        enabled=r.get("enabled", bool, d.enabled),
        host=_host(r, "host", d.host),
        port=r.number("port", d.port, integer=True, maximum=65535),
        allowed_hosts=r.strings("allowed_hosts", d.allowed_hosts, _hostname_problem),
    )
    r.finish()
    return settings


def parse_settings(data: dict[str, Any], source: str) -> Settings:
    """Validate a parsed TOML document; `source` names it in error messages."""
    top = _Reader(source, "", data)
    sections: dict[str, Any] = {}
    for name in ("checker", "database", "schedule", "report", "email", "server"):
        top.used.add(name)
        if name in data:
            sections[name] = data[name]
    top.used.update({"pages", "sites"})
    top.finish()
    pages = _pages(source, data["pages"]) if "pages" in data else ()
    sites = _sites(source, data["sites"]) if "sites" in data else ()
    if not pages and not sites:
        raise ConfigError(f"{source}: pages: no [[pages]] or [[sites]] to watch")
    return Settings(
        pages=pages,
        sites=sites,
        checker=_checker(source, sections.get("checker", {})),
        database=_database(source, sections.get("database", {})),
        schedule=_schedule(source, sections.get("schedule", {})),
        report=_report(source, sections.get("report", {})),
        email=_email(source, sections.get("email", {})),
        server=_server(source, sections.get("server", {})),
        source=source,
    )


def _no_such_file(key: str, written: str, source: str) -> str:
    """A missing file, and the one beside the config a relative path most
    likely meant (run from another folder: `monitor.paths.misplaced`)."""
    return misplaced(key, written, Path(source)) or f"no such file: {written}"


def load_settings(path: str | Path) -> Settings:
    """Read and validate a configuration file."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: not a regular file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        if raw.startswith(b"\xef\xbb\xbf"):
            raise ConfigError(f"{path}: starts with a UTF-8 byte order mark; save it as UTF-8 without BOM") from None
        raise ConfigError(f"{path}: invalid TOML: {exc}{_toml_hint(str(exc), raw)}") from None
    return parse_settings(data, str(path))


_TOML_AT = re.compile(r"\(at line (\d+), column \d+\)")
_TOML_HINTS = (
    ("Invalid value", 'text such as an address, a name or an e-mail address goes in "quotes"'),
    ("Cannot overwrite a value", "this key is already set in this table, e.g. the example's "
                                 "allow_private_networks = false: change that line rather than add one"),
    ("Cannot declare", "this [table] is already in the file: add its keys there"),
)


def _toml_hint(message: str, raw: bytes) -> str:
    """The line the TOML parser stopped at, and what usually causes its
    complaint: "invalid TOML: Invalid value (at line 2, column 7)" alone
    left a first-time user guessing (walkthrough 13: an address without
    quotes; the example's allow_private_networks = false written again)."""
    found = _TOML_AT.search(message)
    if found is None:
        return ""
    lines = raw.decode("utf-8", "replace").splitlines()
    number = int(found.group(1))
    text = " ".join(lines[number - 1].split())[:100] if 0 < number <= len(lines) else ""
    text = "".join(ch for ch in text if ch.isprintable())
    if re.search(r"pass|secret|token", text.partition("=")[0], re.IGNORECASE):
        text = text.partition("=")[0].strip() + " = ***"  # a secret is not echoed, even a mistyped one
    hint = next((words for start, words in _TOML_HINTS if message.startswith(start)), "")
    return "".join([f": {text}" if text else "", f"; {hint}" if hint else ""])
