"""The report by mail: message building, and delivery through the outbox to a
real aiosmtpd server on loopback (plain, STARTTLS, implicit TLS, refusals)."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import logging
import os
import re
import socket
import sqlite3
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from monitor.config import EmailSettings, PageSettings, ReportSettings, Settings
from monitor.errors import DeliveryError
from monitor.store import Store
from monitor.types import (
    Citation,
    EntryContext,
    LinkKind,
    LinkResult,
    LinkStatus,
    Observation,
    PageRecord,
    RunInfo,
    UrlState,
    Verdict,
)
from reports.audit import Audit, ContentAudit, ContentIssue, Counts, build_audit
from monitor.classify import next_state
from reports.deliver import backoff, flush_outbox, load_audit, queue_report, report_key
from reports.mail import (
    build_message,
    build_report_message,
    clean_header,
    message_id_for,
    send_message,
    subject_for,
)
from reports.render import render_html, render_text

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
PAGE = "https://www.sclero.org/scleroderma/dm/treatments.html"
PAGE2 = "https://www.sclero.org/scleroderma/ssc/treatments.html"
PASSWORD_ENV = "MONITOR_TEST_SMTP_PASSWORD"


def link(url: str, status: str, reason: str, page: str = PAGE, **extra: Any) -> LinkResult:
    failing = status in ("expired", "error", "blocked")
    return replace(LinkResult(
        page=page, url=url, text="", section="Biological Agents", kind=LinkKind.CITATION,
        status=LinkStatus(status), reason=reason, http_status=None, final_url=None,
        suggested_url=None, strikes=4 if failing else 0,
        failing_since=NOW - dt.timedelta(days=9) if failing else None, checked_at=NOW,
        entry_title=f"Entry citing {url}", entry_source="PubMed, Clin Rheumatol, 04/30/2018."), **extra)


def known_audit(site: str = "www.sclero.org", run_id: int = 1) -> Audit:
    links = [
        link("https://www.ncbi.nlm.nih.gov/pubmed/29713762", "moved", "permanent_redirect",
             suggested_url="https://pubmed.ncbi.nlm.nih.gov/29713762/"),
        link("https://globenewswire.com/release/1542296", "expired", "http_410"),
        link("https://pubmed.ncbi.nlm.nih.gov/30194861/", "ok", "ok"),
        link("https://journal.example/ssc-article", "expired", "http_404", page=PAGE2),
    ]
    pages = [PageRecord(run_id=run_id, url=PAGE, status="ok", title="DM/PM treatments"),
             PageRecord(run_id=run_id, url=PAGE2, status="ok", title="SSc treatments",
                        owner="ssc-editor@example.org")]
    run = RunInfo(id=run_id, started_at=dt.datetime(2026, 11, 23, 6, 0, tzinfo=UTC), status="finished")
    return build_audit(run, links, pages, previous_links=None, previous_pages=None, states={},
                       now=NOW, settings=ReportSettings(), site_name=site)


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


# -- building ------------------------------------------------------------------


def test_message_structure_headers_and_both_parts() -> None:
    audit = known_audit()
    mid = message_id_for(1, "run-1:all", "monitor@example.org")
    msg = build_message(audit, render_html(audit), render_text(audit), sender="monitor@example.org",
                        recipients=["webmaster@example.org", "editor@example.org"], message_id=mid)
    back = parse(msg.as_bytes())
    assert back.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in back.iter_parts()] == ["text/plain", "text/html"]
    assert back["Subject"] == "Link audit for www.sclero.org, 2026-11-23: first report, 3 problems"
    assert back["From"] == "monitor@example.org"
    assert back["To"] == "webmaster@example.org, editor@example.org"
    assert back["Message-ID"] == mid == "<report-1-" + mid.split("-")[2].split("@")[0] + "@example.org>"
    assert email.utils.parsedate_to_datetime(back["Date"]) == NOW
    assert back["Auto-Submitted"] == "auto-generated"
    text = back.get_body(("plain",)).get_content()
    html = back.get_body(("html",)).get_content()
    for part in (text, html):
        assert "PubMed moved this article to a new address" in part
        assert "https://pubmed.ncbi.nlm.nih.gov/29713762/" in part
        assert "The publisher removed this article (HTTP 410)" in part
    assert "<table" in html and "<table" not in text


@pytest.mark.parametrize(
    ("new", "still", "fixed", "expected"),
    [
        (3, 12, 2, "3 new problems, 12 still open, 2 fixed"),
        (1, 1, 1, "1 new problem, 1 still open, 1 fixed"),
        (0, 0, 0, "no new problems, 0 still open, 0 fixed"),
    ],
)
def test_subject_counts_read_right(new: int, still: int, fixed: int, expected: str) -> None:
    audit = replace(known_audit(), counts=Counts(new=new, still=still, fixed=fixed), first_report=False)
    assert subject_for(audit) == f"Link audit for www.sclero.org, 2026-11-23: {expected}"


@pytest.mark.parametrize(("retracted", "expected"), [
    (0, "no new problems, 0 still open, 0 fixed"),
    (1, "no new problems, 0 still open, 0 fixed, 1 cited article retracted"),
    (2, "no new problems, 0 still open, 0 fixed, 2 cited articles retracted"),
])
def test_subject_names_cited_articles_that_were_retracted(retracted: int, expected: str) -> None:
    """A retraction matters more than a dead link, and many read only the subject."""
    notes = tuple(ContentIssue(kind="retracted", page=PAGE, page_title="DM/PM", entry=f"Entry {i}",
                               words="The publisher's page is titled 'RETRACTED: ...'.")
                  for i in range(retracted))
    audit = replace(known_audit(), counts=Counts(), content_audit=ContentAudit(retracted=notes),
                    first_report=False)
    assert subject_for(audit) == f"Link audit for www.sclero.org, 2026-11-23: {expected}"


@pytest.mark.parametrize(("retracted", "withdrawn", "expected"), [
    (0, 1, "no new problems, 0 still open, 0 fixed, 1 cited article withdrawn"),
    (0, 3, "no new problems, 0 still open, 0 fixed, 3 cited articles withdrawn"),
    (1, 1, "no new problems, 0 still open, 0 fixed, 1 cited article retracted, 1 withdrawn"),
    (2, 1, "no new problems, 0 still open, 0 fixed, 2 cited articles retracted, 1 withdrawn"),
])
def test_subject_names_cited_articles_that_were_withdrawn(retracted: int, withdrawn: int,
                                                          expected: str) -> None:
    """A withdrawn Cochrane review is counted as a retraction is, after it."""
    def notes(kind: str, n: int) -> tuple[ContentIssue, ...]:
        return tuple(ContentIssue(kind=kind, page=PAGE, page_title="DM/PM", entry=f"{kind} {i}",
                                  words=f"The page is titled '{kind.upper()}: ...'.") for i in range(n))

    content = ContentAudit(retracted=notes("retracted", retracted), withdrawn=notes("withdrawn", withdrawn))
    audit = replace(known_audit(), counts=Counts(), content_audit=content, first_report=False)
    assert subject_for(audit) == f"Link audit for www.sclero.org, 2026-11-23: {expected}"


@pytest.mark.parametrize(("links", "retracted", "expected"), [
    (3, 1, "first report, 3 problems, 1 cited article retracted"),
    (1, 0, "first report, 1 problem"),
    (0, 0, "first report, no problems"),
])
def test_the_first_reports_subject_says_so_not_zero_still_open_and_fixed(
        links: int, retracted: int, expected: str) -> None:
    """Walkthrough 10 #10: the first report's subject read "19 new problems,
    0 still open, 0 fixed, 1 cited article retracted" where nothing was
    compared; its text, "Fixed since last report: 0" with no last report."""
    notes = tuple(ContentIssue(kind="retracted", page=PAGE, page_title="DM/PM", entry=f"Entry {i}",
                               words="The publisher's page is titled 'RETRACTED: ...'.")
                  for i in range(retracted))
    audit = known_audit()
    dead = [l for l in audit.links if l.status.value != "ok"][:links]
    audit = build_audit(audit.run, [*dead, *(l for l in audit.links if l.status.value == "ok")],
                        list(audit.pages), previous_links=None, previous_pages=None, states={}, now=NOW,
                        settings=ReportSettings(), site_name="www.sclero.org")
    audit = replace(audit, content_audit=ContentAudit(retracted=notes))
    assert audit.first_report and subject_for(audit) == f"Link audit for www.sclero.org, 2026-11-23: {expected}"
    text, html = render_text(audit), render_html(audit)
    for said in (text, html):
        assert "still open" not in said and "Fixed since last report" not in said
        assert "first report" in said
    compared = build_audit(audit.run, list(audit.links), list(audit.pages), previous_links=[],
                           previous_pages=[], states={}, now=NOW, settings=ReportSettings(),
                           site_name="www.sclero.org")
    assert not compared.first_report and "0 still open, 0 fixed" in subject_for(compared)
    assert "Fixed since last report: 0" in render_text(compared)


def test_owner_subject_says_it_is_their_part() -> None:
    audit = replace(known_audit(), audience="ssc-editor@example.org")
    assert subject_for(audit).startswith("Link audit for www.sclero.org (your pages), 2026-11-23:")


def test_crlf_in_a_page_title_cannot_inject_headers() -> None:
    evil = "www.sclero.org\r\nBcc: victim@example.org\r\n\r\n<script>x</script>"
    audit = known_audit(site=evil)
    msg = build_message(audit, render_html(audit), render_text(audit), sender="m@example.org",
                        recipients=["w@example.org"], message_id="<report-7-x@example.org>")
    raw = msg.as_bytes()
    back = parse(raw)
    assert back["Bcc"] is None and b"\r\nBcc:" not in raw
    assert "\n" not in back["Subject"] and "\r" not in back["Subject"]
    assert back["Subject"].startswith("Link audit for www.sclero.org Bcc: victim@example.org <script>")
    assert "&lt;script&gt;" in back.get_body(("html",)).get_content()


def test_the_policy_refuses_a_raw_line_break_anyway() -> None:
    msg = build_message(known_audit(), "<p>x</p>", "x", sender="m@example.org",
                        recipients=["w@example.org"], message_id="<a@b>")
    with pytest.raises(ValueError):
        msg["X-Test"] = "a\r\nBcc: victim@example.org"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("plain", "plain"), ("a\r\nb", "a b"), ("a\nb\rc", "a b c"), ("a\u2028b\x85c", "a b c"),
     ("  tabs\tand  spaces ", "tabs and spaces"), ("x" * 300, "x" * 199 + "\u2026")],
)
def test_clean_header(value: str, expected: str) -> None:
    assert clean_header(value) == expected


def test_message_id_is_stable_per_report_and_audience() -> None:
    a = message_id_for(7, "run-7:all", "monitor@example.org")
    assert a == message_id_for(7, "run-7:all", "monitor@example.org")
    assert a != message_id_for(7, "run-7:owner:x@example.org", "monitor@example.org")
    assert a != message_id_for(8, "run-7:all", "monitor@example.org")
    assert message_id_for(7, "all", "evil@exa\r\nmple>").endswith("@localhost>")
    one, other = "0123abcd" + "0" * 24, "fedc9876" + "0" * 24
    assert message_id_for(7, "run-7:all", "m@example.org", one).startswith("<report-0123abcd-7-")
    assert message_id_for(7, "run-7:all", "m@example.org", one) != \
        message_id_for(7, "run-7:all", "m@example.org", other)
    assert message_id_for(7, "run-7:all", "m@example.org", one) == \
        message_id_for(7, "run-7:all", "m@example.org", one)


# -- a real SMTP server --------------------------------------------------------


@dataclass
class Sink:
    """An aiosmtpd handler that keeps what it receives and refuses on demand."""

    messages: list[Envelope] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    tried: list[str] = field(default_factory=list)
    """Every RCPT TO address asked for, refused or not."""

    async def handle_RCPT(self, server: SMTPServer, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        self.tried.append(address)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        self.sessions.append(session)
        return "250 Message accepted"

    def received_by(self, address: str) -> int:
        return sum(address in e.rcpt_tos for e in self.messages)


@dataclass
class Server:
    sink: Sink
    port: int
    server: asyncio.AbstractServer

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


ServerFactory = Callable[..., Any]


@pytest.fixture
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting the test CA)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


@pytest.fixture
async def smtp_server() -> AsyncIterator[ServerFactory]:
    """Start aiosmtpd servers in the test's loop (Controller(port=0) is broken)."""
    started: list[Server] = []

    async def start(sink: Sink | None = None, *, port: int = 0, implicit_tls: ssl.SSLContext | None = None,
                    **smtp_options: Any) -> Server:
        sink = sink or Sink()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTPServer(sink, **smtp_options), "127.0.0.1", port,
                                          ssl=implicit_tls)
        bound = server.sockets[0].getsockname()[1]
        started.append(Server(sink, bound, server))
        return started[-1]

    yield start
    for s in started:
        await s.close()


