"""`monitor demo`: the whole job offline, on the bundled simulated site.

The simulated site (site.py) imitates sclero.org, PubMed, a news wire,
publishers, journals and the Wayback Machine on loopback; a local SMTP sink
(aiosmtpd) stands in for the webmaster's mail server. The demo audits the
site as it was "last week" and as it is "this week", so the report shows what
broke this week, what is still broken and what was fixed, then mails it to
the sink and says where the report and the received message are.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from monitor.config import (
    CheckerSettings,
    DatabaseSettings,
    EmailSettings,
    PageSettings,
    ReportSettings,
    Settings,
)
from monitor.demo.site import SimulatedSite, SimulatedSiteServer
from monitor.errors import ConfigError, MonitorError
from monitor.netguard import DEMO_MARKER
from monitor.types import LinkStatus, PageRecord, pages_read_none
from monitor.wording import private_address

DEMO_TIMEOUT = 2.0
"""Short, so the simulated hanging server costs the demo seconds, not minutes."""

OUR_FILES = ("monitor.db", "monitor.db-wal", "monitor.db-shm", "reports", "mail",
             "simulated-site-ca.pem", "demo.toml", "demo-live.toml")


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, except that TOML also
    refuses a raw DEL (a path may hold anything)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_pages(settings: Settings) -> str:
    """The [[pages]] tables of the demo's configuration files."""
    return "".join(f"[[pages]]\nurl = {toml_string(p.url)}\nname = {toml_string(p.name)}\n\n"
                   for p in settings.pages)


def write_config(settings: Settings, workdir: Path) -> Path:
    """A config naming the demo's database and reports, for `history` and `report` afterwards.

    The simulated site is gone once the demo ends, so `check` with it would
    only report errors; the file says so, and refuses every connection: the
    demo's names are real sites', and an offline demo never reaches them.
    """
    pages = toml_pages(settings)
    text = (
        "# Written by `monitor demo`: use it to look at the demo's results, e.g.\n"
        "#   monitor history https://pubmed.ncbi.nlm.nih.gov/31197643/ --config monitor-demo/demo.toml\n"
        "#   monitor report --config monitor-demo/demo.toml\n"
        "# (the simulated site only runs during `monitor demo`).\n\n"
        f"{pages}[database]\npath = {toml_string(settings.database.path)}\n\n"
        f"[report]\ndir = {toml_string(settings.report.dir)}\n"
        f"site_name = {toml_string(settings.report.site_name)}\n\n"
        "# The demo never leaves this machine: these names are real sites,\n"
        "# and its mail went to a sink that stopped with it (`--send` sends nothing).\n"
        "[checker.connect_to]\n\"*\" = \"refuse\"\n\n"
        "[email]\nenabled = false\n"
    )
    path = workdir / "demo.toml"
    path.write_text(text, encoding="utf-8")
    return path


class MailSink:
    """An SMTP server on loopback that files each message it receives as .eml."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.received: list[Path] = []
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"message-{len(self.received) + 1}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        self.received.append(path)
        return "250 Message accepted for delivery"

    async def start(self) -> None:
        from aiosmtpd.smtp import SMTP

        loop = asyncio.get_running_loop()
        # aiosmtpd's Controller(port=0) is broken (DEPENDENCIES.md): serve it ourselves.
        self.server = await loop.create_server(lambda: SMTP(self), "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def demo_settings(site: SimulatedSite, workdir: Path, smtp_port: int) -> Settings:
    return Settings(
        pages=tuple(
            PageSettings(url=url, name=name, owner="")
            for url, name in zip(site.pages, ("DM/PM treatments", "Raynaud's treatments"))
        ),
        checker=CheckerSettings(
            timeout=DEMO_TIMEOUT,
            retries=1,
            backoff_base=0.1,
            retry_after_max=2.0,
            # The simulated hosts live on loopback; 192.168.x (a link on the
            # Raynaud's page) stays refused, as it would be in production.
            allow_private_networks=("127.0.0.1/32",),
            connect_to=site.connect_to,
            ca_file=str(site.ca_pem_path),
            archive_url=site.archive_url,
        ),
        database=DatabaseSettings(path=str(workdir / "monitor.db")),
        report=ReportSettings(dir=str(workdir / "reports"), site_name="www.sclero.org"),
        email=EmailSettings(
            host="127.0.0.1", port=smtp_port, security="none", username="",
            sender="monitor@sclero.org", recipients=("webmaster@sclero.org",),
        ),
        source="<demo>",
    )


@dataclass
class DemoResult:
    workdir: Path
    report_html: Path
    report_json: Path
    index_html: Path
    messages: list[Path]
    headline: str
    subject: str
    counts: dict[LinkStatus, int] = field(default_factory=dict)
    """Links by status, as the report counts them ("62 ok · 5 moved · ...")."""
    seconds: float = 0.0
    requested: int = 0
    """URLs the checker requested (what `run` and /healthz count)."""
    truth_mismatches: list[str] = field(default_factory=list)
    run_id: int = 0
    config: Path | None = None
    links: int = 0
    """Links (every place a page links from), as `check`'s last line counts them."""
    links_checked: int = 0
    """`links` less those not checked: the report's "90 links checked"."""
    private_address: int = 0
    """Of the blocked, the links to a private address: said apart, as the report does."""


