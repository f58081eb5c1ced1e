"""The report as an email: build it (pure), send it (aiosmtplib).

Building and sending are apart because the outbox stores the built bytes:
a message retried on Tuesday is byte for byte the one built on Monday, with
the same Message-ID, so a mail client that somehow sees it twice threads it
as one.

Header safety: the site name (and through it the subject) can come from a
page we fetched. Every header value is stripped of CR, LF and other control
characters before it is set, and the message uses `email.policy.SMTP`, which
refuses a header with a line break anyway: two locks on one door.

SMTP failures become `DeliveryError` here and only here, each with one line
that says what went wrong in words a webmaster can act on.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

import aiosmtplib

from monitor.config import EmailSettings
from monitor.errors import DeliveryError
from reports.audit import Audit
from reports.render import MAX_EMAIL_BYTES, count_phrase, render_email

__all__ = [
    "SUBJECT_MAX",
    "build_message",
    "build_report_message",
    "clean_header",
    "message_id_for",
    "send_message",
    "subject_for",
]

SUBJECT_MAX = 200
"""Characters; a longer subject is cut (mail clients show ~80 anyway)."""

_POLICY = SMTP.clone(cte_type="7bit")
"""CRLF line ends, refuses line breaks in headers, and never 8bit bodies: a
relay without 8BITMIME must still take the message."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]+$")