def authenticator(password: str) -> Callable[..., AuthResult]:
    def check(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str,
              auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"monitor"
              and auth_data.password == password.encode())
        return AuthResult(success=ok, handled=False)
    return check


def email_settings(port: int, **overrides: Any) -> EmailSettings:
    base = EmailSettings(host="127.0.0.1", port=port, security="none", username="",
                         password_env=PASSWORD_ENV, sender="monitor@example.org",
                         recipients=("webmaster@example.org",), timeout=2.0)
    return replace(base, **overrides)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real SQLite store holding run 1, the run `known_audit()` reports on."""
    s = Store.open(tmp_path / "monitor.db")
    assert s.start_run(NOW - dt.timedelta(minutes=30)).id == 1
    yield s
    s.close()


def settings_for(email_: EmailSettings) -> Settings:
    return Settings(pages=(PageSettings(url=PAGE), PageSettings(url=PAGE2)), email=email_)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_report_arrives_through_the_outbox(store: Store, smtp_server: ServerFactory) -> None:
    server = await smtp_server()
    settings = settings_for(email_settings(server.port))
    audit = known_audit()
    queued = queue_report(store, audit, settings, NOW)
    assert [m.key for m in queued] == ["run-1:all", "run-1:owner:ssc-editor@example.org"]
    result = await flush_outbox(store, settings.email, None, NOW)
    assert result.ok and sorted(result.sent) == sorted(m.key for m in queued)

    assert server.sink.received_by("webmaster@example.org") == 1
    whole = next(e for e in server.sink.messages if e.rcpt_tos == ["webmaster@example.org"])
    assert whole.mail_from == "monitor@example.org"
    msg = parse(whole.content)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "Link audit for www.sclero.org, 2026-11-23: first report, 3 problems"
    assert msg["Message-ID"] == message_id_for(1, "run-1:all", "monitor@example.org", store.database_id)
    html = msg.get_body(("html",)).get_content()
    assert "globenewswire.com/release/1542296" in html and "journal.example/ssc-article" in html

    # the page owner gets only the part about their page
    part = parse(next(e for e in server.sink.messages
                      if e.rcpt_tos == ["ssc-editor@example.org"]).content)
    assert part["Subject"].startswith("Link audit for www.sclero.org (your pages), 2026-11-23: first report, 1 problem")
    owner_html = part.get_body(("html",)).get_content()
    assert "journal.example/ssc-article" in owner_html and "globenewswire" not in owner_html
    assert store.get_message("run-1:all").sent_at == NOW  # type: ignore[union-attr]


@dataclass
class SlowSink(Sink):
    """Takes its time before answering DATA: a stop can land mid-send."""

    in_data: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.in_data.set()
        await asyncio.sleep(0.3)
        return await super().handle_DATA(server, session, envelope)


async def flush_caught_mid_send(store: Store, smtp_server: ServerFactory
                                ) -> tuple[SlowSink, Any, asyncio.Task[Any]]:
    """A report queued and a flush under way, stopped while the server holds the message."""
    sink = SlowSink()
    server = await smtp_server(sink)
    settings = settings_for(email_settings(server.port))
    queue_report(store, known_audit(), settings, NOW, owners={})
    flushing = asyncio.create_task(flush_outbox(store, settings.email, None, NOW))
    await sink.in_data.wait()
    return sink, settings, flushing


async def test_a_stop_during_sending_marks_the_delivered_message_sent(
        store: Store, smtp_server: ServerFactory) -> None:
    sink, settings, flushing = await flush_caught_mid_send(store, smtp_server)
    flushing.cancel()  # SIGTERM while the server holds the message
    with pytest.raises(asyncio.CancelledError):
        await flushing
    assert len(sink.messages) == 1
    assert store.get_message("run-1:all").sent_at == NOW  # type: ignore[union-attr]
    # The shutdown's last flush finds nothing due: never sent twice.
    result = await flush_outbox(store, settings.email, None, NOW)
    assert result.sent == () and len(sink.messages) == 1


async def test_a_flush_on_a_clock_in_the_past_still_holds_its_lock(
        store: Store, smtp_server: ServerFactory) -> None:
    """The demo (and tests) flush "last week"; the lock's expiry is wall-clock
    time, or another process would find it stale at once and send the same
    messages a second time."""
    _, _, flushing = await flush_caught_mid_send(store, smtp_server)
    with Store.open(store.path) as other:
        taken = other.acquire_lock("outbox", "otherhost:1", dt.datetime.now(UTC), dt.timedelta(minutes=10))
    assert (await flushing).sent == ("run-1:all",)
    assert not taken


def queue_raw(store: Store, n: int) -> list[str]:
    """n small messages due now, as several page owners' parts would be."""
    keys = [f"run-1:owner:editor{i}@example.org" for i in range(n)]
    for i, key in enumerate(keys):
        store.enqueue_message(key, 1, [f"editor{i}@example.org"],
                              b"Subject: part\r\n\r\nbody\r\n", f"<{i}@m>", NOW)
    return keys