MARKER = DEMO_MARKER  # also read by `check` and `run` (netguard.unmapped_watched_pages)
"""Left in the demo's directory: the proof that its monitor.db and reports are the demo's."""


def clean(workdir: Path) -> None:
    """Remove what an earlier demo left in `workdir` (only our own files).

    `monitor demo --dir .` in the directory of a real monitor would delete its
    history and saved reports: files of those names are removed only where
    an earlier demo left its marker.
    """
    found = [name for name in OUR_FILES if (workdir / name).exists()]
    # Demos older than the marker are known by their simulated site's CA *and*
    # the demo's config: the CA alone is also left by starting the simulated
    # site there by hand (docs/simulated-site.md), next to a real monitor.db.
    ours = (workdir / MARKER).exists() or all(
        (workdir / name).exists() for name in ("simulated-site-ca.pem", "demo.toml"))
    if found and not ours:
        raise ConfigError(f"{workdir} already holds {', '.join(found)}, not made by the demo; "
                          "nothing was removed. Give the demo another --dir (default: monitor-demo)")
    (workdir / MARKER).write_text("Written by `monitor demo`: it may replace the files here.\n",
                                  encoding="utf-8")
    for name in OUR_FILES:
        path = workdir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def prepare_workdir(workdir: Path) -> None:
    """Create `workdir` and clear an earlier demo's files, or refuse (ConfigError):
    called first, so that a refusal comes before anything is announced."""
    workdir.mkdir(parents=True, exist_ok=True)
    clean(workdir)


@dataclass
class Running:
    """What is still up while a `demo_session` is open: `--serve` keeps it for the service."""

    site: SimulatedSite
    sink: MailSink
    settings: Settings


def _require_loopback(pages: list[PageRecord], sink: MailSink) -> None:
    """Fail when the demo could not reach its own servers: its report
    would say "nothing was checked" and the command exit 0, which reads as
    a working product on a machine where loopback itself is broken (a
    container without `lo` up, a firewall on 127.0.0.1)."""
    if pages_read_none(pages):
        where = f" ({pages[0].url}): {pages[0].error}" if pages else ": its crawl recorded no page"
        raise MonitorError(
            f"the demo could not reach its own simulated site on loopback{where}. "
            "Is the loopback interface (127.0.0.1) up on this machine?")
    if not sink.received:
        raise MonitorError(
            f"the demo's report could not be mailed to its own mail sink on 127.0.0.1:{sink.port}; "
            "it is kept in the database's outbox. Is the loopback interface (127.0.0.1) up on this machine?")


async def run_demo(workdir: Path, progress: Any = None) -> DemoResult:
    async with demo_session(workdir, progress) as (result, _):
        return result


@contextlib.asynccontextmanager
async def demo_session(workdir: Path, progress: Any = None) -> AsyncIterator[tuple[DemoResult, Running]]:
    """The demo's two audits, with the simulated site (serving this week's
    answers) and the mail sink kept up until the block ends: `monitor demo`
    leaves at once, `monitor demo --serve` runs the service meanwhile."""
    from monitor.jobs import weekly_job
    from monitor.store import Store

    prepare_workdir(workdir)
    server = SimulatedSiteServer(workdir)
    sink = MailSink(workdir / "mail")
    site = await server.start()
    await sink.start()
    try:
        settings = demo_settings(site, workdir, sink.port)
        now = dt.datetime.now(dt.UTC)
        last_week = now - dt.timedelta(days=7)
        server.set_last_week(True)
        await weekly_job(settings, now=lambda: last_week)
        server.set_last_week(False)
        audit, report = await weekly_job(settings, progress=progress, now=lambda: dt.datetime.now(dt.UTC))
        assert audit is not None  # a fresh database has no half-done job to finish
        with Store.open(settings.database.path) as store:
            links = store.run_links(audit.run.id)
            pages = store.run_pages(audit.run.id)
        _require_loopback(pages, sink)
        mismatches = [
            f"{link.url}: got {link.status.value}/{link.reason}, expected {'/'.join(site.truth[link.url])}"
            for link in links
            if link.url in site.truth and (link.status.value, link.reason) != site.truth[link.url]
        ]
        subject = ""
        if sink.received:
            msg = message_from_bytes(sink.received[-1].read_bytes(), policy=default_policy)
            subject = str(msg["Subject"])
        result = DemoResult(
            workdir=workdir, report_html=report.html_path, report_json=report.json_path,
            index_html=report.index_path, messages=list(sink.received), headline=report.headline,
            subject=subject, counts=dict(Counter(link.status for link in links)), seconds=audit.seconds, requested=audit.urls,
            truth_mismatches=mismatches, run_id=audit.run.id,
            config=write_config(settings, workdir), links=len(links),
            links_checked=sum(link.status is not LinkStatus.SKIPPED for link in links),
            private_address=sum(map(private_address, links)),
        )
        yield result, Running(site, sink, settings)
    finally:
        await sink.stop()
        await server.stop()
