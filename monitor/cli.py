"""The `monitor` command (CONTRACT.md, "Commands").

The only reader of the environment. Library errors become exit statuses
here: 2 for configuration and usage mistakes (one line naming the file, the
key and the problem), 1 for anything else (one clear line; the traceback
only with --debug). Flagged links are results, not failures: exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import gc
import logging
import os
import shlex
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from monitor.config import Settings, load_settings, require_mail_addresses
from monitor.paths import misplaced
from monitor.errors import ConfigError, MonitorError, failure_line

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

log = logging.getLogger("monitor")


class Failure(click.ClickException):
    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"monitor: {self.format_message()}", err=True)


class UsageFailure(Failure):
    exit_code = 2


def guarded(fn: F) -> F:
    """Translate library errors into the contract's exit statuses."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            if debug:  # the traceback, and still the contract's exit status
                traceback.print_exc()
            raise UsageFailure(str(exc)) from None
        except MonitorError as exc:
            if debug:
                traceback.print_exc()
            raise Failure(failure_line(exc) or str(exc)) from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise Failure("interrupted") from None
        except BrokenPipeError:
            # The reader stopped early (`monitor check --format csv | head`):
            # the command's work is done; drop the rest of the output quietly.
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(0) from None
        except Exception as exc:
            if debug:
                traceback.print_exc()
            if words := failure_line(exc):
                raise Failure(words) from None
            if debug:
                raise Failure(f"{type(exc).__name__}: {exc}") from None
            raise Failure(f"{type(exc).__name__}: {exc} (run with --debug for details)") from None

    return wrapper  # type: ignore[return-value]


def config_option(fn: F) -> F:
    return click.option(
        "--config", "config_path", required=True, type=click.Path(path_type=Path),
        help="The configuration file (TOML), e.g. config/monitor.toml.",
    )(fn)


def load(config_path: Path, only_pages: Sequence[str] = ()) -> Settings:
    """Settings for a command that writes the database (made on first use);
    `only_pages`: `check --page`'s, the only pages it will fetch."""
    settings = load_settings(config_path)
    from monitor.netguard import refused_watched_pages

    if refused := refused_watched_pages(settings, only_pages):
        raise ConfigError(refused)
    db = settings.database.path
    if db != ":memory:":
        refuse_misplaced_database(settings, config_path)
        path = Path(db)
        problem = (f"{path} is a directory, not a database file" if path.is_dir()
                   else not_sqlite(path) if path.exists() else dir_problem(path.parent))
        if problem:
            raise ConfigError(f"{settings.source}: database.path: {problem}")
    return settings


def refuse_unmapped_audit(settings: Settings, only_pages: Sequence[str] = ()) -> None:
    """`check` and `run` stop before recording a run when the configuration's
    checker.connect_to refuses every page (`netguard.unmapped_watched_pages`):
    the demo's results-only file recorded an empty run (review 15 #3).
    Not `serve` and `load`: `report`, `history` and the dashboard read such
    a file's results."""
    from monitor.netguard import unmapped_watched_pages

    if why := unmapped_watched_pages(settings, only_pages):
        raise UsageFailure(why)


SQLITE_HEADER = b"SQLite format 3\x00"


def not_sqlite(path: Path) -> str | None:
    """Why the file at `database.path` cannot be the database, or None.

    A file of another kind there is a mistake in the configuration (exit 2,
    naming the key), not a failure of the database: it was "monitor:
    ... is not a SQLite database", exit 1, in check, report, history, serve.
    An empty file is fine: SQLite makes a database of it."""
    if path.exists() and not path.is_file():
        # /dev/null, a FIFO: was "disk I/O error", exit 1
        return (f"{path} is not a regular file; point database.path at the monitor's "
                "database, or at a new file")
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError:
        return None  # unreadable: opening it says why
    if not head:
        return None
    if head != SQLITE_HEADER:
        return (f"{path} is a file of another kind, not a SQLite database; point "
                "database.path at the monitor's database, or at a new file")
    if others := foreign_tables(path):
        # Another program's database (the CMS's, a copied config): the
        # monitor added its ten tables to it and exited 0.
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        return (f"{path} is another program's SQLite database (tables: {shown}); give the "
                "monitor a file of its own in database.path")
    return None


