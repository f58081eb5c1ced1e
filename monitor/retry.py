"""When to try a URL again, and how long to wait first. Pure.

Kept apart from the request loop (as lychee does) so the policy reads in one
screen and is tested as a table. The aim is fewer false "error" verdicts at
scale (lychee #634: hundreds of transient failures in 17k links) without
hammering a server that asked us to slow down.

What is transient: a timeout, a reset connection, 408, 429 and the 5xx
answers a load balancer gives while a backend restarts (500, 502, 503, 504).
What is not: DNS failures, refused connections (a service that is down stays
down for longer than a backoff), TLS errors, policy refusals and every other
4xx: asking again gets the same answer and costs the server a request.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random

from monitor.types import ErrorKind, Observation

__all__ = [
    "RETRY_STATUSES",
    "RETRY_ERRORS",
    "should_retry",
    "backoff_delay",
    "parse_retry_after",
    "worth_waiting",
]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
RETRY_ERRORS = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECTION_RESET})


def should_retry(obs: Observation, attempt: int, retries: int) -> bool:
    """True when attempt number `attempt` (1-based) may be followed by another.

    `retries` is the number of extra attempts allowed after the first.
    """
    if attempt > retries:
        return False
    if obs.error_kind is not None:
        return obs.error_kind in RETRY_ERRORS
    return obs.http_status in RETRY_STATUSES


def backoff_delay(attempt: int, base: float, retry_after: float | None, cap: float,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait after attempt number `attempt` (1-based) failed.

    A server's Retry-After wins (it knows its load), capped at `cap`.
    Otherwise exponential backoff with jitter, base * 2**(attempt-1) scaled by
    a random factor in [0.5, 1.0): many links failing on one host at once do
    not come back in lockstep.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    exponential = base * 2 ** max(attempt - 1, 0)
    factor = 0.5 + (rng or random).random() / 2
    return min(exponential * factor, cap)


def worth_waiting(retry_after: float | None, cap: float) -> bool:
    """A server asking for more than `cap` seconds will still refuse after
    `cap` seconds: retrying early wastes its patience and our time."""
    return retry_after is None or retry_after <= cap


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP date.

    None when absent or unreadable; a date in the past is 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # "²".isdigit() too
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max((when - now).total_seconds(), 0.0)
