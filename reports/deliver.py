"""The outbox edge: audits in and out of the store, reports into mail servers.

Every report goes through the `outbox` table so that none is lost: it is
queued once (the key names the run and the audience), sent by whoever
flushes next (`monitor run`, `monitor serve`), and kept with a backoff when
the server is down, refuses the login, refuses the recipients or times out.

Never twice:
- a key is queued at most once (the store refuses a second insert), and
  `monitor report --send` re-arms the same row on purpose (`resend=True`):
  only the rows of that run that did not go out, or all of them once every
  one went out (an editor whose part was delivered got it twice);
- a flush holds the store's "outbox" lock, so `serve` and a manual `run`
  cannot both pick the same due message;
- a message is marked sent right after the server accepted it, before
  anything else can fail.

Some recipients refused, others accepted (decided here): the message counts
as sent, because sending it again would duplicate it for everyone who got it.
Each recipient refused with a temporary code (4xx) gets a follow-up copy of
the same bytes (same Message-ID) queued under its own key, retried with the
same backoff; a permanent refusal (5xx, e.g. "no such user") is logged as an
error naming the address and not retried, since only a configuration change
can fix it. Every recipient of a message refused for good (all 5xx): the
message is kept but never due again (`Store.mark_refused`), rather than
retried with the backoff week after week; `monitor report --send` arms it
again, rebuilt for the addresses configured by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import aiosmtplib

from monitor.config import EmailSettings, ReportSettings
from monitor.errors import DeliveryError
from monitor.forked import ChildDied, Forked
from monitor.store import Store, lock_owner, stores_open
from monitor.types import LinkResult, LinkStatus, OutboxMessage
from reports.audit import (
    FLAGGED,
    Audit,
    audit_for_pages,
    build_audit,
    default_site_name,
    pages_with_gone_problems,
)
from reports.mail import build_report_message, message_id_for, send_message

__all__ = [
    "BACKOFF",
    "FlushResult",
    "backoff",
    "flush_outbox",
    "load_audit",
    "owners_of",
    "queue_report",
    "report_key",
]

log = logging.getLogger(__name__)

BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=30),
           dt.timedelta(hours=2))
"""Delay after the 1st, 2nd, 3rd, 4th and later failures: a hiccup is retried
within a minute, a server down for maintenance every two hours."""

T = TypeVar("T")

OUTBOX_LOCK = "outbox"
OUTBOX_LOCK_TTL = dt.timedelta(minutes=10)
"""How long the outbox lock outlives its holder's last sign of life (it is
renewed before each message): a crashed flush blocks the others that long."""


class _SettingsLike(Protocol):
    @property
    def email(self) -> EmailSettings: ...

    @property
    def report(self) -> ReportSettings: ...


@dataclass(frozen=True, slots=True)
class FlushResult:
    sent: tuple[str, ...] = ()
    """Keys of the messages the server accepted."""
    failed: tuple[tuple[str, str], ...] = ()
    """(key, reason) of the messages kept for a later attempt."""
    refused: tuple[tuple[str, str, str], ...] = ()
    """(key, address, server answer) of recipients refused while others accepted."""
    busy: bool = False
    """Another process holds the outbox: nothing was tried."""
    rejected: tuple[tuple[str, str], ...] = ()
    """(key, reason) of the messages whose every recipient the server refused
    for good (5xx): kept, not retried (`Store.mark_refused`)."""
    addresses: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(key, recipients) of every message this flush took up: a message kept
    from an earlier run went to the list of its day, which the terminal
    names (was "sent to email.recipients, run 9's report": review 13 #18)."""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.busy and not self.rejected


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next attempt after `attempts` failed ones (1-based)."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


def report_key(run_id: int, owner: str | None = None) -> str:
    return f"run-{run_id}:owner:{owner.lower()}" if owner else f"run-{run_id}:all"


# -- from the store to an audit ------------------------------------------------


PREFETCH_LINKS = 5_000
"""From this many links in the previous report's run, its flagged links are
read by a forked child while this process reads the run reported
(`previous_links_meanwhile`): 0.3 s of a 4.5 s report at 100,000 links."""


@dataclass(frozen=True)
class PreviousLinks:
    """The previous report's flagged links being read elsewhere: `run_id`'s,
    given by `links()` when needed; `drop()` stops the reading when the
    audit compares with another run after all."""

    run_id: int
    links: Callable[[], list[LinkResult]]
    drop: Callable[[], None] = lambda: None

    def for_run(self, store: Store, run_id: int) -> list[LinkResult]:
        """The links of `run_id`: read meanwhile when that is the run they
        are of, else (or when the reader died: the OOM killer, a `kill -9`;
        it only ever saved time) read from `store` now."""
        if self.run_id != run_id:
            self.drop()
        else:
            try:
                return self.links()
            except ChildDied as exc:
                log.warning("event=prefetch_lost run=%d error=%s: read in place", run_id, exc)
        return store.run_flagged_links(run_id)