def foreign_tables(path: Path) -> list[str]:
    """The tables of a SQLite file that the monitor never migrated (no
    `_sqlite_migrations`): empty for the monitor's own database, an empty
    file, or one that cannot be read (opening it says why)."""
    import sqlite3

    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            names = [r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        finally:
            db.close()
    except sqlite3.Error:
        return []
    return [] if "_sqlite_migrations" in names else names


def require_smtp_password(settings: Settings) -> None:
    """Before a job that mails: the addresses must be written and the
    password's variable set, or the job would fail after its audit (and
    every later job before its own), or mail a placeholder address."""
    from monitor.jobs import smtp_password

    require_mail_addresses(settings)
    smtp_password(settings)


def dir_problem(path: Path) -> str | None:
    """Why files could not be written in the directory `path` (created if
    missing: report.dir, --out, the database's folder), or None: looked at
    before the audit, so that its work is not spent on a report or a database
    that cannot be saved.

    Found out by doing it: the missing folders are made and a file is made
    in `path`, then all of it is removed again. Permission bits alone passed
    what only the attempt tells: root on a read-only file system, or
    /proc/reports (the audit ran, then FileNotFoundError, no key named)."""
    if path.exists() and not path.is_dir():
        return f"{path} is not a directory"
    missing: list[Path] = []
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        missing.append(ancestor)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"cannot create {path}: {ancestor} is not a directory"
    made: list[Path] = []
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except OSError as exc:
                if isinstance(exc, PermissionError):
                    return f"cannot create {path}: no permission to write in {folder.parent}"
                return f"cannot create {path}: {folder.parent} does not accept new folders ({exc.strerror})"
            made.append(folder)
        try:
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            if isinstance(exc, PermissionError):
                return f"{path}: no permission to write in it"
            return f"{path}: cannot write in it ({exc.strerror})"
        return None
    finally:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()


def require_report_dir(settings: Settings, out: Path | None = None) -> None:
    if out is not None:
        from reports.render import names_report_file

        if problem := dir_problem(out.parent if names_report_file(out) else out):
            raise UsageFailure(f"--out: {problem}")
    else:
        refuse_misplaced_reports(settings)
        if problem := dir_problem(Path(settings.report.dir)):
            raise ConfigError(f"{settings.source}: report.dir: {problem}")


def load_existing(config_path: Path) -> Settings:
    """Settings for a command that only reads the history (history, report).

    Opening a database that is not there creates an empty one: a typo in
    `database.path` then read as "never checked" and left a stray file.
    """
    settings = load_settings(config_path)
    path = settings.database.path
    if path != ":memory:" and not Path(path).exists():
        refuse_misplaced_database(settings, config_path)
        where = "" if Path(path).is_absolute() else f" (from the working directory: {Path.cwd() / path})"
        raise Failure(f"no database at {path}{where} yet (database.path in {config_path}): "
                      "`monitor check` or `monitor run` makes it")
    if path != ":memory:" and (problem := not_sqlite(Path(path))):
        raise ConfigError(f"{settings.source}: database.path: {problem}")
    return settings


def misplaced_database(db: str, config_path: Path, cwd: Path | None = None) -> str | None:
    """The database a relative `database.path` most likely meant (`misplaced`)."""
    said = misplaced("database.path", db, config_path, what="database", cwd=cwd)
    return f"{config_path}: database.path {said}" if said else None


def refuse_misplaced_database(settings: Settings, config_path: Path) -> None:
    """Exit 2 (a usage mistake: the working directory) before any database
    is opened or made, when `misplaced_database` finds the likely one."""
    if problem := misplaced_database(settings.database.path, config_path):
        raise UsageFailure(problem)


def refuse_misplaced_reports(settings: Settings) -> None:
    """Exit 2 before a report is written into a second, new folder of
    reports while the one beside the config holds the earlier weeks (its
    index of reports would start again from this week)."""
    source = Path(settings.source)
    if said := misplaced("report.dir", settings.report.dir, source, what="folder of reports", folder=True):
        raise UsageFailure(f"{source}: report.dir {said}")


def setup_logging(verbose: bool, debug: bool) -> None:
    """Plain structured lines on stderr: time, level, logger, event and fields."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )
    logging.Formatter.converter = time.gmtime  # one time zone in every log: UTC


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.version_option(package_name="citation-monitor")
def cli(debug: bool, verbose: bool) -> None:
    """Link-rot and content audits for citation-heavy websites.

    \b
    Example:
        monitor check --config config/monitor.toml
        monitor demo
    """
    setup_logging(verbose, debug)


# -- check ---------------------------------------------------------------------


@cli.command(short_help="One audit now: check every link, record, print.")
@config_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text",
              show_default=True, help="Output format.")
@click.option("--page", "pages", multiple=True, metavar="URL",
              help="Audit only this page (repeatable); default: every configured page.")
@guarded
def check(config_path: Path, fmt: str, pages: Sequence[str]) -> None:
    """One audit now: fetch the pages, extract, check, classify, record, print.

    \b
    Example:
        monitor check --config config/monitor.toml --format json > audit.json
    """
    from monitor.config import url_problem

    for page in pages:
        if problem := url_problem(page):
            raise UsageFailure(f"--page: {problem}")
    settings = load(config_path, pages)
    refuse_unmapped_audit(settings, pages)
    for line in unconfigured_pages(settings, pages):
        click.echo(line, err=True)
    try:
        outcome = run_stoppable(_check(settings, pages))
    except KeyboardInterrupt as exc:
        raise Failure(interrupted_words(exc)) from None
    fetched, cuts = print_results(settings, outcome.run.id, fmt)
    if pages and fmt == "text":
        print_fixed(settings, outcome.run.id)
    say_unfetched(settings, fetched, pages, cuts)
    require_a_page_read(fetched, outcome.run.id)


def print_fixed(settings: Settings, run_id: int) -> None:
    """After `check --page`'s listing: what is fixed on those pages since the
    last report, by the report's own rule (reports.deliver.load_audit, then
    `Audit.fixed_since_last`), so the editor checking a fix sees it said,
    not only the row gone from the list."""
    from monitor.output import fixed_lines
    from monitor.store import Store
    from reports.deliver import load_audit

    with Store.open(settings.database.path) as store:
        audit = load_audit(store, run_id, settings, dt.datetime.now(dt.timezone.utc))
    lines = fixed_lines(audit.fixed_since_last, audit.previous_run)
    if lines:
        click.echo("\n" + "\n".join(lines))


def unconfigured_pages(settings: Settings, pages: Sequence[str]) -> list[str]:
    """A line for each --page URL that is not a configured page, naming the
    closest one: the contract allows any URL, but a typo (a-to-zz.html, or
    http:// for https://) was audited without a word, under its own title
    instead of the page's configured name. A page of a [[sites]] site is not
    a typo: it is one of the pages that site's crawl audits."""
    import difflib
    from urllib.parse import urlsplit

    configured = [p.url for p in settings.pages]
    sites = {urlsplit(s.url)[:2] for s in settings.sites}
    lines = []
    for url in dict.fromkeys(pages):
        if url in configured or urlsplit(url)[:2] in sites:
            continue
        line = f"--page {url}: not a [[pages]] url of {settings.source}; audited anyway, under its own title"
        close = difflib.get_close_matches(url, configured, n=1, cutoff=0.6)
        lines.append(line + (f"; did you mean {close[0]}?" if close else ""))
    return lines


INTERRUPTED = ("interrupted: the links checked so far are saved; the next audit of this database "
               "(monitor check, run or serve) resumes the run where it stopped, or starts a new one "
               "if the pages, [[sites]] or exclusions of the configuration are changed meanwhile")


def say(line: str) -> None:
    """A plain line on stderr (stdout may be JSON or CSV)."""
    click.echo(line, err=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, ended as Ctrl-C is (the job cancelled, its run closed as
    "interrupted"), then raised as a KeyboardInterrupt: what catches a Ctrl-C
    (`guarded`, the commands' own lines) catches it too."""


def run_stoppable(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, with SIGTERM taken as Ctrl-C.

    `timeout 2h monitor run` in a crontab and `systemctl stop` send SIGTERM,
    whose default action ended the process mid-audit: no word on stderr and
    the run left "running" (its checks were kept, as after a power cut).
    Here SIGTERM cancels the job as Ctrl-C does, so the run is closed as
    "interrupted" and the same one line says so. A second SIGTERM during
    that clean-up cancels it again; SIGKILL is what ends it at once.
    """
    stopped = False

    async def stoppable() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop() -> None:
            nonlocal stopped
            stopped = True
            task.cancel()

        try:
            loop.add_signal_handler(signal.SIGTERM, stop)
        except (NotImplementedError, RuntimeError):  # no signals here (Windows, a thread)
            return await main
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(stoppable())
    except asyncio.CancelledError:
        if stopped:
            raise Terminated from None
        raise


def interrupted_words(exc: BaseException) -> str:
    """The one line for a stopped audit; a SIGTERM's says where it came from,
    so a cron mail tells a timeout from a keypress."""
    if isinstance(exc, Terminated):
        return "stopped by SIGTERM (a timeout or a service stop); " + INTERRUPTED.removeprefix("interrupted: ")
    return INTERRUPTED


async def _check(settings: Settings, pages: Sequence[str]) -> Any:
    from monitor.crawl import run_audit

    async with one_audit(settings):
        with progress_bar() as progress:
            return await run_audit(settings, only_pages=list(pages) or None, progress=progress,
                                   notice=say)


LOCK_POLL_S = 2.0


@contextlib.asynccontextmanager
async def one_audit(settings: Settings, wait: float = 0.0) -> AsyncIterator[None]:
    """Hold the database's audit lock, or stop with a clear message (see monitor.locking).

    With `wait`, ask again for up to that many seconds first: the service's
    recheck rounds hold the lock a few seconds every 5 minutes, and a cron
    `monitor run` that met one stopped, and that week's audit with it.
    """
    from monitor.locking import exclusive, held_by

    deadline = time.monotonic() + wait
    said = False
    while True:
        async with exclusive(settings.database.path) as held:
            if held:
                yield
                return
        if time.monotonic() >= deadline:
            raise Failure(f"{settings.database.path}: another audit is running on this database "
                          f"({held_by(settings.database.path)}); try again when it has finished")
        if not said:
            click.echo(f"waiting for the audit lock of {settings.database.path}, held by "
                       f"{held_by(settings.database.path)} (up to {wait:g} s, --wait)", err=True)
            said = True
        await asyncio.sleep(min(LOCK_POLL_S, max(0.0, deadline - time.monotonic())))


class progress_bar:
    """A rich progress bar on a terminal; nothing otherwise (logs do the job)."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Callable[[int, int], None] | None:
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("checking links"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task("check", total=None)
        return self.update

    def update(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def say_unfetched(settings: Settings, pages: Sequence[Any], given: Sequence[str] = (),
                  cuts: Sequence[Any] = ()) -> None:
    """On stderr, after the results: the [[sites]] crawls max_pages cut
    short, the pages that could not be fetched, then those whose address
    redirects permanently (stdout may be a JSON file; a webmaster reads the
    terminal)."""
    from monitor.output import cut_sites, moved_pages, unfetched_pages

    configured = [p.url for p in settings.pages]
    lines = [*cut_sites(cuts),
             *unfetched_pages(pages, source=settings.source, given=given, configured=configured),
             *moved_pages(pages, source=settings.source, given=given, configured=configured)]
    for line in lines:
        click.echo(line, err=True)


def require_a_page_read(pages: Sequence[Any], run_id: int) -> None:
    """Exit 1 when not one watched page could be fetched: no link was
    checked, so the command did not do its job (CONTRACT.md: 0 when it did,
    1 for anything else), and a cron wrapper that reads the exit status
    alone took a site that was down, or a config whose every url is wrong,
    for a week with nothing to fix. No page recorded at all (a [[sites]]
    crawl whose robots.txt answered 503) is the same: nothing was read.
    Some pages read is an audit: exit 0, the lines above name the others."""
    from monitor.types import pages_read_none

    if not pages_read_none(pages):
        return
    if pages:
        raise Failure(f"no watched page could be fetched, so no link was checked (run {run_id}); "
                      "the lines above say why")
    raise Failure(f"no page was fetched, so no link was checked (run {run_id}): the [[sites]] crawl "
                  "recorded none; the lines above say why")


def print_results(settings: Settings, run_id: int, fmt: str) -> tuple[list[Any], list[Any]]:
    """The run's links, streamed from the database to stdout: memory stays
    flat however many links the run has (nothing holds them all). Returns
    the run's pages and its [[sites]] crawls cut short by max_pages."""
    from monitor.output import write_csv, write_json
    from monitor.store import Store

    if sys.stdout is None:  # started with no output at all (`>&-`): was "AttributeError: ... 'flush'"
        raise Failure(closed_stdout_line(settings, run_id, fmt))
    # One pass over the run: memory-mapped reads would leave the whole
    # database resident (256 MiB of 313 at 100,000 links) to save 0.6 s.
    with Store.open(settings.database.path, mapped=False) as store:
        run = store.get_run(run_id)
        assert run is not None
        pages = store.run_pages(run_id)
        cuts = store.run_site_cuts(run_id)
        # How often each link that flaps failed (one query, the few such URLs):
        # read before the links' cursor opens.
        flaps = store.fail_tallies() if fmt == "text" else {}
        links = store.iter_run_links(run_id)
        with contextlib.closing(links):  # its cursor goes before the database, also on a broken pipe
            if fmt == "json":
                write_json(utf8_stdout(), run, pages, links, cuts)
            elif fmt == "csv":
                write_csv(utf8_stdout(), links)
            else:
                print_listing(run, pages, links,
                              confirm_after=dt.timedelta(hours=settings.report.confirm_after_hours),
                              accepted=_accepted_now(store, run), flaps=flaps)
            sys.stdout.flush()
    return pages, cuts


def closed_stdout_line(settings: Settings, run_id: int, fmt: str) -> str:
    """Said when there is no output to print the results to: the audit is
    kept, and the words say where to see it."""
    config = f" --config {shlex.quote(settings.source)}" if settings.source else ""
    return (f"the audit is recorded (run {run_id}), but its results were not printed: the command's output "
            f"(stdout) is closed; `monitor report{config} --run {run_id}` saves its report, or send the "
            f"output to a file: `monitor check{config} --format {fmt} > audit.{'txt' if fmt == 'text' else fmt}`")


class Utf8Stdout:
    """Text written to stdout's bytes as UTF-8, whatever the locale's encoding.

    `--format json|csv` are files for scripts: JSON is UTF-8 (RFC 8259), and
    a CSV read by the same scripts should not change with the terminal.
    Through a Latin-1 stdout (a cron job on an older server, `LANG=en_US`)
    the first "’" of a link text ended the document half-written, exit 1,
    after the audit was recorded."""

    def __init__(self, buffer: Any) -> None:
        self._buffer = buffer

    def write(self, text: str) -> int:
        # A lone surrogate (text from the web) becomes its \udcxx escape:
        # inside a JSON string that is the same character again.
        self._buffer.write(text.encode("utf-8", "backslashreplace"))
        return len(text)

    def flush(self) -> None:
        self._buffer.flush()


def utf8_stdout() -> Any:
    """stdout as UTF-8 (`Utf8Stdout`), after what its text layer holds."""
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    return sys.stdout if buffer is None else Utf8Stdout(buffer)


def tolerant_streams() -> None:
    """stdout and stderr show what their encoding lacks as an escape ("\u2019")
    instead of failing: the listing of a page titled "Raynaud’s" through a
    Latin-1 terminal stopped half-way with "UnicodeEncodeError", exit 1, the
    audit recorded. A UTF-8 stream keeps its own handler (surrogateescape
    gives a file name's undecodable bytes back as they were)."""
    import codecs

    for stream in (sys.stdout, sys.stderr):
        encoding, errors = getattr(stream, "encoding", None), getattr(stream, "errors", None)
        if not hasattr(stream, "reconfigure") or not encoding:
            continue
        with contextlib.suppress(LookupError):
            if codecs.lookup(encoding).name.startswith("utf") and errors != "strict":
                continue
        with contextlib.suppress(Exception):  # a stream that cannot: left as it is
            stream.reconfigure(errors="backslashreplace")


def print_listing(run: Any, pages: Sequence[Any], links: Iterable[Any], *,
                  confirm_after: dt.timedelta, accepted: dict[str, Any] | None = None,
                  flaps: dict[str, Any] | None = None) -> None:
    """The terminal listing (monitor.output.write_text), headings in colour
    on a terminal; failures confirmed as the report confirms them
    (`[report] confirm_after_hours`), so both put a link in the same group."""
    from monitor.output import write_text

    colours = {"page": None, "error": "red", "expired": "red", "moved": "yellow", "drifted": "yellow",
               "blocked": "magenta", "retracted": "red", "withdrawn": "red",
               "needs_fixing": "red", "needs_a_person": "magenta", "watching": "yellow"}

    def style(text: str, kind: str) -> str:
        return click.style(text, fg=colours.get(kind), bold=True)

    write_text(sys.stdout, run, pages, links, style=style if sys.stdout.isatty() else None,
               confirm_after=confirm_after, accepted=accepted, flaps=flaps)


def _accepted_now(store: Any, run: Any) -> dict[str, Any]:
    """URL -> the acceptance speaking for it when `run` ended (`monitor accept`)."""
    from monitor.accept import current

    at = run.finished_at or run.started_at
    found = {url: current(records, at) for url, records in store.acceptances().items()}
    return {url: a for url, a in found.items() if a is not None}


# -- history -------------------------------------------------------------------


@cli.command(short_help="One URL's status timeline, oldest first.")
@click.argument("url")
@config_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one line per check, for reading; json: every check with its redirects, "
                   "for scripts.")
@guarded
def history(url: str, config_path: Path, fmt: str) -> None:
    """One URL's status timeline, oldest first.

    \b
    Example:
        monitor history https://pubmed.ncbi.nlm.nih.gov/28329375/ --config config/monitor.toml
    """
    import json

    from urllib.parse import urlsplit

    from monitor.output import (absence_lines, history_dicts, one_line, place_lines, sighting_dict, story,
                                url_spellings, whereabouts_dict)
    from monitor.store import Store
    from reports.wording import no_longer_checked_why

    try:
        absolute = bool(urlsplit(url).scheme)
    except ValueError:  # "https://a[b/": malformed, as a page may cite it (invalid_url)
        absolute = True
    if not absolute:
        raise UsageFailure(f"URL: not an absolute URL, give it whole with http:// or https://: {url!r}")
    settings = load_existing(config_path)
    found, sightings, known = None, [], []
    with Store.open(settings.database.path) as store:
        entries = store.history(url)
        state = store.url_state(url)
        told = story(store.whereabouts(url))
        instead = _instead(store, url, told)
        accepted = store.acceptances([url]).get(url, [])
        if not entries and state is None:
            # Listed by the pages but never requested (malformed, mailto:,
            # excluded): where it sits and why; else the spellings it was
            # checked under (with or without the slash, www., https).
            found = store.unrequested_sightings(url)
            if found is not None and fmt != "json":
                sightings = _sighting_lines(store, url, *found, told=told, instead=instead)
            elif found is None:
                known = [u for u in url_spellings(url) if store.url_state(u) is not None]
    if fmt == "json":
        data: dict[str, Any] = {"url": url, "observations": history_dicts(entries)}
        if found is not None:
            data["never_requested"] = sighting_dict(*found)
        data.update(whereabouts_dict(told))
        if accepted:  # `monitor accept`: who checked it by hand, and whether that holds
            data["acceptances"] = acceptance_dicts(accepted, state)
        # cited but excluded by the configuration: since which run it is not checked
        data["excluded_since_run"] = told.excluded.id if told.excluded is not None else None
        click.echo(json.dumps(data, indent=1))
        return
    if not entries and state is None:
        if found is not None:
            click.echo("\n".join(sightings))
            return
        click.echo(f"{url}: never checked under this exact address" if known else
                   f"{url}: never checked (not found in {settings.database.path})")
        for other in known[:3]:
            click.echo(f"  checked as: {other}  (monitor history {other} --config {config_path})")
        return
    click.echo(f"{url}  (times in UTC)")
    if not entries:
        click.echo(f"  no checks kept: those older than {settings.database.keep_weeks} weeks are "
                   "forgotten ([database] keep_weeks)")
    # The checks, and between them the audits that read the link's page and
    # found it gone: a link removed and restored reads as such.
    absences = absence_lines(told, entries)
    kind = _link_kind(told)
    lines = _collapsed_checks(entries, [at for at, _ in absences], kind)
    lines += [(at, [f"  {line}"]) for at, line in absences]
    for _, block in sorted(lines, key=lambda item: item[0]):
        click.echo("\n".join(block))
    tally = _failure_tally(entries)
    if tally:
        click.echo(tally)
    left_at = min((at for at, run_id in told.absent if told.left is not None and run_id >= told.left.id),
                  default=None)
    last = [e for e in entries if left_at is None or e.checked_at < left_at]
    for line in place_lines(told, flagged=bool(last) and last[-1].status.value not in ("ok", "skipped"),
                            instead=instead, excluded_by=no_longer_checked_why(
                                "excluded", crawls=bool(settings.sites)).removeprefix("now ")):
        click.echo(line)
    if state is not None:
        # Off every watched page (or on a page no longer audited, or
        # excluded), the latest check is the last there will be, not the
        # link's state now.
        current = told.checked_now or not told.known
        notice = entries[-1].notice if entries else ""
        click.echo(f"{'now' if current else 'last check'}: {state_line(state, kind)}"
                   + (f" ({notice}: {_notice_words(notice)})" if notice else ""))
        moved_to = entries[-1].suggested_url if entries and state.status.value == "moved" else None
        if moved_to and current:  # what the editor pastes, as the report's "New address:"
            click.echo(f"new address: {one_line(moved_to)}")
    for line in acceptance_lines(accepted, state):
        click.echo(line)


def _instead(store: Any, url: str, told: Any) -> list[tuple[str, str | None, str | None]]:
    """A link on no watched page now: what its entry linked to in the run it
    left in (another address, or nothing: removed), to tell a fix from a
    replacement that is broken too."""
    if told.left is None or not told.last:
        return []
    citation = told.last[0][0]
    if citation.context is None or not citation.context.title:
        return []
    return [row for row in store.entry_links_in(told.left.id, citation.page_url, citation.section,
                                                citation.context.title) if row[0] != url]


SAME_CHECKS_COLLAPSED = 3
"""From this many checks in a row with the same answer, `monitor history`
prints one line for them: a year of weekly checks of a working link was 52
identical lines, the one that changed lost among them (walkthrough 11 #10)."""


def _collapsed_checks(entries: Sequence[Any], breaks: Sequence[Any],
                      kind: str = "citation") -> list[tuple[Any, list[str]]]:
    """(time, lines) of the checks: each one as `_check_lines` says it, but a
    run of `SAME_CHECKS_COLLAPSED` or more with the same answer (status,
    reason, HTTP code, redirects, notice) as one line, "FIRST .. LAST ...
    N checks". A run does not span a time in `breaks` (an audit that found
    the link off its page): that is part of the story."""
    blocks: list[tuple[Any, list[str]]] = []
    run: list[Any] = []

    def flush() -> None:
        if len(run) >= SAME_CHECKS_COLLAPSED:
            first, last = run[0], run[-1]
            head, *rest = _check_lines(last, kind)
            times = f"{first.checked_at:%Y-%m-%d %H:%M} .. {last.checked_at:%Y-%m-%d %H:%M}"
            line = head.replace(f"{last.checked_at:%Y-%m-%d %H:%M}", times, 1)
            blocks.append((first.checked_at, [f"{line}  ({len(run)} checks, the latest shown)", *rest]))
        else:
            blocks.extend((e.checked_at, _check_lines(e, kind)) for e in run)
        run.clear()

    for e in entries:
        if run and (_answer(e) != _answer(run[-1])
                    or any(run[-1].checked_at < at <= e.checked_at for at in breaks)):
            flush()
        run.append(e)
    flush()
    return blocks


def _answer(e: Any) -> tuple[Any, ...]:
    return (e.status, e.reason, e.http_status, tuple((h.status, h.location) for h in e.redirects),
            e.notice, e.notice_detail)


def _failure_tally(entries: Sequence[Any]) -> str:
    """"failed 18 of the 52 checks kept (since 2025-11-24)" when the link has
    both worked and failed: a link that fails now and then, as its lines no
    longer show one by one."""
    failed = sum(1 for e in entries if e.status.value not in ("ok", "skipped", "moved"))
    if not failed or failed == len(entries):
        return ""
    return f"failed {failed} of the {len(entries)} checks kept (since {entries[0].checked_at:%Y-%m-%d})"


def _link_kind(told: Any) -> str:
    """What the link is on its pages (a citation, a menu link, an image...),
    for the words of its checks: "This page has a new address" for a menu
    link, as the report says it."""
    cited = [c for c in told.cited] + [c for c, _ in told.last]
    return str(cited[0].kind) if cited else "citation"


def _token(reason: str, status: Any) -> str:
    """The reason's token after the words, for a search in the JSON or the
    README's Verdicts table: "  [soft_404]"; nothing when it only repeats
    the status ("ok")."""
    return f"  [{reason}]" if reason and reason != status.value else ""


def _check_lines(e: Any, kind: str = "citation") -> list[str]:
    """One check of `monitor history`: when, the status, what it means in
    the report's words, what the site answered and how fast, the reason's
    token last; its notice under it.

    It said "moved    permanent_redirect   HTTP 200 ...  via 301 ...":
    tokens, and a moved link shown with "HTTP 200" (review 13 #10)."""
    from monitor.output import one_line
    from monitor.wording import describe

    said = describe(e.reason, url=e.final_url, http_status=e.http_status, kind=kind, confirmed=False)
    lines = [f"  {e.checked_at:%Y-%m-%d %H:%M}  {e.status.value:<8} {said}. {answer_words(e)}"
             f"{_token(e.reason, e.status)}"]
    if e.notice:
        lines.append(f"    {e.notice.upper()}: {one_line(e.notice_detail)}")
    return lines


def answer_words(e: Any) -> str:
    """What the site answered, as a sentence: "Answered 404 (24 ms)";
    "Answered 301 to https://new/; the new address answers 200 (68 ms)"
    for a redirect (each hop in turn); "No answer (15 ms)"."""
    from monitor.output import one_line

    took = f" ({e.elapsed_ms} ms)" if e.elapsed_ms else ""
    code = e.http_status
    if not e.redirects:
        return f"Answered {code}{took}" if code is not None else f"No answer{took}"
    said = []
    for hop in e.redirects:  # status 0: the hops a long chain left out, said as they were kept
        if not hop.status:
            said.append(f"({one_line(hop.location)})")
        else:
            said.append(f"{'Answered' if not said else 'that address answered'} {hop.status} "
                        f"to {one_line(hop.location)}")
    there = "the new address" if e.status.value == "moved" else "that address"
    end = f"{there} answers {code}" if code is not None else f"no answer from {there}"
    return "; ".join(said + [end]) + took


def _notice_words(notice: str) -> str:
    """After "now: ok": the link works, yet the cited article was retracted
    (or withdrawn), as each check above says; "now: ok" alone read as all well."""
    from monitor.output import NOTICE_ADVICE

    advice = NOTICE_ADVICE.get(notice)
    return (f"the link works, but the page says the cited article was {notice}"
            + (f"; {advice}" if advice else ""))


def _sighting_lines(store: Any, url: str, citations: Sequence[Any], latest: int, since_run: int,
                    told: Any = None, instead: Sequence[Any] = ()) -> list[str]:
    """`monitor history` of a link the pages list that is never requested (a
    malformed `http://`, a mailto:): that it is, and where it sits, by the
    names of the pages in the latest run listing it."""
    from monitor.output import sighting_lines

    names = {p.url: p.name or p.title for p in store.run_pages(latest)}
    first = store.get_run(since_run)
    return sighting_lines(url, citations, names, since_run, first.started_at if first else None, told, instead)


def state_line(state: Any, kind: str = "citation") -> str:
    """"error — The site had a server error (HTTP 503); failed 2 checks in a
    row since 2026-11-20 06:00  [http_503]": the status, the report's words
    for it, and what an editor needs to judge whether it is passing."""
    from monitor.wording import describe

    head = state.status.value
    if state.reason not in ("", state.status.value):
        head += f" \u2014 {describe(state.reason, url=state.url, kind=kind, confirmed=False)}"
    words = [head]
    if state.strikes:
        failed = f"failed {state.strikes} check{'s' if state.strikes > 1 else ''} in a row"
        if state.failing_since:
            failed += f" since {state.failing_since:%Y-%m-%d %H:%M}"
        words.append(failed)
    if state.flapping:
        words.append("flapping (alternates between ok and failing)")
    return "; ".join(words) + _token(state.reason, state.status)


# -- report / run ---------------------------------------------------------------


class RunId(click.ParamType):
    """A run's number: 1 and up, within SQLite's integers. click.IntRange did
    the same but printed its bounds in --help ("[1<=x<=9223372036854775807]")."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            number = value if isinstance(value, int) else int(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a run number", param, ctx)
        if number < 1:
            self.fail(f"{value} is not a run number (runs are numbered from 1)", param, ctx)
        if number > 2**63 - 1:
            self.fail(f"{value} is not a run number (too large)", param, ctx)
        return number


@cli.command(short_help="Render the latest (or a given) run's report; --send mails it.")
@config_option
@click.option("--run", "run_id", type=RunId(), default=None,
              help="The run to report, by its number (the 'run N' that check and run print; "
                   "default: the latest).")
@click.option("--out", "out_given", type=click.Path(), default=None,
              help="Where to write the report: a PATH ending in .html is the HTML file itself "
                   "(the JSON beside it, same name ending in .json); an existing folder, or any "
                   "other PATH, is a folder for both files and index.html (default: report.dir).")
@click.option("--send", is_flag=True,
              help="Email it. After a mail failure, only what did not go out (an editor who got "
                   "their part does not get it twice); once every part went out, all of it "
                   "again, on purpose.")
@guarded
def report(config_path: Path, run_id: int | None, out_given: str | None, send: bool) -> None:
    """Render the audit report of the latest (or given) run; --send emails it.

    \b
    Example:
        monitor report --config config/monitor.toml --send
    """
    from monitor.jobs import report_job

    if out_given is not None and not out_given.strip():
        # `--out "$DIR"` with DIR unset: Path("") is the working directory,
        # where the report and an index.html were written unasked.
        raise UsageFailure("--out: is empty: give the folder to write the report in "
                           "(. for the working directory) or a file ending in .html")
    out = None if out_given is None else Path(out_given)
    settings = load_existing(config_path)
    if run_id is not None:
        require_run(settings, run_id)
    if send:
        require_smtp_password(settings)
    require_report_dir(settings, out)
    with quiet_outbox_log(), sigterm_raised():
        outcome = asyncio.run(report_job(settings, run_id=run_id, out=out, send=send, resend=send))
    if outcome.unfinished:
        click.echo(outcome.unfinished, err=True)
    click.echo(outcome.headline)
    click.echo(f"report: {outcome.html_path}")
    click.echo(f"data:   {outcome.json_path}")
    if outcome.full_audit is not None:
        click.echo(f"note:   run {outcome.run_id} checked only some pages (monitor check --page); "
                   f"the latest audit of every page is run {outcome.full_audit}: "
                   f"monitor report --run {outcome.full_audit}")
    if send and not settings.email.enabled:
        # Asked for by name, refused by the configuration: said on stderr,
        # where a cron mail or a script's log shows it; exit 0 all the same
        # (the report was rendered, and mail off is a valid configuration).
        click.echo(f"mail:   NOT SENT: --send asks to mail the report, but [email] enabled = false "
                   f"in {settings.source}; nothing was sent or queued", err=True)
        return
    if not _echo_delivery(outcome, send, settings.email.enabled, settings.email.recipients,
                          published=bool(settings.report.base_url), source=str(settings.source)):
        raise SystemExit(1)


@contextlib.contextmanager
def sigterm_raised() -> Iterator[None]:
    """SIGTERM (`kill`, `timeout`) raised as `Terminated` where the program
    is: a report renders without giving its event loop a turn, so a loop
    handler (`run_stoppable`) would wait for the end, and the default action
    ended the process with its half-written files and, from 5,000 links, a
    child left writing the JSON (review 11 #3). Raised, the `with` blocks
    stop and reap the children and remove the files, and the one line
    "interrupted" is said."""
    def terminated(signum: int, frame: Any) -> None:
        raise Terminated

    try:
        before = signal.signal(signal.SIGTERM, terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextlib.contextmanager
def quiet_outbox_log() -> Iterator[None]:
    """Without -v, the outbox's own lines ("report run-1:all not delivered
    (attempt 1) ...") are left out: `_echo_delivery` says the same in a
    reader's words, once. `monitor serve` keeps them: its log is all it says."""
    logger = logging.getLogger("reports.deliver")
    before = logger.level
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def require_run(settings: Settings, run_id: int) -> None:
    """`report --run N` of a run the database does not hold: say which it
    holds (was "there is no run 99" alone; pruning leaves gaps)."""
    from monitor.output import runs_phrase
    from monitor.store import Store

    with Store.open(settings.database.path) as store:
        if store.get_run(run_id) is not None:
            return
        ids = [r.id for r in store.runs(limit=2**31)]
    # a usage mistake, as `--run 0` is (exit 2; was 1: contract12 #6)
    raise UsageFailure(f"{settings.database.path}: there is no run {run_id}; {runs_phrase(ids)}")


def _echo_delivery(outcome: object, send: bool, mail_on: bool = True,
                   recipients: Sequence[str] = (), *, published: bool = True,
                   source: str = "") -> bool:
    """What became of the mail, said by whom it went to (the outbox's keys,
    "run-1:owner:x@y", are the monitor's own). Returns False when a message
    was not handed to the mail server: the command then exits 1, so that
    cron or a systemd timer tells someone. A kept message is said to go out
    with the next `monitor run` or `report --send`, not "at" a time: from
    cron no process is there to retry it in between."""
    if not send:
        return True
    if not mail_on:
        click.echo("mail:   off ([email] enabled = false), nothing sent")
        return True
    run_id = getattr(outcome, "run_id", None)
    sent = list(getattr(outcome, "sent", []))
    failed = list(getattr(outcome, "failed", []))
    refused = list(getattr(outcome, "refused", []))
    addresses: Mapping[str, Sequence[str]] = getattr(outcome, "addresses", {})
    for key in sent:
        click.echo(f"sent to {delivery_words(key, recipients, run_id, addresses)}")
    if not published and any(":owner:" in key for key in sent):
        # The editors' mail says the webmaster keeps the full report: the
        # way to link it there is the webmaster's, so it is said here (the
        # webmaster's own copy names the file and the key).
        click.echo("        the page owners' mail says you keep the full report; publish report.dir "
                   "and set [report] base_url to link it in the mail instead")
    if getattr(outcome, "busy", False):
        click.echo("mail:   NOT SENT yet: another process (`monitor serve`, or another `monitor run` "
                   "or `report --send`) is sending the outbox right now; the report waits there "
                   "for its next round", err=True)
        return False
    by_reason: dict[str, list[str]] = {}
    for key, reason in failed:
        by_reason.setdefault(reason, []).append(delivery_words(key, recipients, run_id, addresses))
    partly = "partly sent: " if sent else ""
    for reason, whom in by_reason.items():
        click.echo(f"mail:   {partly}NOT SENT to {'; '.join(whom)}: {reason}", err=True)
    where = f" in {source}" if source else ""
    for key, reason in getattr(outcome, "rejected", []):
        # A permanent refusal (5xx): the next run would get the same answer.
        keyname = "the page's owner in [[pages]]" if ":owner:" in key else "email.recipients"
        config = f" --config {source}" if source else ""
        again = f"monitor report{config} --run {key.split(':')[0].removeprefix('run-')} --send"
        click.echo(f"mail:   {partly}NOT SENT to {delivery_words(key, recipients, run_id, addresses)}: {reason}", err=True)
        click.echo(f"        refused for good (5xx): check {keyname}{where}; this message is not "
                   f"retried; once the address is corrected, `{again}` sends it (only what did not "
                   "go out)", err=True)
    for _, address, answer in refused:
        if answer[:1] == "4":
            failed.append(("", answer))
            click.echo(f"mail:   {partly or 'partly sent: '}NOT SENT to {address}: the server refused "
                       f"this address for now ({answer})", err=True)
        else:
            click.echo(f"mail:   {partly or 'partly sent: '}NOT SENT to {address}: the server refused "
                       f"this address ({answer}); the others received it; check it{where}", err=True)
    if failed:
        click.echo("        kept in the outbox: it goes out with the next `monitor run` or "
                   "`monitor report --send` (a `monitor serve` on this database retries it too)",
                   err=True)
    return not failed and not refused and not getattr(outcome, "rejected", [])


SHOWN_ADDRESSES = 4
"""A list of recipients longer than this is cut to its first three and
"and N more": one line of the terminal per message, whatever the list."""


def address_list(addresses: Sequence[str]) -> str:
    if len(addresses) <= SHOWN_ADDRESSES:
        return ", ".join(addresses)
    return f"{', '.join(addresses[:SHOWN_ADDRESSES - 1])} and {len(addresses) - SHOWN_ADDRESSES + 1} more"


def delivery_words(key: str, recipients: Sequence[str], run_id: int | None = None,
                   addresses: Mapping[str, Sequence[str]] | None = None) -> str:
    """An outbox key in a reader's words: "run-2:owner:x@y" is "x@y (page
    owner)", "run-2:all" the addresses it went to (`addresses`, the
    outbox's own list for that message, else the configured recipients); a
    message of another run (one kept earlier, sent now) says which run's
    report it is, and names whom it went to only from the outbox's list,
    its day's, which may not be today's."""
    run, _, audience = key.partition(":")
    audience, _, retried = audience.partition(":retry:")
    kind, _, owner = audience.partition(":")
    number = run.removeprefix("run-")
    earlier = number.isdigit() and run_id is not None and int(number) != run_id
    if kind not in ("owner", "all") or (kind == "owner" and not owner):
        return key
    if retried:  # one recipient a server refused while the others got it
        words = f"{retried} (again: refused the first time)"
    elif kind == "owner":
        words = f"{owner} (page owner)"
    elif kind == "all" and (listed := (addresses or {}).get(key)):
        words = f"{address_list(listed)} (email.recipients)"
    elif recipients and not earlier:
        words = f"{address_list(recipients)} (email.recipients)"
    else:  # a kept message went to the recipients of its day, maybe not today's
        words = "email.recipients"
    if earlier:
        words += f", run {number}'s report"
    return words


@cli.command(short_help="The weekly job, once: check, then report, then send.")
@config_option
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=300, show_default=True,
              help="Seconds to wait for another audit of the database (a recheck round of "
                   "`monitor serve`) to end before giving up.")
@guarded
def run(config_path: Path, wait: float) -> None:
    """The weekly job, once: check, then report, then send.

    \b
    Exits 1 when a message could not be delivered (it stays in the outbox
    and goes out with the next `monitor run` or `monitor report --send`;
    one whose address the mail server refused for good is not retried:
    fix the address, then `monitor report --run N --send`).

    \b
    Example (cron: the virtual environment's full path; see the README,
    "Or from cron"):
        0 6 * * mon  /opt/citation-monitor/venv/bin/monitor run --config /etc/citation-monitor/monitor.toml
    """
    from monitor.jobs import weekly_job

    settings = load(config_path)
    refuse_unmapped_audit(settings)
    require_smtp_password(settings)
    require_report_dir(settings)

    async def job() -> tuple[object, object]:
        async with one_audit(settings, wait):
            with progress_bar() as progress:
                return await weekly_job(settings, progress=progress, notice=say)

    try:
        with quiet_outbox_log():
            audit, outcome = run_stoppable(job())
    except KeyboardInterrupt as exc:
        raise Failure(interrupted_words(exc)) from None
    from monitor.store import Store

    if audit is None:
        click.echo(f"run {outcome.run_id}: its audit had finished before an interruption; reported now")
    else:
        read = audit.pages - audit.pages_failed
        on = (f"{read} of {audit.pages} pages" if audit.pages_failed
              else f"{audit.pages} page{'' if audit.pages == 1 else 's'}")
        # the report's own figures and words (was "53 URLs on 2 pages checked"
        # beside the mail's "90 links checked": one run, two counts)
        click.echo(f"run {audit.run.id}: {outcome.checked} on {on} in {audit.seconds:.1f} s")
    click.echo(outcome.headline)
    click.echo(f"report: {outcome.html_path}")
    delivered = _echo_delivery(outcome, True, settings.email.enabled, settings.email.recipients,
                               published=bool(settings.report.base_url), source=str(settings.source))
    with Store.open(settings.database.path, mapped=False) as store:
        fetched, cuts = store.run_pages(outcome.run_id), store.run_site_cuts(outcome.run_id)
    say_unfetched(settings, fetched, cuts=cuts)
    require_a_page_read(fetched, outcome.run_id)
    if not delivered:
        raise SystemExit(1)


# -- serve ----------------------------------------------------------------------


@cli.command(short_help="The service: audits on schedule, rechecks, the dashboard.")
@config_option
@guarded
def serve(config_path: Path) -> None:
    """The long-running service: the audit on schedule, rechecks, the reports on the web.

    Audits at [schedule] cron (making up a run missed while the machine was
    down), resumes an interrupted run, rechecks failing links, retries the
    outbox. With [server] enabled = true it serves the reports (the editors'
    dashboard: / and /reports/ lead to /reports/index.html, the list of every
    report, newest first), /healthz and /metrics on server.host:server.port. SIGTERM or Ctrl-C stops it cleanly.
    Logs go to stderr, one line per event.

    \b
    Example:
        monitor serve --config /etc/citation-monitor/monitor.toml
    """
    from monitor.service import serve as run_service
    from monitor.store import Store

    settings = load(config_path)
    require_smtp_password(settings)
    require_report_dir(settings)
    Store.keep_existing()  # a database gone while serving is not made anew
    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)  # a service says what it does, without -v
    raise SystemExit(asyncio.run(run_service(settings)))


# -- demo -----------------------------------------------------------------------


@cli.command(short_help="The whole job offline, on a bundled simulated site.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("monitor-demo"), show_default=True,
              help="Where the demo writes its database, reports and received mail.")
@click.option("--serve", "serve_after", is_flag=True,
              help="Afterwards, keep the simulated site and the mail sink running and run the "
                   "service on the demo's database with the editors' dashboard on a loopback port; "
                   "prints its address and commands to try in another terminal. Ctrl-C stops it.")
@guarded
def demo(workdir: Path, serve_after: bool) -> None:
    """The whole job offline, on a bundled simulated site.

    Local servers on loopback imitate sclero.org, PubMed, a news wire,
    publishers, journals and the Wayback Machine; the site is audited as it
    was last week and as it is now, the report is rendered and mailed to a
    local SMTP sink. Nothing leaves this machine.

    With --serve, `monitor serve` then runs on the demo's results until
    Ctrl-C: the dashboard, and `check`, `report`, `history` and `run` against
    the simulated site through DIR/demo-live.toml (valid while it runs).

    \b
    Example:
        monitor demo && xdg-open monitor-demo/reports/index.html
        monitor demo --serve
    """
    from monitor.demo.run import prepare_workdir, run_demo

    prepare_workdir(workdir)
    click.echo("Auditing the simulated site (sclero.org, PubMed, publishers... on loopback)...", err=True)
    if serve_after:
        _demo_serve(workdir)
        return

    async def job() -> object:
        with progress_bar() as progress:
            return await run_demo(workdir, progress)

    result = asyncio.run(job())
    _echo_demo(result, workdir)
    click.echo("")
    click.echo("Next: open the HTML report in a browser, or look at one link's history:")
    click.echo(f"  {shlex.join(_program())} history {DEMO_HISTORY_URL} --config {shlex.quote(str(result.config))}")


def _echo_demo(result: Any, workdir: Path) -> None:
    """What the demo found and where it put it."""
    from monitor.output import checked_by_status

    click.echo("")
    click.echo(result.headline)
    # The words and figures of the report and of `check`'s last line: links,
    # of which "checked" (the report's "90 links checked"), the URLs
    # requested (`run`, /healthz `urls`), and the links checked by status,
    # adding up to them (was "by status, each address once: ... 30 ok, 14
    # skipped" beside "15 not checked", against the report's "62 ok").
    skipped = result.links - result.links_checked
    click.echo(f"{result.links} links: {result.links_checked} checked "
               f"({result.requested} URL{'' if result.requested == 1 else 's'}) in {result.seconds:.1f} s, "
               f"{skipped} not checked (email, in-page); {checked_by_status(result.counts, result.private_address)}")
    if result.truth_mismatches:
        click.echo("Verdicts that differ from the simulated site's truth:", err=True)
        for line in result.truth_mismatches:
            click.echo(f"  {line}", err=True)
    click.echo("")
    click.echo(f"HTML report:      {result.report_html}")
    click.echo(f"JSON data:        {result.report_json}")
    click.echo(f"All reports:      {result.index_html}")
    for message in result.messages[-1:]:
        click.echo(f"Received message: {message}")
        click.echo(f"  Subject: {result.subject}")
    click.echo(f"Database:         {workdir / 'monitor.db'}")


DEMO_HISTORY_URL = "https://pubmed.ncbi.nlm.nih.gov/31197643/"
"""Failing last week (503), fixed this week: a history worth reading."""


def _program() -> list[str]:
    """How to run this monitor again, for commands the demo prints: the
    console script it was started as, else this Python with -m (a second
    terminal may be another directory, and its `python` another one)."""
    return [sys.argv[0]] if sys.argv[0].endswith("monitor") else [sys.executable, "-m", "monitor"]


def _demo_serve(workdir: Path) -> None:
    """`demo --serve`: the demo's output, then the service until a signal."""
    from monitor.demo.serve import serve_demo

    bar = progress_bar()  # over the audits only: the service's banner and logs follow
    progress = bar.__enter__()

    def audited(result: Any) -> None:
        bar.__exit__(None, None, None)
        _echo_demo(result, workdir)
        root = logging.getLogger()
        if root.level > logging.INFO:
            root.setLevel(logging.INFO)  # the service says what it does, as `monitor serve` does

    def ready(live: Any) -> None:
        program = _program()

        def command(*args: str) -> str:
            return shlex.join([*program, *args, "--config", str(live.config)])

        click.echo("")
        click.echo(f"Dashboard:        {live.dashboard}  (the editors' dashboard; this machine only)")
        click.echo(f"Live config:      {live.config}")
        click.echo("                  (the simulated site's current ports: valid while this runs)")
        click.echo("")
        click.echo("The simulated site, its mail sink and `monitor serve` keep running. "
                   "In another terminal, try:")
        for args, what in ((("check",), "audit the simulated site again"),
                           (("report",), "report that audit, then reload the dashboard"),
                           (("history", DEMO_HISTORY_URL), "one link's checks"),
                           (("run",), f"check, report and mail it to the sink ({live.mail_dir})")):
            click.echo(f"  {command(*args)}  # {what}")
        click.echo("")
        when = (f"{live.next_audit:%A %d %B %Y, %H:%M} {live.next_audit.tzname() or ''}".rstrip()
                if live.next_audit is not None else "never")
        hours = " and ".join(f"{h:g}" for h in live.rechecks)
        click.echo(f"The service audits on its own only at [schedule] cron: next {when}. Links that "
                   f"started failing are rechecked {hours} hours after (schedule.rechecks).")
        click.echo("Press Ctrl-C to stop.")

    try:
        status = asyncio.run(serve_demo(workdir, progress=progress, audited=audited, ready=ready))
    finally:
        bar.__exit__(None, None, None)  # stopping twice is harmless (rich)
    click.echo(f"Stopped the dashboard, the simulated site and the mail sink; removed "
               f"{workdir / 'demo-live.toml'} (its ports are closed). The results stay: "
               f"--config {workdir / 'demo.toml'} reads them.")
    if status:
        raise SystemExit(status)


# -- accept ---------------------------------------------------------------------


@cli.command(short_help="Record that a person opened links and found them fine.")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@config_option
@click.option("--note", default="", metavar="TEXT",
              help='What the person found, e.g. "article is there (after a cookie banner)".')
@click.option("--by", "by", default=None, metavar="NAME", help="Who checked (default: your login name).")
@click.option("--undo", is_flag=True, help="Withdraw the acceptance: the rows are listed again.")
@guarded
def accept(urls: Sequence[str], config_path: Path, note: str, by: str | None, undo: bool) -> None:
    """Record that a person opened each URL in a browser and found it fine.

    For the report's "Needs a person" rows (a bot wall, a login, a 403),
    drifted links, and dead links the monitor guessed from a page that
    answered 200 (a 'page not found' title, an "expired" notice, a redirect
    to the home page, a parked domain): while the link answers as it did,
    its rows leave the problems and the counts for one quiet line. It is still checked every
    week; it is listed again if its answer changes, after 26 weeks, or
    when undone. Nothing is recorded if any URL is refused.

    \b
    Example:
        monitor accept https://academic.oup.com/rheumatology/article/57/3/410/4622921 \\
            --config config/monitor.toml --note "article is there"
    """
    from monitor.accept import (ACCEPT_WEEKS, AUDITS_FROM_NOW, NEXT_AUDITS, TITLE_KEPT, accepted_answer, guessed,
                               refusal)
    from monitor.output import one_line, url_spellings
    from monitor.store import Store

    settings = load_existing(config_path)
    now = dt.datetime.now(dt.timezone.utc)
    wanted = list(dict.fromkeys(u.strip() for u in urls))
    with Store.open(settings.database.path) as store:
        if undo:
            missing = [u for u in wanted if not any(a.undone_at is None and a.until > now
                                                    for a in store.acceptances([u]).get(u, ()))]
            if missing:
                raise UsageFailure("; ".join(f"{one_line(u)}: no acceptance to undo" for u in missing)
                                   + " (nothing changed)")
            for url in wanted:
                store.undo_acceptance(url, now)
                click.echo(f"{one_line(url)}: acceptance undone; its rows are listed again in {NEXT_AUDITS}")
            return
        runs = [r for r in (store.latest_run(), store.latest_run(full_only=True)) if r is not None]
        if not runs:
            raise UsageFailure(f"no finished audit in {settings.database.path} yet: run `monitor check` first")
        refused, judged = [], []
        for url in wanted:
            state = store.url_state(url)
            if not any(store.cited_in_run(url, r.id) for r in runs):
                latest = runs[0]
                spelled = next((u for u in url_spellings(url) if store.cited_in_run(u, latest.id)), None)
                refused.append(f"{one_line(url)}: not on any page of the latest audit (run {latest.id}, "
                               f"{latest.started_at:%Y-%m-%d}): nothing to accept"
                               + (f"; the pages link {one_line(spelled)}" if spelled else ""))
            elif state is None:
                refused.append(f"{one_line(url)}: not checked by the monitor (malformed, excluded or "
                               "not a web address): nothing to accept")
            elif why := refusal(state.status, state.reason):
                refused.append(f"{one_line(url)}: cannot be accepted: {why}")
            else:
                judged.append((url, state))
        if refused:
            raise UsageFailure("\n".join(refused) + ("\nnothing recorded" if len(wanted) > 1 else
                                                    " (nothing recorded)"))
        until = now + dt.timedelta(weeks=ACCEPT_WEEKS)
        who = by if by is not None else _login_name()
        text = " ".join(note.split())[:300]
        for url, state in judged:
            # A guessed verdict is accepted for the page the person saw: its
            # final address (and, read from the page's own words, its title),
            # as the latest check read them.
            page = ((store.history(url, limit=1) or [None])[-1] if guessed(state.status, state.reason)
                    else None)
            titled = page is not None and state.reason in TITLE_KEPT
            store.accept(url, state.status, state.reason, now, until, by=" ".join(who.split())[:80],
                         note=text, run_id=runs[0].id,
                         final_url=(page.final_url or url) if page is not None else None,
                         title=(page.title or "") if titled and page is not None else None)
            changes = (" (a 404, another title or another address)" if titled
                       else " (a 404 or another address)" if page is not None else "")
            # The report's words for the answer, not its codes (review 15 #10); and
            # which reports leave it out: `monitor report` re-renders a run already
            # audited, so only an audit made from now on can (review 15 #3).
            click.echo(f"{one_line(url)}: accepted: {accepted_answer(state.reason, url)}. {AUDITS_FROM_NOW} "
                       f"Listed again if its answer changes{changes}, or on {until:%Y-%m-%d} "
                       f"({ACCEPT_WEEKS} weeks).")


def acceptance_lines(records: Sequence[Any], state: Any) -> list[str]:
    """`monitor history`'s lines for a URL's acceptances, oldest first:
    "checked by hand: 2026-11-27 18:02 by ana: “article is there” (blocked,
    bot_challenge); holds until 2027-05-28" or why it no longer holds."""
    from monitor.output import one_line

    now = dt.datetime.now(dt.timezone.utc)
    return [f"checked by hand: {a.accepted_at:%Y-%m-%d %H:%M}{f' by {one_line(a.by)}' if a.by else ''}"
            f"{f': “{one_line(a.note)}”' if a.note else ''} ({a.status.value}, {a.reason}); "
            f"{_acceptance_state(a, state, now)}" for a in records]


def acceptance_dicts(records: Sequence[Any], state: Any) -> list[dict[str, Any]]:
    """`monitor history --format json`'s `acceptances`, oldest first."""
    from monitor.types import iso_moment

    now = dt.datetime.now(dt.timezone.utc)
    return [{"accepted_at": iso_moment(a.accepted_at), "by": a.by, "note": a.note,
             "status": a.status.value, "reason": a.reason, "run": a.run_id, "until": iso_moment(a.until),
             "undone_at": iso_moment(a.undone_at) if a.undone_at else None,
             "changed_at": iso_moment(a.changed_at) if a.changed_at else None,
             # a guessed verdict's page as accepted (null for the others: their status alone counts)
             "final_url": a.final_url, "title": a.title,
             "holds": _acceptance_state(a, state, now).startswith("holds")} for a in records]


def _acceptance_state(a: Any, state: Any, now: dt.datetime) -> str:
    from monitor.accept import changed_answer, ended_at, in_force

    if state is not None and in_force(a, state.status, now):
        return f"holds until {a.until:%Y-%m-%d}"
    end = ended_at(a)
    if a.undone_at is not None and a.undone_at == end:
        return f"undone {a.undone_at:%Y-%m-%d %H:%M}"
    if a.changed_at is not None and a.changed_at == end:
        # the report's words: a guessed verdict's page can change under the same reason
        return f"ended {a.changed_at:%Y-%m-%d %H:%M}: the link answered {changed_answer(a)[1]}"
    if end <= now:
        return f"expired {a.until:%Y-%m-%d}"
    return f"not holding now (the link answers {state.status.value if state else 'nothing'}); until {a.until:%Y-%m-%d}"


def _login_name() -> str:
    """Who ran `monitor accept`, when `--by` does not say: the login name."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (a container): nobody to name
        return ""

def main() -> None:
    tolerant_streams()
    try:
        cli(prog_name="monitor")
    finally:
        # The interpreter's last collections walk every object once more to
        # free memory the system is about to take back: 0.13-0.17 s of CPU
        # after a 5,000-link check had printed its results, 0.025 s frozen.
        # Objects are still released by reference counting, the standard
        # streams and the logs flushed as usual.
        gc.freeze()
