"""Injection: what pages say must stay text in the report, the files and the mail.

A real audit of a local page whose title, section headings, anchor text,
summaries, URLs, target titles and redirect targets carry XSS payloads (and
whose configured page name and site name do too), then the real report job:
rendered, saved, queued and mailed to an aiosmtpd sink.

Then every HTML output (the saved report, the index of reports, the mail's
HTML part) is parsed with selectolax, as a browser would: no <script>
element, no on* attribute, no javascript:/data:/vbscript: URL in any
href/src/action/formaction, no <iframe>/<object>/<embed>/<svg>/<img>
element at all (the report has no use for them). Each payload must be found
in the parsed TEXT, which proves it reached the output and was escaped
rather than dropped. The JSON file must parse, and hold the payloads as data.

Mail headers: CR/LF smuggled through the site name and the sender/recipients,
handed to the library directly (the config file refuses them), must not
create a header or a recipient.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import html as htmllib
import json
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from selectolax.lexbor import LexborHTMLParser

from monitor.config import (CheckerSettings, DatabaseSettings, EmailSettings, PageSettings,
                            ReportSettings, Settings, load_settings)
from monitor.crawl import run_audit
from monitor.jobs import report_job
from monitor.store import Store

from hostile_kit import Sink, audit_and_mail, mapped, start_sink

P_TITLE = "<script>alert('page-title')</script>"
P_HEADING = "<img src=x onerror=alert('heading')>"
P_ANCHOR = "<svg/onload=alert('anchor')>"
P_SUMMARY = "\"><script>alert('summary')</script>"
P_TARGET = "<iframe src=javascript:alert('target')></iframe>"
P_NAME = "<b onmouseover=alert('name')>Treatments</b>"
P_SITE = "Sclero<script>alert('site')</script>"
P_NOTICE = "<b onmouseover=alert('notice')>SSc-ILD</b>"  # quoted by the retraction note
P_LOCATION = "http://[<svg onload=alert('location')>"  # quoted by the error detail
INJECTED = "Bcc: evil@attacker.example"

HOST = "www.xss.example.org"
TARGETS = "targets.xss.example.org"
DANGEROUS_SCHEMES = ("javascript:", "data:", "vbscript:")
FORBIDDEN_TAGS = ("script", "iframe", "object", "embed", "svg", "img", "frame", "base", "form")


def e(text: str) -> str:
    return htmllib.escape(text, quote=True)


def entry(href: str, anchor: str, summary: str = "A summary of the study") -> str:
    return f'<p><a href="{e(href)}">{e(anchor)}</a>. {e(summary)}. J Rheumatol. 2020;1(2):3-4.</p>\n'


def payload_page() -> str:
    t = f"http://{TARGETS}"
    return (
        f"<html><head><title>Treatments {e(P_TITLE)}</title></head><body>"
        f"<h1>Treatments</h1><h2>Biologic agents {e(P_HEADING)}</h2>\n"
        + entry(f"{t}/gone", f"Rituximab trial {P_ANCHOR}", P_SUMMARY)
        + entry(f"{t}/drift", "Tocilizumab in early disease: a randomised trial")
        + entry(f"{t}/moved", "Abatacept for skin involvement in scleroderma")
        + entry(f"{t}/to-js", "Nintedanib and the lungs: long follow up")
        + entry(f"{t}/down", "Mycophenolate versus cyclophosphamide trial")
        + entry(f"{t}/retracted", f"Nintedanib in {P_NOTICE}: a randomised controlled trial")
        + entry(f"{t}/bad-location", "Bosentan for digital ulcers: a randomised trial")
        + entry("http://evil.example.net/\"><script>alert('url')</script>", f"Odd link {P_ANCHOR}")
        + entry("javascript:alert('js-href')", "A script link")
        + entry("data:text/html,<script>alert('data-href')</script>", "A data link")
        + f"<h2>{e(P_SUMMARY)}</h2>\n"
        + entry(f"{t}/gone?x=<script>", "Second section entry with a long title")
        + "</body></html>"
    )


async def start_site(aiohttp_server: Any) -> int:
    page = payload_page()

    async def serve(request: web.Request) -> web.StreamResponse:
        host = request.host.split(":", 1)[0]
        path = request.path
        if host == HOST:
            return web.Response(text=page, content_type="text/html")
        if path == "/gone":
            return web.Response(status=404, text=f"<title>{e(P_TARGET)}</title>", content_type="text/html")
        if path == "/drift":
            return web.Response(text=f"<title>{e(P_TARGET)}</title><p>{e(P_TARGET)}</p>",
                                content_type="text/html")
        if path == "/moved":
            return web.Response(status=301, headers={
                "Location": f"http://{TARGETS}/new?q=\"><script>alert('suggested')</script>"})
        if path == "/to-js":
            return web.Response(status=301, headers={"Location": "javascript:alert('redirect')"})
        if path == "/retracted":
            title = f"RETRACTED: Nintedanib in {P_NOTICE}: a randomised controlled trial"
            return web.Response(text=f"<title>{e(title)}</title>", content_type="text/html")
        if path == "/bad-location":
            return web.Response(status=301, headers={"Location": P_LOCATION})
        if path == "/down":
            return web.Response(status=500, text=f"<title>{e(P_TARGET)}</title>", content_type="text/html")
        return web.Response(text="<title>Abatacept for skin involvement in scleroderma</title>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", serve)
    server = await aiohttp_server(app)
    return int(server.port)


def assert_inert(html: str, where: str) -> LexborHTMLParser:
    tree = LexborHTMLParser(html)
    for tag in FORBIDDEN_TAGS:
        assert tree.css(tag) == [], f"{where}: a <{tag}> element"
    for node in tree.css("*"):
        for name, value in node.attributes.items():
            assert not name.lower().startswith("on"), f"{where}: <{node.tag} {name}=...>"
            if name.lower() in ("href", "src", "action", "formaction", "xlink:href", "style"):
                folded = "".join((value or "").split()).lower()
                assert not folded.startswith(DANGEROUS_SCHEMES), f"{where}: {name}={value!r}"
                assert "javascript:" not in folded or name.lower() != "style", where
    return tree


def visible_text(tree: LexborHTMLParser) -> str:
    return tree.root.text(separator=" ") if tree.root is not None else ""


@pytest.fixture
async def reported(tmp_path: Path, aiohttp_server: Any) -> dict[str, Any]:
    """A real audit of the payload page, its report saved and mailed."""
    port = await start_site(aiohttp_server)
    sink, smtp, smtp_port = await start_sink()
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[[pages]]\nurl = "http://{HOST}/treatments.html"\nname = "{P_NAME}"\n'
        f'[report]\nsite_name = "{P_SITE}"\ndir = "{tmp_path / "out"}"\n'
        f"confirm_after_hours = 0\n",
        encoding="utf-8")
    loaded = load_settings(config)
    # A site name with a CR/LF in it: the config file refuses it (one line
    # naming report.site_name, exit 2); the mail must hold even so.
    settings = Settings(
        pages=loaded.pages, report=dataclasses.replace(loaded.report, site_name=f"{P_SITE}\r\n{INJECTED}"),
        checker=CheckerSettings(timeout=2.0, retries=0, soft404_probe=False,
                                connect_to=mapped(port, HOST, TARGETS, "evil.example.net") + (("*", "refuse"),)),
        database=DatabaseSettings(path=str(tmp_path / "m.db")),
        email=EmailSettings(host="127.0.0.1", port=smtp_port, security="none",
                            sender="monitor@xss.example.org", recipients=("webmaster@xss.example.org",)),
        source=str(config),
    )
    report, links = await audit_and_mail(settings, smtp)
    return {"report": report, "sink": sink, "links": links, "settings": settings}


async def test_the_saved_report_is_inert_and_shows_the_payloads_as_text(reported: dict[str, Any]) -> None:
    report = reported["report"]
    statuses = {link.url.rsplit("/", 1)[-1]: link.status.value for link in reported["links"] if link.url}
    assert statuses["gone"] == "expired" and statuses["moved"] == "moved", statuses
    tree = assert_inert(report.html_path.read_text(encoding="utf-8"), "report")
    text = visible_text(tree).casefold()  # section headings are shown in capitals
    for payload in (P_HEADING, P_ANCHOR, P_SUMMARY, P_NAME, P_SITE, "alert('suggested')", "alert('url')",
                    f"RETRACTED: Nintedanib in {P_NOTICE}"):
        assert payload.casefold() in text, f"{payload!r} did not reach the report as text"
    stored = {link.url.rsplit("/", 1)[-1]: link for link in reported["links"] if link.url}
    assert stored["retracted"].notice == "retracted" and P_NOTICE in stored["retracted"].notice_detail
    assert P_LOCATION in stored["bad-location"].detail, "the quoted Location is kept as data"
    assert_inert(report.index_path.read_text(encoding="utf-8"), "index")


async def test_the_json_file_holds_the_payloads_as_data(reported: dict[str, Any]) -> None:
    data = json.loads(reported["report"].json_path.read_text(encoding="utf-8"))
    flat = json.dumps(data, ensure_ascii=False)
    assert P_ANCHOR in flat and P_HEADING in flat


async def test_the_mail_is_inert_and_has_no_injected_header(reported: dict[str, Any]) -> None:
    sink: Sink = reported["sink"]
    assert len(sink.messages) == 1
    mail_from, rcpt_tos, raw = sink.messages[0]
    assert (mail_from, rcpt_tos) == ("monitor@xss.example.org", ["webmaster@xss.example.org"])
    message = email.message_from_bytes(raw, policy=default_policy)
    header_lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert "Bcc" not in message and not [h for h in header_lines if h.lower().startswith(b"bcc:")]
    names = {name.lower() for name in message.keys()}
    assert names <= {"subject", "from", "to", "date", "message-id", "auto-submitted",
                     "x-auto-response-suppress", "mime-version", "content-type",
                     "content-transfer-encoding"}, names
    subject = str(message["Subject"])
    assert "\r" not in subject and "\n" not in subject
    assert INJECTED in subject, "the text survives as harmless words in the subject"
    html_part = message.get_body(("html",))
    assert html_part is not None
    tree = assert_inert(html_part.get_content(), "mail")
    assert P_ANCHOR in visible_text(tree)
    assert f"RETRACTED: Nintedanib in {P_NOTICE}" in visible_text(tree), "the notice, as text"


@pytest.mark.parametrize("field", ["sender", "recipient", "site"])
async def test_crlf_handed_to_the_library_never_makes_a_header_or_a_recipient(
        field: str, tmp_path: Path) -> None:
    """The config file refuses CR/LF in addresses; a caller that builds
    Settings itself must not get an injection either."""
    from reports.audit import build_audit
    from reports.deliver import flush_outbox, queue_report

    sink, smtp, smtp_port = await start_sink()
    evil = "\r\nBcc: evil@attacker.example\r\nX-Injected: yes"
    sender = "monitor@xss.example.org" + (evil if field == "sender" else "")
    recipient = "webmaster@xss.example.org" + (evil if field == "recipient" else "")
    site = "Sclero" + (evil if field == "site" else "")
    email_settings = EmailSettings(host="127.0.0.1", port=smtp_port, security="none",
                                   sender=sender, recipients=(recipient,))
    settings = Settings(pages=(PageSettings(url=f"http://{HOST}/"),), email=email_settings,
                        report=ReportSettings(site_name=site))
    try:
        with Store.open(str(tmp_path / "m.db")) as store:
            import datetime as dt

            now = dt.datetime.now(dt.UTC)
            run = store.start_run(now)
            store.finish_run(run.id, now)
            audit = build_audit(store.get_run(run.id), [], [], previous_links=None, previous_pages=None,
                                states={}, now=now, settings=settings.report, site_name=site)
            queue_report(store, audit, settings, now)
            result = await flush_outbox(store, email_settings, None, now)
    finally:
        smtp.close()
    for mail_from, rcpt_tos, raw in sink.messages:
        # The envelope: aiosmtplib keeps the address and drops what follows.
        assert "attacker" not in mail_from and all("attacker" not in r for r in rcpt_tos), (mail_from, rcpt_tos)
        message = email.message_from_bytes(raw, policy=default_policy)
        assert "Bcc" not in message and "X-Injected" not in message
        for name, value in message.items():
            assert "\r" not in str(value) and "\n" not in str(value), name
    assert len(sink.messages) == 1 and result.failed == ()


def test_crlf_in_addresses_is_refused_by_the_config_file(tmp_path: Path) -> None:
    from monitor.errors import ConfigError

    for key, value in (("sender", '"m@x.org\\r\\nBcc: e@a.org"'), ("recipients", '["w@x.org\\nBcc: e@a.org"]')):
        path = tmp_path / f"{key}.toml"
        path.write_text(f'[[pages]]\nurl = "http://{HOST}/"\n[email]\n{key} = {value}\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=f"email.{key}"):
            load_settings(path)


async def test_the_smtp_password_is_never_echoed_or_stored(
        tmp_path: Path, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A refused login: the error names the user, never the password, and the
    password reaches no file the monitor writes."""
    from aiosmtpd.smtp import SMTP, AuthResult

    secret = "s3cr3t-PASSWORD-6f1e"
    monkeypatch.setenv("HOSTILE_SMTP_PASSWORD", secret)
    tried: list[bytes] = []

    def refuse(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        tried.append(bytes(getattr(auth_data, "password", b"") or b""))
        return AuthResult(success=False, handled=False)

    sink = Sink()
    smtp = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, authenticator=refuse, auth_require_tls=False), "127.0.0.1", 0)
    port = await start_site(aiohttp_server)
    settings = Settings(
        pages=(PageSettings(url=f"http://{HOST}/treatments.html"),),
        checker=CheckerSettings(timeout=2.0, retries=0, soft404_probe=False,
                                connect_to=mapped(port, HOST, TARGETS, "evil.example.net") + (("*", "refuse"),)),
        database=DatabaseSettings(path=str(tmp_path / "m.db")),
        report=ReportSettings(dir=str(tmp_path / "out")),
        email=EmailSettings(host="127.0.0.1", port=smtp.sockets[0].getsockname()[1], security="none",
                            username="monitor", password_env="HOSTILE_SMTP_PASSWORD",
                            sender="monitor@xss.example.org", recipients=("webmaster@xss.example.org",)),
    )
    caplog.set_level("DEBUG")
    try:
        outcome = await run_audit(settings)
        report = await report_job(settings, run_id=outcome.run.id, send=True)
    finally:
        smtp.close()
    assert tried and set(tried) == {secret.encode()}, "the login was really tried with it"
    assert report.failed and not sink.messages
    assert "monitor" in report.failed[0][1] and secret not in repr(report.failed)
    assert secret not in caplog.text
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("m.db") for p in written)
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