@contextlib.contextmanager
def previous_links_meanwhile(path: str, run_id: int) -> Iterator[PreviousLinks | None]:
    """Start reading the flagged links of the run the report of `run_id`
    compares with, on the other core, for `load_audit(previous_read=...)`.

    The child opens its own connection, and nothing of SQLite may be copied
    into it (`monitor.forked`): with a store open in this process, they are
    read here and now instead. None (`load_audit` reads them itself) for a
    small run, a database in memory, or no previous report."""
    if path == ":memory:":
        yield None
        return
    with Store.open(path) as store:
        previous = store.previous_reported_run(run_id)
    if previous is None or previous.links < PREFETCH_LINKS:
        yield None
        return
    with Forked.start(functools.partial(_flagged_links, path, previous.id),
                      what=f"the process reading run {previous.id}'s flagged links",
                      fork=stores_open() == 0) as job:
        yield PreviousLinks(previous.id, job.result, job.stop)


def _flagged_links(path: str, run_id: int) -> list[LinkResult]:
    with Store.open(path) as store:
        return store.run_flagged_links(run_id)


def load_audit(store: Store, run_id: int, settings: Any, now: dt.datetime, *,
               previous_read: PreviousLinks | None = None) -> Audit:
    """Build the audit of `run_id` against the run of the previous report.

    `settings` is a `Settings` (its `report`, `pages` and `sites` are read).
    Of the previous run only the flagged links are loaded, and URL states
    only for this run's flagged links: that is all the audit reads of them
    (at 100,000 links, 90 % are ok). With `previous_read` (being read meanwhile
    by `previous_links_meanwhile`), they are taken from there when it read
    the run this audit compares with.
    """
    run = store.get_run(run_id)
    if run is None:
        raise DeliveryError(f"there is no run {run_id} in the database")
    if run.reported_at is not None:
        # Sent already: rendered again, it is the report of that day, with
        # what was known then (the rechecks made since would confirm the
        # failures it listed as suspected, and its numbers would change).
        now = run.reported_at
    links = store.run_links(run_id)
    pages = store.run_pages(run_id)
    previous = store.previous_reported_run(run_id)
    if previous is None and previous_read is not None:
        previous_read.drop()
    report: ReportSettings = settings.report
    watched = [p.url for p in getattr(settings, "pages", ())] + [
        s.url for s in getattr(settings, "sites", ())]
    site = report.site_name or default_site_name(watched + [p.url for p in pages])
    previous_links = previous_pages = None
    if previous is not None:
        previous_links = (previous_read.for_run(store, previous.id) if previous_read is not None
                          else store.run_flagged_links(previous.id))
        previous_pages = store.run_pages(previous.id)
        # A page that report could not fetch: its problems as last read, which
        # that report listed as still open.
        unread = [p.url for p in previous_pages if p.status == "error"]
        if unread:
            previous_links += store.flagged_links_last_read(unread, previous.id)
    previous_cited: set[tuple[str, str, str, str]] | None = None
    if previous is not None and previous_links:
        previous_cited = store.entry_links(previous.id, pages_with_gone_problems(previous_links, links))
    # The report before the previous one: a problem new now that it listed
    # (and the previous one listed as fixed) is "back". Loaded only when
    # some problem is new to the previous report's rows.
    before_previous: list[LinkResult] = []
    before_previous_run = None
    if previous is not None and previous_links is not None:
        listed = {(l.page, l.url) for l in previous_links}
        new_now = {l.url for l in links if l.status in FLAGGED and (l.page, l.url) not in listed}
        if new_now:
            before_previous_run = store.previous_reported_run(previous.id)
            if before_previous_run is not None:
                before_previous = store.run_flagged_links(before_previous_run.id, new_now)
    # A page this run could not fetch: its content notes as last read (the
    # page's citations only, for the pages that failed only).
    failed = {p.url for p in pages if p.status == "error"}
    last_read = store.citations_last_read(failed, run_id) if failed else []
    # What the report that last read each such page compared it with: its
    # problems keep the age that report gave them.
    earlier_links = [l for page, _ in last_read for l in store.flagged_links_last_read([page.url], page.run_id)]
    earlier_run = store.previous_reported_run(previous.id) if previous is not None and failed else None
    # What the previous report judged its rows with ("confirmed" or only
    # "watched"): the states at its sending, rechecks included.
    # Those of rows carried over from a page this run could not fetch too:
    # a moved link's age is its state's `status_since` as of then.
    previous_states = store.url_states_at(
        {l.url for l in previous_links or () if l.status == LinkStatus.ERROR or l.page in failed},
        previous.reported_at) if previous is not None and previous.reported_at is not None else {}
    flagged = {l.url for l in links if l.status in FLAGGED}
    states = (store.url_states(flagged) if run.reported_at is None
              else store.url_states_at(flagged, run.reported_at))
    # How often the flagged links that flap failed: their rows say so, not
    # "first seen" each time they fail. Their states' counters now; as of
    # then for a report already sent (a query, for those few URLs).
    flapping = {l.url for l in links if l.status in FLAGGED and l.flapping}
    flaps = ({url: state.fail_tally() for url, state in states.items() if url in flapping}
             if run.reported_at is None else store.fail_tallies(flapping, until=now) if flapping else {})
    return build_audit(
        run, links, pages,
        previous_links=previous_links,
        previous_pages=previous_pages,
        previous_cited=previous_cited,
        last_read=last_read,
        earlier_links=earlier_links,
        earlier_run=earlier_run,
        first_listed=store.first_listed(
            (l.page, l.url) for l in [*links, *(previous_links or ())]
            if l.reason == "invalid_url" and l.checked_at is None),
        previous_states=previous_states,
        states=states,
        now=now, settings=report, site_name=site, previous_run=previous,
        configured=[p.url for p in getattr(settings, "pages", ())],
        crawls=bool(getattr(settings, "sites", ())),
        site_cuts=store.run_site_cuts(run_id),
        before_previous=before_previous,
        before_previous_run=before_previous_run,
        acceptances=store.acceptances(),
        flaps=flaps,
    )


def owners_of(audit: Audit, settings: Any) -> dict[str, list[str]]:
    """owner address -> the pages they look after, from the config and the pages."""
    owners: dict[str, list[str]] = {}

    def add(owner: str, url: str) -> None:
        if owner and url not in owners.setdefault(owner.strip().lower(), []):
            owners[owner.strip().lower()].append(url)

    configured = {p.url: p.owner for p in getattr(settings, "pages", ()) if p.owner}
    for page in audit.pages:
        add(page.owner or configured.get(page.url, ""), page.url)
    return owners


# -- queueing ------------------------------------------------------------------


def queue_report(store: Store, audit: Audit, settings: _SettingsLike, now: dt.datetime, *,
                 owners: Mapping[str, Sequence[str]] | None = None,
                 full_report: str | None = None,
                 resend: bool = False) -> list[OutboxMessage]:
    """Queue the report for `email.recipients`, and each page owner's part.

    `owners` maps an address to its page URLs; None derives it from the
    configuration and the pages. An owner who already receives the whole
    report gets no separate part, nor does an owner whose pages have
    nothing to report. A report already queued is not queued again; with
    `resend=True` (`monitor report --send`) the messages of this run that
    did not go out are re-armed (rebuilt if their configured addresses
    changed), and only when every one went out is the whole report re-armed
    to go out once more. Returns the messages queued or re-armed by this call.
    """
    email = settings.email
    if not email.enabled:
        log.info("email.enabled is false: report of run %d not queued", audit.run.id)
        return []
    jobs: list[tuple[str, Audit, list[str]]] = [
        (report_key(audit.run.id), audit, list(email.recipients))]
    everyone = {r.lower() for r in email.recipients}
    for owner, pages in (owners if owners is not None else owners_of(audit, settings)).items():
        if owner.lower() in everyone:
            continue
        part = audit_for_pages(audit, pages, owner)
        if _has_news(part):
            jobs.append((report_key(audit.run.id, owner), part, [owner]))
    resend_keys: set[str] | None = None
    if resend:
        # `monitor report --send` after a partial failure: only what did not
        # go out (an editor who got their part must not get it twice); the
        # whole report again, on purpose, only once every part went out.
        before = store.run_messages(audit.run.id)
        unsent = {m.key for m in before if m.sent_at is None}
        known = {m.key for m in before}
        if unsent or any(key not in known for key, _, _ in jobs):
            resend_keys: set[str] | None = unsent
        else:
            resend_keys = None  # everything went out: all of it, once more
    queued = []
    for key, part, recipients in jobs:
        again = resend and (resend_keys is None or key in resend_keys)
        message = _queue_one(store, key, part, recipients, email, now, full_report, again)
        if message is not None:
            queued.append(message)
    if resend and resend_keys:
        # The follow-up copies of recipients a server put off (4xx): due now.
        for key in sorted(resend_keys - {key for key, _, _ in jobs}):
            store.requeue_message(key, now)
            queued.append(store.get_message(key))  # type: ignore[arg-type]
    return queued


