"""retry.py: the retry predicate and backoff as tables."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from monitor.retry import backoff_delay, parse_retry_after, should_retry, worth_waiting
from monitor.types import ErrorKind, Observation

NOW = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.timezone.utc)


def obs(status: int | None = None, kind: ErrorKind | None = None) -> Observation:
    return Observation(url="https://example.org/", checked_at=NOW, http_status=status, error_kind=kind)


@pytest.mark.parametrize(
    ("observation", "expected"),
    [
        (obs(500), True),
        (obs(502), True),
        (obs(503), True),
        (obs(504), True),
        (obs(429), True),
        (obs(408), True),
        (obs(kind=ErrorKind.TIMEOUT), True),
        (obs(kind=ErrorKind.CONNECTION_RESET), True),
        (obs(200), False),
        (obs(301), False),
        (obs(404), False),
        (obs(403), False),
        (obs(410), False),
        (obs(501), False),
        (obs(kind=ErrorKind.DNS), False),
        (obs(kind=ErrorKind.CONNECTION_REFUSED), False),
        (obs(kind=ErrorKind.TLS), False),
        (obs(kind=ErrorKind.PRIVATE_ADDRESS), False),
        (obs(kind=ErrorKind.REDIRECT_LOOP), False),
        (obs(kind=ErrorKind.INVALID_URL), False),
        # An error wins over the status it came with (a body that timed out).
        (Observation(url="u", checked_at=NOW, http_status=503, error_kind=ErrorKind.DNS), False),
    ],
)
def test_should_retry_transient_only(observation: Observation, expected: bool) -> None:
    assert should_retry(observation, attempt=1, retries=2) is expected


@pytest.mark.parametrize(("attempt", "retries", "expected"), [(1, 2, True), (2, 2, True), (3, 2, False), (1, 0, False)])
def test_should_retry_counts_attempts(attempt: int, retries: int, expected: bool) -> None:
    assert should_retry(obs(503), attempt, retries) is expected


@pytest.mark.parametrize("attempt", [1, 2, 3, 4])
def test_backoff_is_exponential_with_jitter(attempt: int) -> None:
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, 0.5, None, 100.0, rng) for _ in range(200)]
    full = 0.5 * 2 ** (attempt - 1)
    assert all(full / 2 <= d < full for d in delays)
    assert len(set(delays)) > 100  # jittered, not constant


def test_backoff_is_capped() -> None:
    assert backoff_delay(20, 0.5, None, 7.0) == 7.0


@pytest.mark.parametrize(("retry_after", "cap", "expected"), [(1.0, 60.0, 1.0), (120.0, 60.0, 60.0), (0.0, 60.0, 0.0), (-5.0, 60.0, 0.0)])
def test_backoff_honours_retry_after_up_to_cap(retry_after: float, cap: float, expected: float) -> None:
    assert backoff_delay(1, 0.5, retry_after, cap) == expected


@pytest.mark.parametrize(("retry_after", "expected"), [(None, True), (30.0, True), (60.0, True), (3600.0, False)])
def test_worth_waiting(retry_after: float | None, expected: bool) -> None:
    assert worth_waiting(retry_after, 60.0) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("Mon, 23 Nov 2026 06:00:30 GMT", 30.0),
        ("Mon, 23 Nov 2026 05:00:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("-1", None),
        ("1.5", None),
        # Unreadable values a server may send: unreadable, never an exception
        # (one crashed the whole run).
        ("\u00b2", None),  # "²".isdigit() is True; float("²") raises
        ("\u0661\u0662", None),  # Arabic-Indic digits are not delta-seconds
        ("01 Jan 99999999999999999999 00:00:00 GMT", None),  # OverflowError
        ("Mon, 23 Nov 2026 06:00:30 +9999", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected
