"""check.py and client.py against real aiohttp servers on 127.0.0.1.

Where loopback must be reached, settings allow 127.0.0.0/8 (the
`checker_settings` default); the SSRF tests turn that off and use connect_to
to give the test server a public-looking name.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

from monitor.check import Checker, Limiter, error_kind_of, sibling_url
from monitor.client import BROWSER_ACCEPT, Client
from monitor.config import CheckerSettings
from monitor.netguard import PrivateAddressError
from monitor.types import ErrorKind, Hop
from yarl import URL

if TYPE_CHECKING:
    from conftest import CannedDNS, Site, TlsCa

Settings = Callable[..., CheckerSettings]
OpenClient = Callable[..., Awaitable[Client]]
Canned = Callable[[dict[str, list[str]]], "CannedDNS"]


async def checker(client_for: OpenClient, settings: CheckerSettings) -> Checker:
    return Checker(await client_for(settings), settings)


def mapped(site: Site, *names: str) -> tuple[tuple[str, str], ...]:
    """connect_to pairs sending each name (port 80) to the test server."""
    return tuple((f"{name}:80", f"127.0.0.1:{site.port}") for name in names)


# -- answers -------------------------------------------------------------------


async def test_ok_page_gives_status_title_meta_and_text(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings())
    obs = await c.check(site.url("/ok"))
    assert (obs.http_status, obs.error_kind, obs.method, obs.attempts) == (200, None, "GET", 1)
    assert (obs.title, obs.meta_title) == ("OK page", "A cited article")
    assert obs.text == "Hello Some visible text."
    assert obs.final_url == site.url("/ok") and obs.redirects == ()
    assert obs.content_type.startswith("text/html")
    assert obs.server.startswith("Python") and obs.content_hash
    assert obs.checked_at.tzinfo is not None and obs.bytes_read == len(obs.text) or obs.bytes_read > 0


async def test_requests_carry_the_user_agent_and_browser_accept(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(user_agent="test-monitor/1 (+mailto:x@example.org)"))
    await c.check(site.url("/ok"))
    headers = site.requests[0].headers
    assert headers["User-Agent"] == "test-monitor/1 (+mailto:x@example.org)"
    assert headers["Accept"] == BROWSER_ACCEPT
    assert "gzip" in headers["Accept-Encoding"]


async def test_windows_1252_title_is_decoded(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings())).check(site.url("/cp1252"))
    assert obs.title == "Sjögren’s – café"


async def test_pdf_has_no_title(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings())).check(site.url("/pdf"))
    assert (obs.http_status, obs.title, obs.text) == (200, "", "")
    assert obs.content_type == "application/pdf" and obs.content_hash


async def test_get_refused_falls_back_to_head(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings())).check(site.url("/only-head"))
    assert (obs.http_status, obs.method) == (200, "HEAD")
    assert [r.method for r in site.requests] == ["GET", "HEAD"]


async def test_method_refused_both_ways_keeps_the_get_answer(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings())).check(site.url("/status/405"))
    assert (obs.http_status, obs.method, obs.title) == (405, "GET", "Status 405")
    assert [r.method for r in site.requests] == ["GET", "HEAD"]


async def test_big_body_is_cut_at_the_bound_not_drained(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(timeout=5.0, max_body_bytes=65536))
    obs = await c.check(site.url("/big?mb=20"))
    assert (obs.http_status, obs.error_kind) == (200, None)
    assert obs.bytes_read == 65536
    assert obs.title == ""
    await asyncio.sleep(0.05)  # let the server notice the closed connection
    assert site.counters["big/sent"] < 20 * 1024 * 1024


# -- retries -------------------------------------------------------------------


async def test_429_with_retry_after_then_ok(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(retries=2, retry_after_max=2.0))
    obs = await c.check(site.url("/rate/1?after=1"))
    assert (obs.http_status, obs.attempts, obs.error_kind) == (200, 2, None)
    first, second = site.requests
    assert second.at - first.at >= 0.9  # Retry-After: 1 honoured


async def test_429_after_all_retries_keeps_status_429(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(retries=1))
    obs = await c.check(site.url("/rate/9?after=0"))
    assert (obs.http_status, obs.attempts, obs.retry_after) == (429, 2, 0.0)
    assert site.hits("/rate/9") == 2


async def test_retry_after_beyond_the_cap_is_not_waited_for(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(retries=2, retry_after_max=1.0))
    obs = await c.check(site.url("/rate/9?after=3600"))
    assert (obs.http_status, obs.attempts, obs.retry_after) == (429, 1, 3600.0)


async def test_503_always_is_tried_retries_plus_one_times(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(retries=2))
    obs = await c.check(site.url("/unavailable"))
    assert (obs.http_status, obs.attempts) == (503, 3)
    assert site.hits("/unavailable") == 3


async def test_404_is_not_retried(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings(retries=2))).check(site.url("/status/404"))
    assert (obs.http_status, obs.attempts) == (404, 1)


# -- redirects -----------------------------------------------------------------


async def test_redirect_chain_is_recorded_hop_by_hop(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings())).check(site.url("/redirect/3"))
    assert obs.http_status == 200 and obs.title == "OK page"
    assert obs.redirects == (
        Hop(site.url("/redirect/3"), 302, site.url("/redirect/2")),
        Hop(site.url("/redirect/2"), 302, site.url("/redirect/1")),
        Hop(site.url("/redirect/1"), 302, site.url("/redirect/0")),
    )
    assert obs.final_url == site.url("/redirect/0")


async def test_redirect_loop_is_detected_with_its_chain(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings())).check(site.url("/loop/a"))
    assert obs.error_kind is ErrorKind.REDIRECT_LOOP
    assert [h.url for h in obs.redirects] == [site.url("/loop/a"), site.url("/loop/b")]
    assert obs.redirects[-1].location == site.url("/loop/a")
    assert site.hits("/loop/a") == 1


async def test_too_many_redirects(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings(max_redirects=20))).check(site.url("/redirect/30"))
    assert obs.error_kind is ErrorKind.TOO_MANY_REDIRECTS
    assert len(obs.redirects) == 21
    assert site.hits("/redirect/9") == 0  # not followed further


async def test_redirect_to_itself_with_a_cookie_is_not_a_loop(site: Site, checker_settings: Settings,
                                                             client_for: OpenClient) -> None:
    settings = checker_settings(connect_to=mapped(site, "journal.example.com"))
    obs = await (await checker(client_for, settings)).check("http://journal.example.com/cookie-dance")
    assert (obs.http_status, obs.error_kind, len(obs.redirects)) == (200, None, 1)


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://ftp.example.org/pub/", "javascript:alert(1)", "data:text/html,hi"])
async def test_redirect_to_another_scheme_is_not_followed(site: Site, checker_settings: Settings, client_for: OpenClient, target: str) -> None:
    url = str(URL(site.url("/goto")).with_query(to=target))
    obs = await (await checker(client_for, checker_settings())).check(url)
    assert (obs.error_kind, obs.http_status) == (ErrorKind.UNSUPPORTED_SCHEME, 302)
    assert obs.redirects[0].location.split(":")[0] == target.split(":")[0]


async def test_relative_location_is_resolved(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    url = str(URL(site.url("/goto")).with_query(to="../ok", status="301"))
    obs = await (await checker(client_for, checker_settings())).check(url)
    assert obs.redirects == (Hop(url, 301, site.url("/ok")),)
    assert obs.http_status == 200


# -- network failures ----------------------------------------------------------


async def test_timeout(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings(timeout=0.5))).check(site.url("/slow?delay=3"))
    assert (obs.error_kind, obs.http_status) == (ErrorKind.TIMEOUT, None)
    assert obs.elapsed_ms < 2500


async def test_timeout_is_retried(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    # timeout 1 s, not 0.3: the site serves from this test's own event loop,
    # and on a busy machine 0.3 s could pass before it even counted the hit.
    obs = await (await checker(client_for, checker_settings(timeout=1.0, retries=1))).check(site.url("/slow?delay=3"))
    assert (obs.error_kind, obs.attempts) == (ErrorKind.TIMEOUT, 2)
    assert site.hits("/slow") == 2


async def test_a_host_that_stopped_answering_is_not_retried_link_after_link(
        site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    """A server that accepts and never answers (a firewall now dropping the
    monitor's packets): each of its links cost (1 + retries) x timeout; 80
    links took 85 s at timeout 1 (robust9 #7), hours with the defaults.
    After SILENT_HOST_TIMEOUTS timeouts in a row its timeouts are not
    retried, and their detail says why; the first ones were retried."""
    from monitor.check import SILENT_HOST_TIMEOUTS

    c = await checker(client_for, checker_settings(timeout=0.3, retries=2, backoff_base=0.01, per_host=4))
    urls = [site.url(f"/slow?delay=3&n={i}") for i in range(16)]
    results = [obs async for obs in c.check_many(urls)]
    assert all(o.error_kind is ErrorKind.TIMEOUT for o in results)
    said = [o for o in results if "the host stopped answering" in o.error_detail]
    assert len(said) >= 16 - 4 - SILENT_HOST_TIMEOUTS, [o.error_detail for o in results]
    assert any(o.attempts > 1 for o in results)  # retried before the host was taken for silent
    assert site.hits("/slow") == sum(o.attempts for o in results) <= 16 + 2 * (4 + SILENT_HOST_TIMEOUTS)  # was 48
    assert c.stats["retry/skipped_silent_host"] == len(said)


async def test_an_answer_between_timeouts_keeps_a_slow_host_retried(
        site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    """Only timeouts *in a row* make a host silent: a host that answers
    between its slow pages is a slow host, whose timeouts are retried."""
    c = await checker(client_for, checker_settings(timeout=0.2, retries=1, backoff_base=0.01))
    for i in range(5):  # 10 timeouts in all, never more than 2 in a row
        slow = await c.check(site.url(f"/slow?delay=3&n={i}"))
        assert (slow.error_kind, slow.attempts) == (ErrorKind.TIMEOUT, 2)
        assert "stopped answering" not in slow.error_detail
        assert (await c.check(site.url("/ok"))).http_status == 200


async def test_slow_drip_is_ended_by_the_deadline(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    # A byte every 0.1 s never trips a read timeout; only the deadline ends it.
    obs = await (await checker(client_for, checker_settings(timeout=0.5))).check(site.url("/drip?every=0.1"))
    assert (obs.http_status, obs.error_kind) == (200, ErrorKind.TIMEOUT)
    assert obs.title == "Drip" and obs.bytes_read > 40
    assert obs.elapsed_ms < 2500


async def test_special_use_name_is_a_dns_failure(checker_settings: Settings, client_for: OpenClient,
                                                  canned_dns: Canned) -> None:
    dns = canned_dns({})
    client = await client_for(checker_settings(), dns=dns)
    obs = await Checker(client, client.settings).check("http://doi.invalid/10.1000/1")
    assert obs.error_kind is ErrorKind.DNS
    assert "not looked up" in obs.error_detail
    assert dns.asked == []


async def test_unknown_name_is_a_dns_failure(checker_settings: Settings, canned_dns: Canned) -> None:
    async with Client(checker_settings(retries=2), dns=canned_dns({})) as client:
        obs = await Checker(client, client.settings).check("https://no-such-host.example.com/")
    assert (obs.error_kind, obs.attempts) == (ErrorKind.DNS, 1)


async def test_refused_port(free_port: int, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings(retries=2))).check(f"http://127.0.0.1:{free_port}/")
    assert (obs.error_kind, obs.attempts) == (ErrorKind.CONNECTION_REFUSED, 1)


@pytest.mark.parametrize(("url", "kind"), [("ftp://ftp.example.org/x", ErrorKind.UNSUPPORTED_SCHEME),
                                           ("mailto:a@b.org", ErrorKind.UNSUPPORTED_SCHEME),
                                           ("http:///path", ErrorKind.INVALID_URL),
                                           ("http://exa mple.org:99999/", ErrorKind.INVALID_URL)])
async def test_uncheckable_urls(url: str, kind: ErrorKind, checker_settings: Settings, client_for: OpenClient) -> None:
    obs = await (await checker(client_for, checker_settings())).check(url)
    assert obs.error_kind is kind and obs.attempts == 0


# -- TLS -----------------------------------------------------------------------


async def test_self_signed_certificate_is_a_tls_error(make_site: Callable[..., Awaitable[Site]], tls_ca: TlsCa,
                                                      checker_settings: Settings, client_for: OpenClient) -> None:
    site = await make_site(ssl_context=tls_ca.server_context())
    obs = await (await checker(client_for, checker_settings(retries=2))).check(site.url("/ok", "localhost"))
    assert (obs.error_kind, obs.attempts) == (ErrorKind.TLS, 1)
    assert "certificate" in obs.error_detail
    assert site.requests == []


async def test_private_ca_trusted_via_ssl_cert_file(make_site: Callable[..., Awaitable[Site]], tls_ca: TlsCa,
                                                    checker_settings: Settings, client_for: OpenClient,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    site = await make_site(ssl_context=tls_ca.server_context())
    monkeypatch.setenv("SSL_CERT_FILE", tls_ca.ca_file)
    obs = await (await checker(client_for, checker_settings())).check(site.url("/ok", "localhost"))
    assert (obs.http_status, obs.title) == (200, "OK page")


async def test_private_ca_trusted_via_ca_file(make_site: Callable[..., Awaitable[Site]], tls_ca: TlsCa,
                                              checker_settings: Settings, client_for: OpenClient) -> None:
    site = await make_site(ssl_context=tls_ca.server_context())
    obs = await (await checker(client_for, checker_settings(ca_file=tls_ca.ca_file))).check(site.url("/ok", "localhost"))
    assert (obs.http_status, obs.title) == (200, "OK page")


# -- SSRF ----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "LOCALHOST."])
async def test_private_targets_are_refused_before_any_request(host: str, site: Site, checker_settings: Settings,
                                                              client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(allow_private_networks=False, retries=2))
    obs = await c.check(site.url("/ok", host))
    assert (obs.error_kind, obs.attempts, obs.http_status) == (ErrorKind.PRIVATE_ADDRESS, 1, None)
    assert site.requests == []


@pytest.mark.parametrize("target_host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_redirect_from_a_public_name_to_a_private_address_is_refused(
        target_host: str, site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    settings = checker_settings(allow_private_networks=False, connect_to=mapped(site, "journal.example.com"))
    secret = site.url("/ok", target_host)
    url = str(URL("http://journal.example.com/goto").with_query(to=secret))
    obs = await (await checker(client_for, settings)).check(url)
    assert obs.error_kind is ErrorKind.PRIVATE_ADDRESS
    assert obs.redirects[0].location.endswith("/ok")
    assert [r.path for r in site.requests] == ["/goto"]  # the private target saw nothing


async def test_dns_answer_with_a_private_address_is_refused(site: Site, checker_settings: Settings,
                                                            client_for: OpenClient, canned_dns: Canned) -> None:
    # DNS rebinding: a public name answering with loopback at check time.
    dns = canned_dns({"rebind.example.com": ["127.0.0.1"]})
    client = await client_for(checker_settings(allow_private_networks=False), dns=dns)
    obs = await Checker(client, client.settings).check(f"http://rebind.example.com:{site.port}/ok")
    assert obs.error_kind is ErrorKind.PRIVATE_ADDRESS
    assert dns.asked == ["rebind.example.com"] and site.requests == []


async def test_session_used_directly_is_guarded_too(site: Site, checker_settings: Settings,
                                                    client_for: OpenClient) -> None:
    # Other modules may use client.session with aiohttp's own redirects.
    settings = checker_settings(allow_private_networks=False, connect_to=mapped(site, "journal.example.com"))
    client = await client_for(settings)
    url = URL("http://journal.example.com/goto").with_query(to=site.url("/ok"))
    with pytest.raises(PrivateAddressError):
        async with client.session.get(url):
            pass
    with pytest.raises(PrivateAddressError):
        async with client.session.get(site.url("/ok")):
            pass
    assert [r.path for r in site.requests] == ["/goto"]


async def test_connect_to_keeps_the_host_header(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    settings = checker_settings(allow_private_networks=False, connect_to=mapped(site, "pubmed.ncbi.nlm.nih.gov"))
    obs = await (await checker(client_for, settings)).check("http://pubmed.ncbi.nlm.nih.gov/echo-host")
    assert (obs.http_status, obs.title) == (200, "pubmed.ncbi.nlm.nih.gov")
    assert obs.final_url == "http://pubmed.ncbi.nlm.nih.gov/echo-host"


async def test_connect_to_refuse_fails_unmapped_names(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    settings = checker_settings(connect_to=mapped(site, "www.sclero.org") + (("*", "refuse"),))
    c = await checker(client_for, settings)
    assert (await c.check("http://www.sclero.org/ok")).http_status == 200
    assert (await c.check("https://pubmed.ncbi.nlm.nih.gov/1/")).error_kind is ErrorKind.DNS


# -- scheduling ----------------------------------------------------------------


async def collect(c: Checker, urls: list[str]) -> list[Any]:
    return [obs async for obs in c.check_many(urls)]


async def test_per_host_limit_holds_while_all_global_slots_are_used(site: Site, checker_settings: Settings,
                                                                    client_for: OpenClient) -> None:
    hosts = [f"h{i}.example.org" for i in range(4)]
    # Two ports per name: aiohttp's own per-host limit counts host:port, ours
    # counts the host, which is what a server's operator sees.
    pairs = mapped(site, *hosts) + tuple((f"{h}:8080", f"127.0.0.1:{site.port}") for h in hosts)
    settings = checker_settings(concurrency=8, per_host=2, connect_to=pairs)
    # Host by host, as a page lists them: a single queue would stall on h0,
    # which has the most links and is left alone at the end.
    counts = {"h0.example.org": 8, "h1.example.org": 2, "h2.example.org": 2, "h3.example.org": 2}
    urls = [f"http://{h}{port}/hold?ms=60&n={n}" for h in hosts for n in range(counts[h]) for port in ("", ":8080")]
    results = await collect(await checker(client_for, settings), urls)
    assert len(results) == 28 and all(o.http_status == 200 for o in results)
    assert max(site.max_active[h] for h in hosts) == 2
    assert site.max_total == 8


async def test_each_distinct_url_is_checked_once(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    urls = [site.url(f"/hold?ms=1&n={n % 5}") for n in range(20)]
    results = await collect(await checker(client_for, checker_settings()), urls)
    assert sorted(o.url for o in results) == sorted(set(urls))
    assert len(site.requests) == 5


async def test_check_many_reports_uncheckable_urls_without_requests(site: Site, checker_settings: Settings,
                                                                    client_for: OpenClient) -> None:
    results = await collect(await checker(client_for, checker_settings()), ["ftp://x.org/", site.url("/ok"), "http:///x"])
    kinds = {o.url: o.error_kind for o in results}
    assert kinds == {"ftp://x.org/": ErrorKind.UNSUPPORTED_SCHEME, site.url("/ok"): None, "http:///x": ErrorKind.INVALID_URL}


async def test_retry_sleep_does_not_hold_the_global_slot(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    settings = checker_settings(concurrency=1, per_host=1, retries=1, backoff_base=0.6,
                                connect_to=mapped(site, "down.example.org", "up.example.org"))
    # down.example.org has the longer queue, so it starts; its second URL
    # waits for the host slot, held through the first one's backoff sleep.
    urls = [f"http://down.example.org/unavailable?n={n}" for n in range(2)] + ["http://up.example.org/hold?ms=5"]
    await collect(await checker(client_for, settings), urls)
    order = [r.host.split(".")[0] for r in site.requests]
    # The other host's request ran while the first failing URL slept, with
    # one global slot: the sleep did not hold it.
    assert order == ["down", "up", "down", "down", "down"]


async def test_the_host_with_the_longest_queue_starts_first(site: Site, checker_settings: Settings,
                                                           client_for: OpenClient) -> None:
    # Round robin in page order would leave busy.example.org alone at the
    # end, its four URLs one after another (per_host 1): six rounds instead of four.
    names = ["a.example.org", "b.example.org", "c.example.org", "d.example.org", "busy.example.org"]
    settings = checker_settings(concurrency=2, per_host=1, connect_to=mapped(site, *names))
    urls = [f"http://{h}/hold?ms=30" for h in names[:4]] + [f"http://busy.example.org/hold?ms=30&n={n}" for n in range(4)]
    results = await collect(await checker(client_for, settings), urls)
    assert len(results) == 8 and all(o.http_status == 200 for o in results)
    order = [r.host for r in site.requests]
    assert order[0] == "busy.example.org"
    # busy.example.org is never left waiting for the others: one of its URLs in every pair
    assert all("busy.example.org" in order[i:i + 2] for i in range(0, 8, 2))
    assert max(site.max_active.values()) == 1 and site.max_total == 2


async def test_urls_expected_to_be_slow_start_first(site: Site, checker_settings: Settings,
                                                    client_for: OpenClient) -> None:
    names = ["busy.example.org", "flaky.example.org"]
    settings = checker_settings(concurrency=1, per_host=1, connect_to=mapped(site, *names))
    busy = [f"http://busy.example.org/hold?ms=5&n={n}" for n in range(4)]
    flaky = ["http://flaky.example.org/ok", "http://flaky.example.org/pdf"]
    c = await checker(client_for, settings)
    results = [obs async for obs in c.check_many(busy + flaky, first={flaky[1]})]
    assert len(results) == 6
    # flaky.example.org has the shorter queue, but the URL that failed last
    # time goes first, ahead of its own host's other URL too.
    assert (site.requests[0].host, site.requests[0].path) == ("flaky.example.org", "/pdf")
    assert [r.host for r in site.requests[1:]].count("busy.example.org") == 4


async def test_a_redirects_next_hop_gives_way_to_new_checks(site: Site, checker_settings: Settings,
                                                            client_for: OpenClient) -> None:
    # A link's first answer says whether it needs a retry chain; a redirect's
    # next hop is one more request, whenever. With one slot, the hop waits
    # until no new check could start: the first answers come first, and the
    # retry chains they reveal start under the rest of the work.
    names = ["moved.example.org", "a.example.org", "b.example.org", "c.example.org"]
    settings = checker_settings(concurrency=1, per_host=1, connect_to=mapped(site, *names))
    c = await checker(client_for, settings)
    urls = ["http://moved.example.org/redirect/1"] + [f"http://{h}/hold?ms=5" for h in names[1:]]
    results = {o.url: o async for o in c.check_many(urls, first={urls[0]})}
    assert results[urls[0]].http_status == 200 and len(results[urls[0]].redirects) == 1
    order = [(r.host.split(".")[0], r.path) for r in site.requests]
    assert order == [("moved", "/redirect/1"), ("a", "/hold"), ("b", "/hold"), ("c", "/hold"),
                     ("moved", "/redirect/0")]
    assert c.limiter.global_slots.free == 1 and not c.limiter._deferred


async def test_a_hop_waiting_its_turn_holds_no_slot(site: Site, checker_settings: Settings,
                                                    client_for: OpenClient) -> None:
    # The waiting hop's own host keeps serving its other links (a host slot
    # held through the wait would idle it), and without a running
    # check_many a hop goes at once.
    c = await checker(client_for, checker_settings(concurrency=1, per_host=1))
    urls = [site.url("/redirect/1")] + [site.url(f"/hold?ms=5&n={n}") for n in range(3)]
    results = [o async for o in c.check_many(urls, first={urls[0]})]
    assert len(results) == 4 and all(o.http_status == 200 for o in results)
    paths = [r.path for r in site.requests]
    assert paths == ["/redirect/1", "/hold", "/hold", "/hold", "/redirect/0"]
    assert max(site.max_active.values()) == 1
    alone = await c.check(site.url("/redirect/2"))
    assert alone.http_status == 200 and len(alone.redirects) == 2


async def test_stopping_check_many_while_a_hop_waits_frees_every_slot(site: Site, checker_settings: Settings,
                                                                      client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(concurrency=1, per_host=1))
    urls = [site.url("/redirect/1")] + [site.url(f"/hold?ms=200&n={n}") for n in range(3)]
    async with contextlib.aclosing(c.check_many(urls, first={urls[0]})) as observations:
        async for _ in observations:
            assert c.limiter._deferred, "the hop waits while the other checks run"
            break
    assert c.limiter.global_slots.free == 1 and not c.limiter._deferred
    assert c.limiter.host("127.0.0.1").idle


async def test_past_the_limit_the_oldest_waiting_hop_queues_as_usual() -> None:
    # However many links redirect, at most max_deferred hops wait for their
    # turn (memory stays flat); the oldest then queues like any request.
    limiter = Limiter(concurrency=1, per_host=1)
    limiter.max_deferred = 2
    freed = limiter.subscribe()  # as a running check_many does
    await limiter.global_slots.acquire()  # the only slot is busy
    order: list[str] = []

    async def hop(name: str) -> None:
        await limiter.acquire_global_deferred()
        order.append(name)
        await asyncio.sleep(0)
        limiter.release_global()

    tasks = [asyncio.create_task(hop(name)) for name in "abc"]
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(limiter._deferred) == 2 and len(limiter.global_slots._waiters) == 1
    limiter.release_global()
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["a"], "the oldest went with the freed slot; the others wait for their turn"
    limiter.unsubscribe(freed)  # the run's checks are done: nobody left to give way to
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert order == ["a", "b", "c"] and limiter.global_slots.free == 1


async def test_check_many_takes_urls_while_it_checks(site: Site, checker_settings: Settings,
                                                    client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(concurrency=4, per_host=2))
    first_seen = asyncio.Event()

    async def feed() -> Any:
        yield site.url("/hold?ms=1&n=1")
        yield site.url("/status/404")
        # The next URLs come only once an observation is out: a checker that
        # read the whole feed first would never get them.
        await first_seen.wait()
        for n in (1, 2, 3):
            yield site.url(f"/hold?ms=1&n={n}")  # n=1 again: checked once

    results = []

    async def consume() -> None:
        async for obs in c.check_many(feed()):
            results.append(obs)
            first_seen.set()

    await asyncio.wait_for(consume(), timeout=10)
    assert sorted(o.url for o in results) == sorted({site.url(f"/hold?ms=1&n={n}") for n in (1, 2, 3)}
                                                    | {site.url("/status/404")})
    assert len(site.requests) == 4
    assert c.limiter.global_slots.free == 4


async def test_an_error_in_the_feed_ends_check_many_with_it(site: Site, checker_settings: Settings,
                                                            client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(concurrency=2))

    async def feed() -> Any:
        yield site.url("/hold?ms=300&n=1")
        yield site.url("/hold?ms=300&n=2")
        raise RuntimeError("the page phase failed")

    with pytest.raises(RuntimeError, match="page phase failed"):
        async for _ in c.check_many(feed()):
            pass
    assert c.limiter.global_slots.free == 2, "the checks in flight were cancelled"


async def test_a_page_slot_is_served_before_new_checks(site: Site, checker_settings: Settings,
                                                       client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(concurrency=2, per_host=1))
    urls = [site.url(f"/hold?ms=50&n={n}") for n in range(4)]
    started_before_page: list[int] = []

    async def page() -> None:
        await asyncio.sleep(0.01)  # the first check holds the only host slot
        async with c.slot(site.url("/ok")):
            started_before_page.append(len(site.requests))
            assert c.limiter.host("127.0.0.1").free == 0

    async def checks() -> None:
        async for _ in c.check_many(urls):
            pass

    await asyncio.gather(page(), checks())
    assert started_before_page == [1], "the page waited for the first check only"
    assert len(site.requests) == 4 and max(site.max_active.values()) == 1
    assert c.limiter.global_slots.free == 2


async def test_breaking_out_of_check_many_cancels_the_rest(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(concurrency=2))
    urls = [site.url(f"/hold?ms=200&n={n}") for n in range(10)]
    async with contextlib.aclosing(c.check_many(urls)) as observations:
        async for _ in observations:
            break
    # Every slot is back once aclose() returns, not when the garbage
    # collector finalises the generator.
    assert c.limiter.global_slots.free == 2
    await asyncio.sleep(0.3)
    assert len(site.requests) < 10


# -- soft-404 probe ------------------------------------------------------------


async def test_probe_asks_a_random_sibling_once_per_host(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    settings = checker_settings(connect_to=mapped(site, "a.example.org", "b.example.org"))
    c = await checker(client_for, settings)
    first, again, other = await asyncio.gather(
        c.probe("http://a.example.org/articles/2018/page.html?x=1"),
        c.probe("http://a.example.org/other/thing.html"),
        c.probe("http://b.example.org/articles/page.html"),
    )
    assert first is again and first is not None and other is not None
    assert first.http_status == 404
    paths = sorted((r.host, r.path) for r in site.requests)
    assert len(paths) == 2
    assert re.fullmatch(r"/articles/2018/[0-9a-f]{16}\.html", paths[0][1])
    assert re.fullmatch(r"/articles/[0-9a-f]{16}\.html", paths[1][1])


async def test_probe_disabled(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(soft404_probe=False))
    assert await c.probe(site.url("/ok")) is None
    assert site.requests == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h.org/a/b/page.html?q=1#f", "https://h.org/a/b/TOKEN.html"),
        ("https://h.org/a/b/", "https://h.org/a/TOKEN/"),
        ("https://pubmed.ncbi.nlm.nih.gov/30151234/", "https://pubmed.ncbi.nlm.nih.gov/TOKEN/"),
        ("https://h.org/", "https://h.org/TOKEN/"),
        ("https://h.org", "https://h.org/TOKEN/"),
        ("https://h.org/a/doc", "https://h.org/a/TOKEN"),
        ("https://h.org/a/v1.2.3-final", "https://h.org/a/TOKEN"),
    ],
)
def test_sibling_url(url: str, expected: str) -> None:
    assert str(sibling_url(URL(url), "TOKEN")) == expected


# -- error mapping -------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (asyncio.TimeoutError(), ErrorKind.TIMEOUT),
        (ConnectionResetError(104, "reset"), ErrorKind.CONNECTION_RESET),
        (ValueError("bad"), ErrorKind.INVALID_URL),
        (RuntimeError("bug"), ErrorKind.BAD_RESPONSE),
    ],
)
def test_error_kind_of(exc: BaseException, kind: ErrorKind) -> None:
    got, detail = error_kind_of(exc)
    assert got is kind and detail and "\n" not in detail


async def test_two_runs_can_share_a_checker(site: Site, checker_settings: Settings, client_for: OpenClient) -> None:
    c = await checker(client_for, checker_settings(concurrency=2, per_host=1))
    a = [site.url(f"/hold?ms=20&a={n}") for n in range(5)]
    b = [site.url(f"/hold?ms=20&b={n}", "localhost") for n in range(5)]
    results = await asyncio.wait_for(asyncio.gather(collect(c, a), collect(c, b)), timeout=5)
    assert [len(r) for r in results] == [5, 5]
    assert max(site.max_active.values()) == 1


def test_unreadable_ca_file_is_a_config_error(tmp_path: Any) -> None:
    from monitor.client import make_ssl_context
    from monitor.errors import ConfigError

    with pytest.raises(ConfigError, match="ca_file"):
        make_ssl_context(str(tmp_path / "missing.pem"))


async def test_a_host_name_is_resolved_once_for_all_its_links(site: Site, checker_settings: Settings,
                                                              client_for: OpenClient, canned_dns: Canned) -> None:
    """DNS caching: 40 links on one host, checked 4 at a time, ask the resolver once
    (aiohttp's cache, and its merging of concurrent lookups of one name)."""
    dns = canned_dns({"journal.example.com": ["127.0.0.1"]})
    client = await client_for(checker_settings(per_host=4), dns=dns)
    urls = [f"http://journal.example.com:{site.port}/ok?n={n}" for n in range(40)]
    observations = [obs async for obs in Checker(client, client.settings).check_many(urls)]
    assert sorted(o.url for o in observations) == sorted(urls)
    assert all(o.http_status == 200 for o in observations)
    assert dns.asked == ["journal.example.com"]


async def test_connections_are_kept_alive_and_reused(aiohttp_server: Any, checker_settings: Settings,
                                                     client_for: OpenClient) -> None:
    """40 links on one host, 4 at a time: a handful of TCP connections, each
    carrying many requests (the server sees the client's port of each)."""
    from aiohttp import web

    ports: list[int] = []

    async def page(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ports.append(peer[1] if peer else -1)
        await asyncio.sleep(0.01)
        return web.Response(text="<title>An article</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{name}", page)
    server = await aiohttp_server(app)
    client = await client_for(checker_settings(per_host=4))
    urls = [f"http://127.0.0.1:{server.port}/a{n}" for n in range(40)]
    observations = [obs async for obs in Checker(client, client.settings).check_many(urls)]
    assert len(observations) == 40 and all(o.http_status == 200 for o in observations)
    assert len(ports) == 40 and -1 not in ports
    assert len(set(ports)) <= 4  # never more connections than requests in flight to the host