async def test_a_flush_longer_than_the_lock_ttl_keeps_its_lock(
        store: Store, smtp_server: ServerFactory) -> None:
    """Six messages at 0.3 s each outlast a 1 s lock: renewed before each
    message, it is never free for another process, so nothing goes twice."""
    sink = SlowSink()
    server = await smtp_server(sink)
    settings = settings_for(email_settings(server.port))
    keys = queue_raw(store, 6)
    ttl = dt.timedelta(seconds=1)
    flushing = asyncio.create_task(flush_outbox(store, settings.email, None, NOW, lock_ttl=ttl))
    await sink.in_data.wait()  # the flush holds the lock
    taken = []
    with Store.open(store.path) as other:
        while not flushing.done():
            if other.acquire_lock("outbox", "otherhost:1", dt.datetime.now(UTC), ttl):
                taken.append(dt.datetime.now(UTC))
                other.release_lock("outbox", "otherhost:1")
            await asyncio.sleep(0.05)
    assert (await flushing).sent == tuple(keys)
    assert taken == []
    assert len(sink.messages) == 6


async def test_a_flush_whose_lock_was_taken_over_stops_before_the_next_message(
        store: Store, smtp_server: ServerFactory) -> None:
    """Frozen past its ttl, a flush finds another owner in the lock: it ends
    the message on the wire and leaves the rest due, for the new holder."""
    sink = SlowSink()
    server = await smtp_server(sink)
    settings = settings_for(email_settings(server.port))
    keys = queue_raw(store, 3)
    flushing = asyncio.create_task(flush_outbox(store, settings.email, None, NOW))
    await sink.in_data.wait()
    with sqlite3.connect(store.path) as other:  # what a takeover of a stale lock leaves
        other.execute("UPDATE locks SET owner = 'otherhost:1' WHERE name = 'outbox'")
    result = await flushing
    assert result.sent == (keys[0],)
    assert [m.key for m in store.due_messages(NOW)] == keys[1:]
    assert len(sink.messages) == 1
    with Store.open(store.path) as other:  # the new holder's lock is left alone
        assert not other.acquire_lock("outbox", "thirdhost:1", dt.datetime.now(UTC), dt.timedelta(minutes=10))


async def test_queued_once_and_never_sent_twice(store: Store, smtp_server: ServerFactory) -> None:
    server = await smtp_server()
    settings = settings_for(email_settings(server.port))
    assert len(queue_report(store, known_audit(), settings, NOW, owners={})) == 1
    assert queue_report(store, known_audit(), settings, NOW, owners={}) == []
    await flush_outbox(store, settings.email, None, NOW)
    await flush_outbox(store, settings.email, None, NOW + dt.timedelta(hours=1))
    assert len(server.sink.messages) == 1
    # `monitor report --send`: on purpose, once more, same Message-ID
    (again,) = queue_report(store, known_audit(), settings, NOW, owners={}, resend=True)
    assert again.sent_at is None
    await flush_outbox(store, settings.email, None, NOW + dt.timedelta(hours=2))
    assert len(server.sink.messages) == 2
    ids = {parse(e.content)["Message-ID"] for e in server.sink.messages}
    assert len(ids) == 1