def _queue_one(store: Store, key: str, audit: Audit, recipients: list[str],
               email: EmailSettings, now: dt.datetime, full_report: str | None,
               resend: bool) -> OutboxMessage | None:
    kept = store.get_message(key)
    if kept is not None:
        if not resend:
            log.info("report %s is already in the outbox; not queued again", key)
            return None
        if kept.sent_at is None and [r.lower() for r in kept.recipients] != [r.lower() for r in recipients]:
            # Refused or kept for addresses corrected in the configuration
            # since: the same report (same Message-ID) to the addresses of now.
            msg = build_report_message(audit, sender=email.sender, recipients=recipients,
                                       message_id=kept.message_id, full_report=full_report)
            store.replace_message(key, recipients, msg.as_bytes(), now)
            log.info("report %s rebuilt for %s and re-armed", key, ", ".join(recipients))
            return store.get_message(key)
        store.requeue_message(key, now)
        log.info("report %s re-armed to be sent again", key)
        return store.get_message(key)
    message_id = message_id_for(audit.run.id, key, email.sender, store.database_id)
    msg = build_report_message(audit, sender=email.sender, recipients=recipients,
                               message_id=message_id, full_report=full_report)
    return store.enqueue_message(key, audit.run.id, recipients, msg.as_bytes(), message_id, now)


def _has_news(audit: Audit) -> bool:
    c = audit.counts
    return bool(c.open or c.fixed or c.content or c.pages_failed or c.watching)


# -- flushing ------------------------------------------------------------------


OLD_PLACEHOLDER_TO = ("webmaster@example.org",)
OLD_PLACEHOLDER_FROM = "monitor@example.org"
"""The addresses `[email]` defaulted to before review 13 #1: a report kept
in the outbox from then is addressed to them."""


def readdressed(message: OutboxMessage, email: EmailSettings) -> OutboxMessage:
    """A webmaster's copy kept from before the upgrade, addressed to the old
    placeholder, sent to today's `email.recipients` (and from today's
    `sender`) instead: the user has written their addresses since (the
    commands that mail refuse to start without them), and the automatic
    retry of `run` and `serve` sent the report of their site to
    webmaster@example.org (review 13b #1). `report --run N --send`
    re-addresses it the same way, by rendering it again. A message to any
    other address, or a page owner's, is sent as it was kept."""
    if (message.key.partition(":")[2] != "all" or tuple(message.recipients) != OLD_PLACEHOLDER_TO
            or not email.recipients or tuple(email.recipients) == OLD_PLACEHOLDER_TO):
        return message
    from email import message_from_bytes, policy

    parsed = message_from_bytes(message.message, policy=policy.SMTP)
    del parsed["To"]
    parsed["To"] = ", ".join(email.recipients)
    if email.sender and str(parsed.get("From", "")).strip() == OLD_PLACEHOLDER_FROM:
        del parsed["From"]
        parsed["From"] = email.sender
    log.info("report %s was kept addressed to %s, the old default: sent to %s instead", message.key,
             OLD_PLACEHOLDER_TO[0], ", ".join(email.recipients))
    return replace(message, recipients=tuple(email.recipients), message=parsed.as_bytes())