def clean_header(value: str, limit: int = SUBJECT_MAX) -> str:
    """One line of text, safe as a header value: no CR/LF, no controls.

    Line breaks become spaces rather than vanishing, so "Site\\r\\nBcc: x"
    reads as the harmless text "Site Bcc: x" in the subject.
    """
    text = " ".join(_CONTROL.sub(" ", value or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def subject_for(audit: Audit) -> str:
    """ "Link audit for www.sclero.org, 2026-11-23: 3 new problems, 12 still open, 2 fixed"."""
    whose = " (your pages)" if audit.audience else ""
    site = clean_header(audit.site, 80)
    what = "Link check of some pages" if audit.run.partial else "Link audit"
    return clean_header(f"{what} for {site}{whose}, {audit.date.isoformat()}: {count_phrase(audit)}")


def _domain(sender: str) -> str:
    domain = sender.rpartition("@")[2].strip().strip(">")
    return domain if domain and _DOMAIN.match(domain) else "localhost"


def message_id_for(run_id: int, audience: str, sender: str, database_id: str = "") -> str:
    """A Message-ID stable per report and audience: the same run mailed to
    the same people always carries the same id, so a resend threads and a
    duplicate is recognisable.

    The database's id (`meta.database_id`) is part of it: run numbers start
    at 1 in every database, and a second site, a trial database or one
    started over sent "report-1-..." ids that an earlier report already
    carried (a mail service may drop a Message-ID it has seen)."""
    digest = hashlib.sha256(f"{database_id}:{audience}".encode("utf-8") if database_id
                            else audience.encode("utf-8")).hexdigest()[:12]
    tag = re.sub(r"[^0-9A-Za-z]", "", database_id)[:8]
    return f"<report-{tag + '-' if tag else ''}{int(run_id)}-{digest}@{_domain(sender)}>"


def build_message(audit: Audit, html: str, text: str, *, sender: str,
                  recipients: Sequence[str], message_id: str) -> EmailMessage:
    """multipart/alternative: the text part first, the HTML part last (preferred)."""
    addresses = [clean_header(r, 320) for r in recipients if clean_header(r, 320)]
    if not addresses:
        raise DeliveryError("the report has no recipients (email.recipients is empty)")
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = subject_for(audit)
    msg["From"] = clean_header(sender, 320)
    msg["To"] = ", ".join(addresses)
    msg["Date"] = format_datetime(audit.generated_at)
    msg["Message-ID"] = clean_header(message_id, 320) or make_msgid(domain=_domain(sender))
    # RFC 3834: a machine wrote this; out-of-office robots should not answer.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text, subtype="plain", cte=_cte(text))
    msg.add_alternative(html, subtype="html", cte=_cte(html))
    return msg


def build_report_message(audit: Audit, *, sender: str, recipients: Sequence[str],
                         message_id: str, full_report: str | None = None,
                         max_bytes: int = MAX_EMAIL_BYTES) -> EmailMessage:
    """The report's message at the richest level of detail that keeps the whole
    message under `max_bytes` (Gmail clips beyond ~102 KB): every problem if
    they fit, else a summary of as many as fit (`render_email`)."""
    fitted: list[tuple[str, str, EmailMessage]] = []

    def fits(html: str, text: str) -> bool:
        msg = build_message(audit, html, text, sender=sender, recipients=recipients,
                            message_id=message_id)
        if len(msg.as_bytes()) > max_bytes:
            return False
        fitted[:] = [(html, text, msg)]  # the richest so far: the search only grows
        return True

    html, text = render_email(audit, fits, full_report=full_report, max_bytes=max_bytes)
    if fitted and fitted[0][0] is html and fitted[0][1] is text:
        return fitted[0][2]
    return build_message(audit, html, text, sender=sender, recipients=recipients,
                         message_id=message_id)


def _cte(body: str) -> str | None:
    """7bit when the body allows it (the rendered HTML always does: it is
    ASCII with lines under 998 octets), saving quoted-printable's overhead
    towards the size budget; otherwise let the email package choose."""
    lines = body.splitlines()
    if body.isascii() and all(len(line) <= 998 for line in lines):
        return "7bit"
    return None


# -- sending -------------------------------------------------------------------


async def send_message(msg_bytes: bytes, recipients: Sequence[str], settings: EmailSettings,
                       password: str | None, *,
                       tls_context: ssl.SSLContext | None = None) -> dict[str, str]:
    """Hand the message to the SMTP server; raise `DeliveryError` if it did not take it.

    Returns the recipients the server refused while accepting the others
    ({address: "550 no such user"}); empty when all were accepted. A refusal
    of every recipient is an error. `tls_context` lets a private CA be
    trusted (tests, corporate relays).
    """
    where = f"{settings.host}:{settings.port}"
    if settings.username and not password:
        raise DeliveryError(
            f"email.username is set but the environment variable {settings.password_env} "
            "is empty: no password to log in with")
    try:
        errors, _ = await aiosmtplib.send(
            msg_bytes,
            sender=settings.sender,
            recipients=list(recipients),
            hostname=settings.host,
            port=settings.port,
            username=settings.username or None,
            password=password if settings.username else None,
            use_tls=settings.security == "tls",
            start_tls=True if settings.security == "starttls" else False,
            timeout=settings.timeout,
            tls_context=tls_context,
        )
    except aiosmtplib.SMTPException as exc:
        raise DeliveryError(_explain(exc, where, settings)) from exc
    except ssl.SSLError as exc:
        raise DeliveryError(_tls_failure(exc, where, settings)) from exc
    except OSError as exc:
        raise DeliveryError(f"cannot reach the mail server {where}: {exc.strerror or exc}") from exc
    return {addr: f"{r.code} {r.message}".strip() for addr, r in errors.items()}


def _explain(exc: aiosmtplib.SMTPException, where: str, settings: EmailSettings) -> str:
    """One line per failure kind, most specific first (the classes overlap)."""
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError):
        return f"cannot reach the mail server {where}: no answer within {settings.timeout:g} s"
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return f"the mail server {where} stopped answering (timeout after {settings.timeout:g} s)"
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLError):
            return _tls_failure(cause, where, settings)
        if isinstance(cause, ConnectionRefusedError):
            return f"cannot reach the mail server {where}: connection refused (is it running?)"
        if isinstance(cause, socket.gaierror):
            return f"cannot reach the mail server {where}: unknown host name ({cause.strerror})"
        return f"cannot reach the mail server {where}: {_one_line(exc)}"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return (f"the mail server {where} refused the login for user {settings.username!r}: "
                f"{exc.code} {_one_line(exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = ", ".join(f"{r.recipient} ({r.code} {_one_line(r.message)})" for r in exc.recipients)
        return f"the mail server {where} refused every recipient: {refused}"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return (f"the mail server {where} refused the sender {exc.sender!r}: "
                f"{exc.code} {_one_line(exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return f"the mail server {where} refused the message: {exc.code} {_one_line(exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return f"the mail server {where} closed the connection: {_one_line(exc)}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"the mail server {where} answered {exc.code} {_one_line(exc.message)}"
    text = _one_line(exc)
    if "STARTTLS" in text.upper():
        return (f"the mail server {where} does not offer STARTTLS; set email.security to "
                f"\"tls\" (port 465) or \"none\": {text}")
    if "AUTH" in text.upper():
        return f"the mail server {where} does not offer login (AUTH) here: {text}"
    return f"sending through {where} failed: {text}"


def _tls_failure(exc: ssl.SSLError, where: str, settings: EmailSettings) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS with the mail server {where} failed: its certificate is not trusted "
                f"({exc.verify_message or exc.reason})")
    hint = ""
    if exc.reason == "WRONG_VERSION_NUMBER":
        hint = (" (the port does not speak TLS: use email.security = \"starttls\" on 587, "
                "\"tls\" on 465)" if settings.security == "tls" else "")
    return f"TLS with the mail server {where} failed: {exc.reason or _one_line(exc)}{hint}"


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