async def test_starttls_and_login_with_the_password_from_the_environment(
        store: Store, smtp_server: ServerFactory, tls: tuple[ssl.SSLContext, ssl.SSLContext],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server_ctx, client_ctx = tls
    monkeypatch.setenv(PASSWORD_ENV, "correct horse")
    server = await smtp_server(tls_context=server_ctx, require_starttls=True, auth_required=True,
                               authenticator=authenticator("correct horse"))
    settings = settings_for(email_settings(server.port, security="starttls", username="monitor"))
    queue_report(store, known_audit(), settings, NOW, owners={})
    password = os.environ[settings.email.password_env]
    result = await flush_outbox(store, settings.email, password, NOW, tls_context=client_ctx)
    assert result.sent == ("run-1:all",)
    (session,) = server.sink.sessions
    assert session.authenticated and session.ssl is not None


async def test_implicit_tls(store: Store, smtp_server: ServerFactory,
                            tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls
    server = await smtp_server(implicit_tls=server_ctx, auth_require_tls=False,
                               authenticator=authenticator("pw"))
    settings = email_settings(server.port, security="tls", username="monitor")
    msg = build_message(known_audit(), "<p>hi</p>", "hi", sender=settings.sender,
                        recipients=["w@example.org"], message_id="<t@example.org>")
    assert await send_message(msg.as_bytes(), ["w@example.org"], settings, "pw",
                              tls_context=client_ctx) == {}
    assert len(server.sink.messages) == 1


async def test_untrusted_certificate_is_a_clear_error(
        smtp_server: ServerFactory, tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server = await smtp_server(tls_context=tls[0], require_starttls=True)
    settings = email_settings(server.port, security="starttls")
    with pytest.raises(DeliveryError, match="TLS|certificate"):
        await send_message(b"Subject: x\r\n\r\nx\r\n", ["w@example.org"], settings, None)


async def test_server_down_then_up_delivers_exactly_once(
        store: Store, smtp_server: ServerFactory, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens here yet
    settings = settings_for(email_settings(port))
    queue_report(store, known_audit(), settings, NOW, owners={})

    with caplog.at_level(logging.WARNING, logger="reports.deliver"):
        first = await flush_outbox(store, settings.email, None, NOW)
    assert first.sent == () and [k for k, _ in first.failed] == ["run-1:all"]
    kept = store.get_message("run-1:all")
    assert kept is not None and kept.attempts == 1 and kept.sent_at is None
    assert kept.next_attempt_at == NOW + backoff(1)
    assert "cannot reach the mail server 127.0.0.1:" in kept.last_error
    assert "not delivered (attempt 1)" in caplog.text

    # too early: the backoff is respected, nothing is tried
    early = await flush_outbox(store, settings.email, None, NOW + dt.timedelta(seconds=30))
    assert early.sent == () and early.failed == ()

    server = await smtp_server(port=port)
    later = NOW + dt.timedelta(minutes=2)
    assert (await flush_outbox(store, settings.email, None, later)).sent == ("run-1:all",)
    assert (await flush_outbox(store, settings.email, None, later + dt.timedelta(hours=3))).sent == ()
    assert len(server.sink.messages) == 1


async def test_login_refused_keeps_the_message_with_a_clear_log_line(
        store: Store, smtp_server: ServerFactory, tls: tuple[ssl.SSLContext, ssl.SSLContext],
        caplog: pytest.LogCaptureFixture) -> None:
    server_ctx, client_ctx = tls
    server = await smtp_server(tls_context=server_ctx, require_starttls=True, auth_required=True,
                               authenticator=authenticator("the real one"))
    settings = settings_for(email_settings(server.port, security="starttls", username="monitor"))
    queue_report(store, known_audit(), settings, NOW)  # whole report + the owner's part

    with caplog.at_level(logging.WARNING, logger="reports.deliver"):
        result = await flush_outbox(store, settings.email, "a wrong one", NOW, tls_context=client_ctx)

    assert result.sent == () and len(result.failed) == 2
    for key in ("run-1:all", "run-1:owner:ssc-editor@example.org"):
        kept = store.get_message(key)
        assert kept is not None and kept.attempts == 1 and kept.sent_at is None
        assert kept.next_attempt_at is not None and kept.next_attempt_at > NOW
        assert "refused the login for user 'monitor'" in kept.last_error
    lines = [r for r in caplog.records if r.name == "reports.deliver" and r.levelno == logging.WARNING]
    assert lines and "refused the login" in lines[0].getMessage()
    assert "\n" not in lines[0].getMessage()
    assert server.sink.messages == []


async def test_missing_password_is_named(store: Store) -> None:
    settings = email_settings(free_port(), username="monitor")
    with pytest.raises(DeliveryError, match=PASSWORD_ENV):
        await send_message(b"x", ["w@example.org"], settings, None)


async def test_a_silent_server_times_out(smtp_server: ServerFactory) -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    try:
        settings = email_settings(server.sockets[0].getsockname()[1], timeout=0.3)
        with pytest.raises(DeliveryError, match="timeout|no answer"):
            await send_message(b"x", ["w@example.org"], settings, None)
    finally:
        server.close()


async def test_starttls_not_offered_is_explained(smtp_server: ServerFactory) -> None:
    server = await smtp_server()
    settings = email_settings(server.port, security="starttls")
    with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        await send_message(b"Subject: x\r\n\r\nx\r\n", ["w@example.org"], settings, None)


async def test_a_stripped_starttls_never_gets_the_password_in_clear(smtp_server: ServerFactory,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A server (or someone in the path) that drops STARTTLS from its EHLO
    and offers AUTH in clear: with security = "starttls" the login is not
    attempted, so the password never crosses the wire unencrypted."""
    secret = "pw-in-clear-9d2c"
    tried: list[str] = []

    def record(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str,
               auth_data: Any) -> AuthResult:
        tried.append(mechanism)
        return AuthResult(success=True, handled=False)

    server = await smtp_server(authenticator=record, auth_require_tls=False)
    settings = email_settings(server.port, security="starttls", username="monitor")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DeliveryError, match="does not offer STARTTLS") as refused:
        await send_message(b"Subject: x\r\n\r\nx\r\n", ["w@example.org"], settings, secret)
    assert tried == [] and server.sink.messages == []
    assert secret not in str(refused.value) and secret not in caplog.text


async def test_every_recipient_put_off_is_kept(store: Store, smtp_server: ServerFactory) -> None:
    server = await smtp_server(Sink(refuse={"webmaster@example.org": "450 4.2.1 Mailbox busy"}))
    settings = settings_for(email_settings(server.port))
    queue_report(store, known_audit(), settings, NOW, owners={})
    result = await flush_outbox(store, settings.email, None, NOW)
    ((key, reason),) = result.failed
    assert "refused every recipient: webmaster@example.org (450" in reason and not result.rejected
    assert store.get_message(key).attempts == 1  # type: ignore[union-attr]
    assert store.outbox_size() == 1 and store.mail_states([1]) == {1: (0, 1, 0)}


async def test_every_recipient_refused_for_good_is_not_retried(store: Store,
                                                               smtp_server: ServerFactory) -> None:
    """A 550 for the only recipient: the next attempt gets the same answer.
    It was kept with the backoff and tried again at every flush, week after
    week (walkthrough 9b #6)."""
    sink = Sink(refuse={"webmaster@example.org": "550 5.1.1 No such user"})
    server = await smtp_server(sink)
    settings = settings_for(email_settings(server.port))
    queue_report(store, known_audit(), settings, NOW, owners={})
    result = await flush_outbox(store, settings.email, None, NOW)
    ((key, reason),) = result.rejected
    assert key == "run-1:all" and not result.failed and not result.ok
    assert "refused every recipient: webmaster@example.org (550" in reason
    kept = store.get_message(key)
    assert kept is not None and kept.sent_at is None and kept.next_attempt_at is None
    assert store.outbox_size() == 0 and store.mail_states([1]) == {1: (0, 0, 1)}
    tried = len(sink.tried)
    later = await flush_outbox(store, settings.email, None, NOW + dt.timedelta(days=7))
    assert later == type(later)() and len(sink.tried) == tried  # not even a connection's RCPT


async def test_some_recipients_refused(store: Store, smtp_server: ServerFactory,
                                       caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink(refuse={"typo@example.org": "550 5.1.1 No such user",
                        "busy@example.org": "450 4.2.1 Mailbox busy, try later"})
    server = await smtp_server(sink)
    settings = settings_for(email_settings(
        server.port, recipients=("webmaster@example.org", "typo@example.org", "busy@example.org")))
    queue_report(store, known_audit(), settings, NOW, owners={})
    with caplog.at_level(logging.WARNING, logger="reports.deliver"):
        result = await flush_outbox(store, settings.email, None, NOW)
    # accepted for one: sent (never again to them); the busy one gets a follow-up copy
    assert result.sent == ("run-1:all",)
    assert {(a, r[:3]) for _, a, r in result.refused} == {("typo@example.org", "550"),
                                                          ("busy@example.org", "450")}
    assert "typo@example.org" in caplog.text and "Check the address" in caplog.text
    assert store.get_message("run-1:all:retry:typo@example.org") is None

    sink.refuse.clear()
    retry = await flush_outbox(store, settings.email, None, NOW + dt.timedelta(minutes=1))
    assert retry.sent == ("run-1:all:retry:busy@example.org",)
    assert (sink.received_by("webmaster@example.org"), sink.received_by("busy@example.org"),
            sink.received_by("typo@example.org")) == (1, 1, 0)
    assert parse(sink.messages[1].content)["Message-ID"] == parse(sink.messages[0].content)["Message-ID"]


async def test_report_send_after_a_refusal_sends_only_what_did_not_go_out(
        store: Store, smtp_server: ServerFactory) -> None:
    """The owner's part delivered, the webmaster's refused for good: `report
    --send` re-armed both, and the editor got their part twice (walkthrough
    9b #6). It sends only what did not go out, to the address as corrected
    since, with the Message-ID it had; once all went out, all of it again."""
    sink = Sink(refuse={"webmaster@example.org": "550 5.1.1 No such user"})
    server = await smtp_server(sink)
    settings = settings_for(email_settings(server.port))
    queued = queue_report(store, known_audit(), settings, NOW)
    assert [m.key for m in queued] == ["run-1:all", "run-1:owner:ssc-editor@example.org"]
    first = await flush_outbox(store, settings.email, None, NOW)
    assert first.sent == ("run-1:owner:ssc-editor@example.org",) and len(first.rejected) == 1
    assert store.mail_states([1]) == {1: (1, 0, 1)}

    # Asked again, address unchanged: only the refused message is tried (and refused again).
    again = queue_report(store, known_audit(), settings, NOW, resend=True)
    assert [m.key for m in again] == ["run-1:all"]
    second = await flush_outbox(store, settings.email, None, NOW + dt.timedelta(minutes=1))
    assert second.sent == () and len(second.rejected) == 1
    assert sink.received_by("ssc-editor@example.org") == 1

    # The address corrected in the configuration: the same report, rebuilt for it.
    fixed = settings_for(email_settings(server.port, recipients=("webmaster2@example.org",)))
    (rearmed,) = queue_report(store, known_audit(), fixed, NOW, resend=True)
    assert rearmed.key == "run-1:all" and rearmed.recipients == ("webmaster2@example.org",)
    third = await flush_outbox(store, fixed.email, None, NOW + dt.timedelta(minutes=2))
    assert third.sent == ("run-1:all",) and third.ok
    assert (sink.received_by("ssc-editor@example.org"), sink.received_by("webmaster2@example.org")) == (1, 1)
    whole = parse(next(e for e in sink.messages if e.rcpt_tos == ["webmaster2@example.org"]).content)
    assert whole["To"] == "webmaster2@example.org"
    assert whole["Message-ID"] == message_id_for(1, "run-1:all", "monitor@example.org", store.database_id)
    assert store.mail_states([1]) == {1: (2, 0, 0)}

    # Everything went out: `report --send` is a resend on purpose, of all of it.
    everything = queue_report(store, known_audit(), fixed, NOW, resend=True)
    assert sorted(m.key for m in everything) == ["run-1:all", "run-1:owner:ssc-editor@example.org"]
    await flush_outbox(store, fixed.email, None, NOW + dt.timedelta(minutes=3))
    assert (sink.received_by("ssc-editor@example.org"), sink.received_by("webmaster2@example.org")) == (2, 2)


async def test_a_put_off_recipients_copy_is_all_that_report_send_sends(
        store: Store, smtp_server: ServerFactory) -> None:
    """One recipient busy (4xx) while the other got it: the follow-up copy is
    what is left; `report --send` sends it now, not the whole message again."""
    sink = Sink(refuse={"busy@example.org": "450 4.2.1 Mailbox busy"})
    server = await smtp_server(sink)
    settings = settings_for(email_settings(server.port,
                                           recipients=("webmaster@example.org", "busy@example.org")))
    queue_report(store, known_audit(), settings, NOW, owners={})
    await flush_outbox(store, settings.email, None, NOW)
    assert store.mail_states([1]) == {1: (1, 1, 0)}
    sink.refuse.clear()
    again = queue_report(store, known_audit(), settings, NOW, owners={}, resend=True)
    assert [m.key for m in again] == ["run-1:all:retry:busy@example.org"]
    result = await flush_outbox(store, settings.email, None, NOW)  # due now, not in a minute
    assert result.sent == ("run-1:all:retry:busy@example.org",)
    assert (sink.received_by("webmaster@example.org"), sink.received_by("busy@example.org")) == (1, 1)


async def test_two_databases_never_send_the_same_message_id(tmp_path: Path,
                                                            smtp_server: ServerFactory) -> None:
    """Run 1 of two databases (a second site, a database started over), the
    same recipients: the ids were equal, "<report-1-bfe8ec4d2781@...>", and a
    mail service may drop the second as a duplicate (walkthrough 9b #1)."""
    server = await smtp_server()
    settings = settings_for(email_settings(server.port))
    ids = []
    for name in ("a.db", "b.db"):
        with Store.open(tmp_path / name) as s:
            assert s.start_run(NOW - dt.timedelta(minutes=30)).id == 1
            (queued,) = queue_report(s, known_audit(), settings, NOW, owners={})
            assert queued.message_id.startswith(f"<report-{s.database_id[:8]}-1-")
            assert (await flush_outbox(s, settings.email, None, NOW)).ok
            # Stable for one message: a resend carries the same id.
            (again,) = queue_report(s, known_audit(), settings, NOW, owners={}, resend=True)
            assert again.message_id == queued.message_id
            ids.append(queued.message_id)
    received = [parse(e.content)["Message-ID"] for e in server.sink.messages]
    assert received == ids and ids[0] != ids[1]


async def test_a_flush_in_progress_elsewhere_is_left_alone(store: Store) -> None:
    assert store.acquire_lock("outbox", "otherhost:1", dt.datetime.now(UTC), dt.timedelta(minutes=10))
    result = await flush_outbox(store, email_settings(free_port()), None, NOW)
    assert result.busy and not result.ok


def test_email_disabled_queues_nothing(store: Store) -> None:
    settings = settings_for(email_settings(25, enabled=False))
    assert queue_report(store, known_audit(), settings, NOW) == []
    assert store.get_message(report_key(1)) is None


@pytest.mark.parametrize(("attempts", "minutes"), [(1, 1), (2, 5), (3, 30), (4, 120), (9, 120)])
def test_backoff_schedule(attempts: int, minutes: int) -> None:
    assert backoff(attempts) == dt.timedelta(minutes=minutes)


# -- from the store ------------------------------------------------------------


def record_run(store: Store, when: dt.datetime, links: dict[str, tuple[str, str, str]],
               states_from: Store | None = None) -> RunInfo:
    """A finished run of PAGE: entry title -> (url, status, reason), one observation each.
    With `states_from`, each URL's state moves on from its stored one as the
    checker moves it (`classify.next_state`), not a made-up one."""
    run = store.start_run(when)
    store.record_page(PageRecord(run_id=run.id, url=PAGE, status="ok", title="DM/PM",
                                 entries=tuple(links)), when)
    store.record_citations(run.id, PAGE, [
        Citation(page_url=PAGE, url=url, raw_href=url, anchor_text=title, section="Biologics",
                 kind=LinkKind.CITATION, context=EntryContext(title=title, source="PubMed."))
        for title, (url, _, _) in links.items()])
    failing = ("expired", "error", "blocked")
    observed = []
    for url, status, reason in links.values():
        obs = Observation(url=url, checked_at=when, http_status=200)
        verdict = Verdict(url=url, status=LinkStatus(status), reason=reason)
        state = (next_state(states_from.url_state(url), verdict, obs) if states_from is not None else
                 UrlState(url=url, status=LinkStatus(status), reason=reason,
                          strikes=3 if status in failing else 0,
                          failing_since=when - dt.timedelta(days=9) if status in failing else None,
                          last_checked_at=when, first_seen_at=when))
        observed.append((obs, verdict, state))
    store.record_observations(run.id, observed)
    store.finish_run(run.id, when)
    return run


def test_load_audit_reads_only_what_the_audit_needs_and_gets_the_same_audit(tmp_path: Path) -> None:
    week = dt.timedelta(days=7)
    with Store.open(tmp_path / "monitor.db") as store:
        first = record_run(store, NOW - week, {
            "Still gone": ("https://a.org/gone", "expired", "http_404"),
            "Back again": ("https://b.org/back", "error", "http_503"),
            "Relinked": ("https://c.org/old", "moved", "permanent_redirect"),
            "Fine": ("https://d.org/fine", "ok", "ok"),
            "Walled": ("https://e.org/wall", "blocked", "http_403"),
        })
        store.mark_reported(first.id, NOW - week)
        second = record_run(store, NOW, {
            "Still gone": ("https://a.org/gone", "expired", "http_404"),
            "Back again": ("https://b.org/back", "ok", "ok"),
            "Relinked": ("https://c.org/new", "ok", "ok"),
            "Fine": ("https://d.org/fine", "drifted", "title_mismatch"),
            "Walled": ("https://e.org/wall", "blocked", "http_403"),
        })
        settings = Settings(pages=(PageSettings(url=PAGE),))
        audit = load_audit(store, second.id, settings, NOW)
        links = store.run_links(second.id)
        everything = build_audit(
            store.get_run(second.id), links, store.run_pages(second.id),  # type: ignore[arg-type]
            previous_links=store.run_links(first.id), previous_pages=store.run_pages(first.id),
            states=store.url_states(l.url for l in links), now=NOW, settings=settings.report,
            site_name="www.sclero.org", previous_run=store.get_run(first.id))
    assert audit == everything
    c = audit.counts
    assert (c.new, c.still, c.fixed) == (1, 2, 2)
    assert sorted((f.how, f.link.url) for f in audit.fixed_since_last) == [
        ("link_updated", "https://c.org/old"), ("works_again", "https://b.org/back")]



def record_failed_run(store: Store, when: dt.datetime) -> RunInfo:
    """A finished run in which PAGE could not be fetched: no links, no observations."""
    run = store.start_run(when)
    store.record_page(PageRecord(run_id=run.id, url=PAGE, status="error", http_status=503,
                                 error="HTTP 503"), when)
    store.finish_run(run.id, when)
    return run


WEEK1_PROBLEMS = {
    "Still gone": ("https://a.org/gone", "expired", "http_404"),
    "Walled": ("https://e.org/wall", "blocked", "http_403"),
    "Fixed meanwhile": ("https://c.org/old", "expired", "http_404"),
    "Fine": ("https://d.org/fine", "ok", "ok"),
}


def test_a_page_that_could_not_be_fetched_keeps_its_problems_until_it_is_read_again(
        tmp_path: Path) -> None:
    """Week 1 reads the page (3 problems), week 2 cannot fetch it (its report
    lists the 3 as still open, unchecked), week 3 cannot either, week 4 reads
    it again with one fixed. Compared with the run of the previous report
    alone, week 3 listed none of them and week 4 called the two left "new"
    and the fixed one nothing."""
    week = dt.timedelta(days=7)
    settings = Settings(pages=(PageSettings(url=PAGE),))

    def counts(store: Store, run: RunInfo, when: dt.datetime) -> tuple[int, int, int, int]:
        audit = load_audit(store, run.id, settings, when)
        store.mark_reported(run.id, when)
        c = audit.counts
        return c.new, c.still, c.fixed, len(audit.fixed_since_last)

    with Store.open(tmp_path / "monitor.db") as store:
        t1, t2, t3, t4 = (NOW + i * week for i in range(4))
        assert counts(store, record_run(store, t1, WEEK1_PROBLEMS), t1) == (3, 0, 0, 0)
        assert counts(store, record_failed_run(store, t2), t2) == (0, 3, 0, 0)
        week3 = record_failed_run(store, t3)
        audit3 = load_audit(store, week3.id, settings, t3)
        assert sorted(p.link.url for g in audit3.needs_fixing for p in g.problems) == [
            "https://a.org/gone", "https://c.org/old"]
        assert counts(store, week3, t3) == (0, 3, 0, 0)
        week4 = record_run(store, t4, {**WEEK1_PROBLEMS,
                                        "Fixed meanwhile": ("https://c.org/new", "ok", "ok")})
        audit4 = load_audit(store, week4.id, settings, t4)
        assert [(f.how, f.link.url) for f in audit4.fixed_since_last] == [
            ("link_updated", "https://c.org/old")]
        assert counts(store, week4, t4) == (0, 2, 1, 1)


def test_a_moved_link_left_unfixed_ages_week_after_week(tmp_path: Path) -> None:
    """A 301 never "fails", so no failing-since dates it: it was "open 1
    week, since <last week>" every week from the third on. Its history
    dates it: since the first week it answered 301, and an interruption
    (it worked for a week) starts the count again."""
    week = dt.timedelta(days=7)
    settings = Settings(pages=(PageSettings(url=PAGE),))
    moved = {"Relinked": ("https://c.org/old", "moved", "permanent_redirect")}
    with Store.open(tmp_path / "monitor.db") as store:
        ages = []
        for n, links in enumerate([moved, moved, moved, moved,
                                   {"Relinked": ("https://c.org/old", "ok", "ok")}, moved, moved]):
            when = NOW + n * week
            run = record_run(store, when, links, states_from=store)
            audit = load_audit(store, run.id, settings, when)
            store.mark_reported(run.id, when)
            rows = [p for g in audit.needs_fixing for p in g.problems]
            ages.append((rows[0].since, rows[0].weeks_open) if rows else None)
        assert ages == [(NOW, 0), (NOW, 1), (NOW, 2), (NOW, 3), None,
                        (NOW + 5 * week, 0), (NOW + 5 * week, 1)]
        # rendered again as sent, week 3 still says what it said
        again = load_audit(store, 3, settings, NOW + 9 * week)
        assert [(p.since, p.weeks_open) for g in again.needs_fixing for p in g.problems] == [(NOW, 2)]


def test_a_moved_link_on_a_page_that_could_not_be_fetched_keeps_its_age(tmp_path: Path) -> None:
    """Weeks 0-2 read the page (a 301 every week), week 3 cannot fetch it:
    the carried row said "open since <week 1>" (its age came from the rows
    of two reports), where the expired rows beside it kept theirs."""
    week = dt.timedelta(days=7)
    settings = Settings(pages=(PageSettings(url=PAGE),))
    moved = {"Relinked": ("https://c.org/old", "moved", "permanent_redirect")}
    with Store.open(tmp_path / "monitor.db") as store:
        for n in range(3):
            run = record_run(store, NOW + n * week, moved, states_from=store)
            load_audit(store, run.id, settings, NOW + n * week)
            store.mark_reported(run.id, NOW + n * week)
        down = record_failed_run(store, NOW + 3 * week)
        audit = load_audit(store, down.id, settings, NOW + 3 * week)
    assert [(p.since, p.weeks_open, p.rechecked) for g in audit.needs_fixing for p in g.problems] == [
        (NOW, 3, False)]


@pytest.mark.parametrize("pruned", [False, True])
def test_a_malformed_link_is_dated_by_the_first_week_that_listed_it(tmp_path: Path, pruned: bool) -> None:
    """A malformed href is never requested, so no check dates it: it said
    "since <last week> or earlier" every week. Now since the first run that
    listed it; "or earlier" only when older runs were cleaned away
    (keep_weeks), not when that run is the database's first: a problem found
    in the first run dates from it, as every other one found then does
    (review 13 #13: "open 1 week or more, since 21 Nov 2026 or earlier" among
    rows all saying "open 1 week, since 21 Nov 2026")."""
    week = dt.timedelta(days=7)
    settings = Settings(pages=(PageSettings(url=PAGE),))
    with Store.open(tmp_path / "monitor.db") as store:
        for n in range(4):
            when = NOW + n * week
            run = store.start_run(when)
            store.record_page(PageRecord(run_id=run.id, url=PAGE, status="ok"), when)
            hrefs = ["http://", "http//www.sclero.org/news.html"][: 1 if n < 2 else 2]
            store.record_citations(run.id, PAGE, [
                Citation(page_url=PAGE, url=None, raw_href=href, anchor_text=f"Entry {i}",
                         section="Biologics", kind=LinkKind.CITATION, skip_reason="invalid_url",
                         context=EntryContext(title=f"Entry {i}"))
                for i, href in enumerate(hrefs)])
            store.finish_run(run.id, when + dt.timedelta(hours=1))
            if pruned and n == 2:
                assert store.prune(NOW + week - dt.timedelta(hours=1))[0] == 1  # the first week's run
            audit = load_audit(store, run.id, settings, when + dt.timedelta(hours=1))
            store.mark_reported(run.id, when + dt.timedelta(hours=1))
        rows = {p.link.url: (p.since, p.since_at_least, p.weeks_open)
                for g in audit.needs_fixing for p in g.problems}
    first = (NOW + week, True, 2) if pruned else (NOW, False, 3)
    assert rows == {"http://": first, "http//www.sclero.org/news.html": (NOW + 2 * week, False, 1)}
    if not pruned:
        words = [p.age_words for g in audit.needs_fixing for p in g.problems]
        assert words == ["open 3 weeks, since 23 Nov 2026", "open 1 week, since 7 Dec 2026"], words


def test_a_malformed_link_on_a_page_down_for_weeks_keeps_its_age(tmp_path: Path) -> None:
    """Read in weeks 0-2, the page down in weeks 3-4: the carried row kept
    "since <the week before last read>", younger every week it was down."""
    week = dt.timedelta(days=7)
    settings = Settings(pages=(PageSettings(url=PAGE),))
    seen = []
    with Store.open(tmp_path / "monitor.db") as store:
        for n in range(5):
            when = NOW + n * week
            if n < 3:
                run = store.start_run(when)
                store.record_page(PageRecord(run_id=run.id, url=PAGE, status="ok"), when)
                store.record_citations(run.id, PAGE, [Citation(
                    page_url=PAGE, url=None, raw_href="http://", anchor_text="Entry",
                    section="Biologics", kind=LinkKind.CITATION, skip_reason="invalid_url",
                    context=EntryContext(title="Entry"))])
                store.finish_run(run.id, when + dt.timedelta(hours=1))
            else:
                run = record_failed_run(store, when)
            audit = load_audit(store, run.id, settings, when + dt.timedelta(hours=1))
            store.mark_reported(run.id, when + dt.timedelta(hours=1))
            seen += [(p.since, p.weeks_open) for g in audit.needs_fixing for p in g.problems]
    assert seen == [(NOW, n) for n in range(5)]


CROSS_LISTED = "Phosphodiesterase-5 inhibitors for secondary Raynaud's phenomenon"
PMC = "http://www.ncbi.nlm.nih.gov/pmc/articles/PMC5123456/"


def record_cross_listed_run(store: Store, when: dt.datetime, sections: tuple[str, ...]) -> RunInfo:
    """A finished run of PAGE listing one entry, its link dead, in each of `sections`."""
    run = store.start_run(when)
    store.record_page(PageRecord(run_id=run.id, url=PAGE, status="ok", entries=(CROSS_LISTED,)), when)
    store.record_citations(run.id, PAGE, [
        Citation(page_url=PAGE, url=PMC, raw_href=PMC, anchor_text=CROSS_LISTED, section=section,
                 kind=LinkKind.CITATION, context=EntryContext(title=CROSS_LISTED, source="PMC."))
        for section in sections])
    store.record_observations(run.id, [(
        Observation(url=PMC, checked_at=when, http_status=404),
        Verdict(url=PMC, status=LinkStatus.EXPIRED, reason="http_404"),
        UrlState(url=PMC, status=LinkStatus.EXPIRED, reason="http_404", strikes=3,
                 failing_since=when - dt.timedelta(days=9), last_checked_at=when,
                 first_seen_at=when))])
    store.finish_run(run.id, when)
    return run


def test_a_url_cited_in_two_sections_of_an_unfetched_page_stays_two_problems(tmp_path: Path) -> None:
    """One entry listed in two sections is two rows of the report; the week its
    page cannot be fetched both stay open (one vanished, neither open nor
    fixed), and the week one listing is deleted it is "removed", the other
    still open."""
    week = dt.timedelta(days=7)
    settings = Settings(pages=(PageSettings(url=PAGE),))
    both = ("Phosphodiesterase-5 Inhibitors", "Digital Ulcers")

    def rows(audit: Audit) -> list[tuple[str, bool]]:
        return [(p.link.section, p.rechecked) for g in audit.needs_fixing for p in g.problems]

    with Store.open(tmp_path / "monitor.db") as store:
        t1, t2, t3 = (NOW + i * week for i in range(3))
        week1 = record_cross_listed_run(store, t1, both)
        audit1 = load_audit(store, week1.id, settings, t1)
        assert rows(audit1) == [(both[0], True), (both[1], True)]
        store.mark_reported(week1.id, t1)
        week2 = record_failed_run(store, t2)
        audit2 = load_audit(store, week2.id, settings, t2)
        assert rows(audit2) == [(both[0], False), (both[1], False)]
        assert (audit2.counts.new, audit2.counts.still, audit2.counts.fixed) == (0, 2, 0)
        store.mark_reported(week2.id, t2)
        week3 = record_cross_listed_run(store, t3, both[:1])
        audit3 = load_audit(store, week3.id, settings, t3)
        assert rows(audit3) == [(both[0], True)]
        assert [(f.how, f.link.section) for f in audit3.fixed_since_last] == [("removed", both[1])]
        assert (audit3.counts.new, audit3.counts.still, audit3.counts.fixed) == (0, 1, 1)


RETRACTED_ENTRY = "Oral treprostinil reduces digital ulcer healing time in systemic sclerosis"
RETRACTED_URL = "https://pubmed.ncbi.nlm.nih.gov/29470812/"
UNSOURCED = "How is Polymyositis Treated?"
UNSOURCED_URL = "https://www.hopkinsarthritis.org/polymyositis/treatment/"


def record_noted_run(store: Store, when: dt.datetime) -> RunInfo:
    """A finished run of PAGE with two content notes: a cited article the
    page says was retracted (its link ok), an entry without a source line."""
    run = store.start_run(when)
    store.record_page(PageRecord(run_id=run.id, url=PAGE, status="ok", title="DM/PM treatments",
                                 entries=(RETRACTED_ENTRY, UNSOURCED)), when)
    store.record_citations(run.id, PAGE, [
        Citation(page_url=PAGE, url=url, raw_href=url, anchor_text=title, section="Biologics",
                 kind=LinkKind.CITATION, context=EntryContext(title=title, source=source))
        for url, title, source in ((RETRACTED_URL, RETRACTED_ENTRY, "PubMed, Scand J Rheumatol, 2018."),
                                   (UNSOURCED_URL, UNSOURCED, ""))])
    store.record_observations(run.id, [
        (Observation(url=url, checked_at=when, http_status=200),
         Verdict(url=url, status=LinkStatus.OK, reason="ok", notice=notice,
                 notice_detail="PubMed links a retraction notice." if notice else ""),
         UrlState(url=url, status=LinkStatus.OK, last_checked_at=when, first_seen_at=when))
        for url, notice in ((RETRACTED_URL, "retracted"), (UNSOURCED_URL, ""))])
    store.finish_run(run.id, when)
    return run


def test_a_page_that_could_not_be_fetched_keeps_its_content_notes(tmp_path: Path) -> None:
    """Week 1 reads the page: a retracted article cited, an entry without a
    source. Weeks 2 and 3 cannot fetch it: both notes stay, as week 1 read
    them, said to be not checked again, and the retraction stays in the
    headline and the subject; they vanished (only "could not be fetched")."""
    week = dt.timedelta(days=7)
    settings = Settings(pages=(PageSettings(url=PAGE),))
    with Store.open(tmp_path / "monitor.db") as store:
        t1, t2, t3 = (NOW + i * week for i in range(3))
        week1 = record_noted_run(store, t1)
        audit1 = load_audit(store, week1.id, settings, t1)
        store.mark_reported(week1.id, t1)
        for when in (t2, t3):
            failed = record_failed_run(store, when)
            audit = load_audit(store, failed.id, settings, when)
            store.mark_reported(failed.id, when)
            notes = audit.content_audit
            assert [(i.entry, i.rechecked) for i in notes.retracted] == [(RETRACTED_ENTRY, False)]
            assert [(i.entry, i.rechecked) for i in notes.no_source] == [(UNSOURCED, False)]
            assert [i.words for i in notes.retracted] == [
                f"{i.words} Not checked again this week: the page could not be fetched."
                for i in audit1.content_audit.retracted]
            assert [i.kind for i in notes.pages_failed] == ["page_error"]
            assert audit.counts.content == 2  # the failed page is the warning's, no entry note
            assert "1 cited article was retracted" in render_text(audit)
            assert subject_for(audit).endswith(", 1 cited article retracted, 1 of 1 page could not be fetched")


def record_entry_run(store: Store, when: dt.datetime, links: list[tuple[str, str]]) -> RunInfo:
    """A finished run of PAGE whose one entry cites `links`: (url, status) each."""
    title = "Rituximab in refractory DM"
    run = store.start_run(when)
    store.record_page(PageRecord(run_id=run.id, url=PAGE, status="ok", entries=(title,)), when)
    store.record_citations(run.id, PAGE, [
        Citation(page_url=PAGE, url=url, raw_href=url, anchor_text=title, section="Biologics",
                 kind=LinkKind.CITATION, context=EntryContext(title=title, source="PubMed."))
        for url, _ in links])
    store.record_observations(run.id, [
        (Observation(url=url, checked_at=when, http_status=200 if status == "ok" else 404),
         Verdict(url=url, status=LinkStatus(status), reason="ok" if status == "ok" else "http_404"),
         UrlState(url=url, status=LinkStatus(status), last_checked_at=when, first_seen_at=when))
        for url, status in links])
    store.finish_run(run.id, when)
    return run


def test_an_entry_that_lost_its_dead_link_is_not_said_to_link_to_a_new_address(tmp_path: Path) -> None:
    """The report's store reads the entry's links of the previous report's run:
    the PubMed link the entry kept is no "new address"; a new full-text link is."""
    pubmed, dead, new = ("https://pubmed.ncbi.nlm.nih.gov/29713888/", "https://j.example.org/full/1",
                         "https://j.example.org/article/1")
    settings = Settings(pages=(PageSettings(url=PAGE),))
    week = dt.timedelta(days=7)
    with Store.open(tmp_path / "monitor.db") as store:
        first = record_entry_run(store, NOW - week, [(pubmed, "ok"), (dead, "expired")])
        store.mark_reported(first.id, NOW - week)
        kept = record_entry_run(store, NOW, [(pubmed, "ok")])
        replaced = record_entry_run(store, NOW, [(pubmed, "ok"), (new, "ok")])
        assert [(f.how, f.new_url) for f in load_audit(store, kept.id, settings, NOW).fixed_since_last] == [
            ("removed", pubmed)]
        assert [(f.how, f.new_url) for f in load_audit(store, replaced.id, settings, NOW).fixed_since_last] == [
            ("link_updated", new)]


GONE, UNSOURCED = "https://www.sclero.org/trials/gone.html", "https://www.sclero.org/x"
HOSTILE_HREF = "../x?<script>alert(1)</script>"


def record_placed_run(store: Store, when: dt.datetime, gone: str, gone_line: int) -> RunInfo:
    """A run of PAGE: an entry linking GONE (written "/trials/gone.html", twice
    in week 1) with status `gone`, and one without a source line linking
    UNSOURCED written HOSTILE_HREF, each at its line."""
    run = store.start_run(when)
    store.record_page(PageRecord(run_id=run.id, url=PAGE, status="ok", title="DM/PM",
                                 entries=("Trial", "Unsourced")), when)
    copies = (gone_line, gone_line + 40) if gone == "expired" else (gone_line,)
    store.record_citations(run.id, PAGE, [
        *(Citation(page_url=PAGE, url=GONE, raw_href="/trials/gone.html", anchor_text="Trial",
                   section="Biologics", kind=LinkKind.CITATION, line=line,
                   context=EntryContext(title="Trial", source="PubMed.")) for line in copies),
        Citation(page_url=PAGE, url=UNSOURCED, raw_href=HOSTILE_HREF, anchor_text="Unsourced",
                 section="Biologics", kind=LinkKind.CITATION, element="area", line=50,
                 context=EntryContext(title="Unsourced"))])
    failing = gone == "expired"
    store.record_observations(run.id, [
        (Observation(url=url, checked_at=when, http_status=404 if failing and url == GONE else 200),
         Verdict(url=url, status=LinkStatus(status), reason="http_404" if status == "expired" else "ok"),
         UrlState(url=url, status=LinkStatus(status), strikes=3 if status == "expired" else 0,
                  failing_since=when - dt.timedelta(days=9) if status == "expired" else None,
                  last_checked_at=when, first_seen_at=when))
        for url, status in ((GONE, gone), (UNSOURCED, "ok"))])
    store.finish_run(run.id, when)
    return run


def test_the_mail_says_where_a_fixed_link_was_and_a_noted_link_is(tmp_path: Path) -> None:
    """From the database: the fixed link's copies where last week's run saw
    them (lines 34 and 74; it is at 36 now), the note's link where it is,
    in both parts of the message, the href as written inert in the HTML."""
    week = dt.timedelta(days=7)
    with Store.open(tmp_path / "monitor.db") as store:
        first = record_placed_run(store, NOW - week, "expired", 34)
        store.mark_reported(first.id, NOW - week)
        second = record_placed_run(store, NOW, "ok", 36)
        audit = load_audit(store, second.id, Settings(pages=(PageSettings(url=PAGE),)), NOW)
    msg = build_report_message(audit, sender="m@example.org", recipients=["w@example.org"],
                               message_id="<x@example.org>")
    back = parse(msg.as_bytes())
    text = back.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = back.get_body(("html",)).get_content().replace("&#183;", "\u00b7")
    assert f"({GONE})\n      lines 34, 74 \u00b7 written as /trials/gone.html\n" in text
    assert (f"Link: {UNSOURCED}\n      line 50 \u00b7 written as {HOSTILE_HREF} \u00b7 "
            "in the href of an <area>\n") in text
    assert "lines 34, 74 \u00b7 written as <code>/trials/gone.html</code></span>" in html
    assert ("line 50 \u00b7 written as <code>../x?&lt;script&gt;alert(1)&lt;/script&gt;</code> \u00b7 "
            "in the href of an &lt;area&gt;</span>") in html
    assert "<script" not in html


def record_site_run(store: Store, when: dt.datetime,
                    pages: dict[str, dict[str, tuple[str, str, str]]]) -> RunInfo:
    """A finished run of several pages: page -> entry title -> (url, status,
    reason); status "skipped" is a link excluded by the configuration (listed,
    never requested)."""
    run = store.start_run(when)
    observed = []
    for url, links in pages.items():
        store.record_page(PageRecord(run_id=run.id, url=url, status="ok", title=f"Page {url}",
                                     entries=tuple(links)), when)
        store.record_citations(run.id, url, [
            Citation(page_url=url, url=href, raw_href=href, anchor_text=title, section="Biologics",
                     kind=LinkKind.CITATION, context=EntryContext(title=title, source="PubMed."),
                     skip_reason="excluded" if status == "skipped" else None)
            for title, (href, status, _) in links.items()])
        for href, status, reason in links.values():
            if status == "skipped":
                continue
            failing = status != "ok"
            observed.append((Observation(url=href, checked_at=when, http_status=200),
                             Verdict(url=href, status=LinkStatus(status), reason=reason),
                             UrlState(url=href, status=LinkStatus(status), reason=reason,
                                      strikes=3 if failing else 0,
                                      failing_since=when - dt.timedelta(days=9) if failing else None,
                                      last_checked_at=when, first_seen_at=when)))
    store.record_observations(run.id, observed)
    store.finish_run(run.id, when)
    return run


def test_a_removed_page_and_an_exclusion_reconcile_the_counts_from_the_store(tmp_path: Path) -> None:
    """Walkthrough 9, findings 4 and 5, through the store as `monitor report`
    reads it: week 2 removes PAGE2 from the configuration and excludes the
    moved PubMed link. Its report said "1 fixed" and nothing of PAGE2's
    problems; now the previous report's open problems are each still open,
    fixed, no longer checked or no longer watched, and both are said."""
    week = dt.timedelta(days=7)
    pubmed = "https://www.ncbi.nlm.nih.gov/pubmed/29713888"
    dm = {"Rituximab": (pubmed, "moved", "permanent_redirect"),
          "Still gone": ("https://a.org/gone", "expired", "http_404"),
          "Fixed meanwhile": ("https://c.org/back", "error", "http_503")}
    raynaud = {f"Raynaud {i}": (f"https://r.org/{i}", "expired", "http_404") for i in range(3)}
    with Store.open(tmp_path / "monitor.db") as store:
        first = record_site_run(store, NOW - week, {PAGE: dm, PAGE2: raynaud})
        audit1 = load_audit(store, first.id, Settings(pages=(PageSettings(url=PAGE), PageSettings(url=PAGE2))),
                            NOW - week)
        store.mark_reported(first.id, NOW - week)
        second = record_site_run(store, NOW, {PAGE: {
            **dm, "Rituximab": (pubmed, "skipped", "excluded"),
            "Fixed meanwhile": ("https://c.org/back", "ok", "ok")}})
        audit2 = load_audit(store, second.id, Settings(pages=(PageSettings(url=PAGE),)), NOW)
    before, now = audit1.counts, audit2.counts
    assert before.open == 6
    assert (now.new, now.still, now.fixed, now.no_longer_checked, now.no_longer_audited) == (0, 1, 1, 1, 3)
    assert before.open == now.still + now.fixed + now.no_longer_checked + now.no_longer_audited
    text = render_text(audit2)
    assert (f"No longer audited: Page {PAGE2} ({PAGE2}), no longer in the configuration: "
            "its 3 open problems are not followed any more.") in text
    assert ("1 link no longer checked (ncbi.nlm.nih.gov): now excluded by checker.exclude "
            "(it was: moved).") in text
    assert subject_for(audit2).endswith("no new problems, 1 still open, 1 fixed, 4 no longer followed")


def test_the_weekly_mail_of_a_big_site_sums_up_the_week(tmp_path: Path) -> None:
    """Walkthrough 11 #5, through the store as `monitor run` reads it: 2,006
    problems on 100 pages (bench/report_scale.py's site, 20,000 links, 519
    new). The mail was "The newest problems (25 of ...)": the first 25 in
    page order, the full report's address only after them, with a full stop
    glued to it, and the other new rows neither named nor counted. Now the
    address is under the headline, the summary holds as many rows as the
    100 KB allow, from pages over the whole site, and the new rows left out
    are counted with their pages."""
    from bench.report_scale import build
    from reports.render import MAX_EMAIL_BYTES

    db = tmp_path / "big.db"
    build(db, 2, 20000)
    settings = Settings(pages=(PageSettings(url="https://www.sclero.org/scleroderma/topic-0/treatments.html"),),
                        report=ReportSettings(base_url="https://links.sclero.org/reports/"))
    with Store.open(db) as store:
        audit = load_audit(store, 2, settings, store.get_run(2).started_at + dt.timedelta(minutes=26))
    full = "https://links.sclero.org/reports/report-2025-12-01-run-2.html"
    msg = build_report_message(audit, sender="m@sclero.org", recipients=["w@sclero.org"],
                               message_id="<a@sclero.org>", full_report=full)
    assert len(msg.as_bytes()) <= MAX_EMAIL_BYTES
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert text.index(f"Full report: {full}\n") < text.index("THE NEWEST PROBLEMS")
    assert html.index(f'href="{full}"') < html.index("The newest problems")
    assert f"{full}." not in text
    shown = re.findall(r"\n  \* .*\n    (https://\S+/topic-(\d+)/\S+) .*\n.*\n(?:.*\n)*?    Link: (\S+)", text)
    assert 25 < len(shown) == text.count("What to do:")
    topics = sorted(int(t) for _, t, _ in shown)
    assert topics[-1] >= 50, topics  # not the first pages only
    shown_urls = {(page, url) for page, _, url in shown}
    left = [p for p in audit.problems if p.new and (p.link.page, p.link.url) not in shown_urls]
    assert left and [p for p in audit.problems if p.new and not p.confirmed]
    assert all(p.confirmed for p in audit.problems if p.new and (p.link.page, p.link.url) in shown_urls)
    assert (f"And {len(left)} more new problems on {len({p.link.page for p in left})} pages, "
            f"{audit.counts.still} still open") in text


@pytest.mark.parametrize(("kept_to", "today_to", "expected_to"), [
    # kept before the upgrade, addressed to the removed defaults: today's addresses
    (("webmaster@example.org",), ("me@mysite.org", "ana@mysite.org"), ["me@mysite.org", "ana@mysite.org"]),
    # a real address kept: sent as it was kept (the recipients of its day)
    (("old@mysite.org",), ("me@mysite.org",), ["old@mysite.org"]),
    # today's configuration names the placeholder itself: nothing to change
    (("webmaster@example.org",), ("webmaster@example.org",), ["webmaster@example.org"]),
])
async def test_a_report_kept_for_the_old_placeholder_goes_to_todays_addresses(
        store: Store, smtp_server: ServerFactory, kept_to: tuple[str, ...], today_to: tuple[str, ...],
        expected_to: list[str]) -> None:
    """Review 13b #1: a report queued before the upgrade (when [email] defaulted
    to webmaster@example.org and monitor@example.org) was still sent there by
    `run`'s and `serve`'s automatic retry after the user wrote real addresses."""
    server = await smtp_server()
    then = settings_for(email_settings(server.port, recipients=kept_to))
    queued = queue_report(store, known_audit(), then, NOW)
    assert queued[0].key == "run-1:all" and queued[0].recipients == kept_to
    today = email_settings(server.port, recipients=today_to, sender="mon@mysite.org")
    result = await flush_outbox(store, today, None, NOW)
    assert result.ok and "run-1:all" in result.sent
    whole = next(e for e in server.sink.messages if "ssc-editor@example.org" not in e.rcpt_tos)
    assert whole.rcpt_tos == expected_to
    msg = parse(whole.content)
    assert msg["To"] == ", ".join(expected_to)
    moved = expected_to != list(kept_to)
    assert msg["From"] == ("mon@mysite.org" if moved else "monitor@example.org")
    assert msg["Subject"].startswith("Link audit for www.sclero.org")  # the same report, whole
    assert msg.get_body(("html",)).get_content().count("globenewswire.com/release/1542296") >= 1
    # the page owner's part goes where it was kept
    assert server.sink.received_by("ssc-editor@example.org") == 1