async def flush_outbox(store: Store, email_settings: EmailSettings, password: str | None,
                       now: dt.datetime, *,
                       tls_context: ssl.SSLContext | None = None,
                       lock_ttl: dt.timedelta = OUTBOX_LOCK_TTL) -> FlushResult:
    """Send every due message once; keep the failures with a backoff.

    When the server itself is the problem (down, timing out, refusing the
    login), the remaining due messages are not tried this round: they keep
    the same error and backoff, instead of each waiting for the same timeout.

    The outbox lock is renewed before each message, so a long flush (many
    page owners, a slow server) keeps it for as long as it makes progress;
    if it was taken over meanwhile (this process frozen past `lock_ttl`),
    the flush stops and leaves the rest to the new holder rather than
    sending alongside it.
    """
    owner = lock_owner()
    # The lock's expiry is wall-clock time, whatever `now` the job runs at
    # (the demo's "last week"): other processes judge it by their own clock.
    if not store.acquire_lock(OUTBOX_LOCK, owner, _wall_clock(), lock_ttl):
        log.info("outbox is being flushed by another process; skipped")
        return FlushResult(busy=True)
    sent: list[str] = []
    failed: list[tuple[str, str]] = []
    refused: list[tuple[str, str, str]] = []
    refused_for_good: list[tuple[str, str]] = []
    addresses: list[tuple[str, tuple[str, ...]]] = []
    server_down: DeliveryError | None = None
    try:
        for message in store.due_messages(now):
            if not store.refresh_lock(OUTBOX_LOCK, owner, _wall_clock(), lock_ttl):
                log.warning("the outbox lock was taken over (this flush was held up past its %d s); "
                            "the messages left are for its new holder", lock_ttl.total_seconds())
                break
            message = readdressed(message, email_settings)
            addresses.append((message.key, tuple(message.recipients)))
            if server_down is None:
                try:
                    rejected, stopping = await _uncancelled(send_message(
                        message.message, message.recipients, email_settings, password,
                        tls_context=tls_context))
                except DeliveryError as exc:
                    if _refused_for_good(exc):
                        store.mark_refused(message.id, str(exc))
                        refused_for_good.append((message.key, str(exc)))
                        log.warning("report %s refused by the mail server for every recipient, not "
                                    "retried (check the address in the configuration): %s", message.key, exc)
                        continue
                    if _server_level(exc):
                        server_down = exc
                    _keep(store, message, exc, now)
                    failed.append((message.key, str(exc)))
                    continue
                store.mark_sent(message.id, now)
                sent.append(message.key)
                log.info("report %s delivered to %s", message.key, ", ".join(message.recipients))
                for address, answer in rejected.items():
                    refused.append((message.key, address, answer))
                    _refused_recipient(store, message, address, answer, now)
                if stopping:
                    raise asyncio.CancelledError
            else:
                _keep(store, message, server_down, now)
                failed.append((message.key, str(server_down)))
    finally:
        store.release_lock(OUTBOX_LOCK, owner)
    return FlushResult(tuple(sent), tuple(failed), tuple(refused), rejected=tuple(refused_for_good),
                       addresses=tuple(addresses))


def _wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def _uncancelled(sending: Awaitable[T]) -> tuple[T, bool]:
    """Finish a send that has begun before honouring a cancellation (SIGTERM).

    Cancelled between the server's "250 OK" and `mark_sent`, the message
    would stay due and the shutdown's last flush would send it again. So the
    send runs to its end (bounded by `email.timeout`); the second value says
    that a cancellation arrived meanwhile, for the caller to raise once the
    message is marked.
    """
    task = asyncio.ensure_future(sending)
    try:
        return await asyncio.shield(task), False
    except asyncio.CancelledError:
        if task.cancelled():
            raise
        try:
            return await task, True
        except Exception:
            raise asyncio.CancelledError from None


def _refused_for_good(exc: DeliveryError) -> bool:
    """Every recipient refused with a permanent code (5xx, "no such user"):
    the next attempt gets the same answer, so only a corrected address
    helps. A 4xx among them (mailbox busy) is worth the backoff."""
    cause = exc.__cause__
    return (isinstance(cause, aiosmtplib.SMTPRecipientsRefused) and bool(cause.recipients)
            and all(500 <= r.code < 600 for r in cause.recipients))


def _server_level(exc: DeliveryError) -> bool:
    """Failures that every message to this server would hit the same way."""
    cause = exc.__cause__
    return cause is None or isinstance(cause, (
        aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPAuthenticationError,
        aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPNotSupported, OSError, ssl.SSLError))


def _keep(store: Store, message: OutboxMessage, exc: DeliveryError, now: dt.datetime) -> None:
    attempts = message.attempts + 1
    retry_at = now + backoff(attempts)
    store.mark_failed(message.id, str(exc), retry_at)
    # "due again from", not "next attempt at": under `monitor run` from cron
    # no process is there to try at that time; whoever flushes next sends it.
    log.warning("report %s not delivered (attempt %d), kept in the outbox, due again from %s: %s",
                message.key, attempts, retry_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip(), exc)


def _refused_recipient(store: Store, message: OutboxMessage, address: str, answer: str,
                       now: dt.datetime) -> None:
    if answer[:1] == "4":
        key = f"{message.key}:retry:{address.lower()}"
        store.enqueue_message(key, message.run_id, [address], message.message,
                              message.message_id, now)
        log.warning("report %s: the server refused %s for now (%s); a copy for that address "
                    "is queued for retry", message.key, address, answer)
    else:
        log.warning("report %s: the server refused the recipient %s (%s); the others received it. "
                  "Check the address in the configuration", message.key, address, answer)
