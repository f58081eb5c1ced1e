"""The simulated site answers like the hosts it imitates (docs/simulated-site.md).

A plain aiohttp client reaches it through a resolver built from the site's own
`connect_to` table, so the table itself is under test: Host header and SNI are
the real names, unmapped names fail like DNS, the TLS and refused hosts land on
their ports.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict

from monitor.demo import RAYNAUDS_URL, TREATMENTS_URL, SimulatedSite, start_simulated_site
from monitor.demo import site as demo
from monitor.demo.site import CITATION_TRUTH, PAGES_DIR, page_hrefs, page_links


class ConnectToResolver(AbstractResolver):
    """Resolves exactly as `connect_to` says; everything else fails like DNS."""

    def __init__(self, connect_to: tuple[tuple[str, str], ...]) -> None:
        self.table = dict(connect_to)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        target = self.table.get(f"{host}:{port}")
        if target is None:
            raise OSError(socket.EAI_NONAME, f"{host}: name not known (simulated)")
        ip, _, mapped = target.rpartition(":")
        return [ResolveResult(hostname=host, host=ip, port=int(mapped), family=socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        pass


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[SimulatedSite]:
    async with start_simulated_site(tmp_path) as running:
        yield running


@pytest.fixture
async def client(site: SimulatedSite) -> AsyncIterator[aiohttp.ClientSession]:
    context = ssl.create_default_context(cafile=str(site.ca_pem_path))
    connector = aiohttp.TCPConnector(resolver=ConnectToResolver(site.connect_to), ssl=context,
                                     use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def fetch(client: aiohttp.ClientSession, url: str,
                **kw: Any) -> tuple[int, CIMultiDict[str], bytes]:
    async with client.get(url, allow_redirects=False, **kw) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


# -- the watched pages ----------------------------------------------------------


async def test_watched_page_is_the_file_bytes_without_charset(client: aiohttp.ClientSession) -> None:
    status, headers, body = await fetch(client, TREATMENTS_URL)
    assert status == 200
    assert headers["Content-Type"] == "text/html"
    assert body == (PAGES_DIR / "treatments.html").read_bytes()
    assert headers["ETag"].startswith('"') and headers["Last-Modified"].endswith("GMT")


async def test_conditional_get_answers_304(client: aiohttp.ClientSession) -> None:
    _, headers, _ = await fetch(client, RAYNAUDS_URL)
    by_etag = await fetch(client, RAYNAUDS_URL, headers={"If-None-Match": headers["ETag"]})
    by_date = await fetch(client, RAYNAUDS_URL,
                          headers={"If-Modified-Since": headers["Last-Modified"]})
    stale_tag = await fetch(client, RAYNAUDS_URL, headers={"If-None-Match": '"old"'})
    older = await fetch(client, RAYNAUDS_URL,
                        headers={"If-Modified-Since": "Mon, 01 Jan 2018 00:00:00 GMT"})
    assert (by_etag[0], by_etag[2]) == (304, b"")
    assert by_date[0] == 304
    assert stale_tag[0] == 200 and older[0] == 200


async def test_sclero_http_redirects_to_https(client: aiohttp.ClientSession) -> None:
    status, headers, _ = await fetch(client, TREATMENTS_URL.replace("https:", "http:"))
    assert (status, headers["Location"]) == (301, TREATMENTS_URL)


async def test_sclero_navigation_resources_and_broken_link(client: aiohttp.ClientSession) -> None:
    assert (await fetch(client, "https://www.sclero.org/about/news/a-to-z.html"))[0] == 404
    status, headers, body = await fetch(client, "https://www.sclero.org/images/isn-logo.gif")
    assert (status, headers["Content-Type"], body[:6]) == (200, "image/gif", b"GIF89a")
    assert (await fetch(client, "https://www.sclero.org/no-such-page-7f3a.html"))[0] == 404


# -- every link of the watched pages has an expected verdict ----------------------


def test_truth_covers_every_link_of_both_pages(site: SimulatedSite) -> None:
    for page_url, name, encoding in ((TREATMENTS_URL, "treatments.html", "cp1252"),
                                     (RAYNAUDS_URL, "raynauds.html", "utf-8")):
        pairs = page_hrefs((PAGES_DIR / name).read_bytes().decode(encoding), page_url)
        assert len(pairs) > 30
        assert [href for href, url in pairs if href not in site.truth and url not in site.truth] == []
    assert set(CITATION_TRUTH) <= set(site.truth), "a simulated behaviour is cited by no page"
    assert site.truth["#ccb"] == site.truth["#bio"] == ("skipped", "fragment")
    assert site.truth["http://"] == ("error", "invalid_url")
    assert site.truth["mailto:isn@sclero.org"] == ("skipped", "mailto")
    assert site.truth["https://www.sclero.org/about/news/a-to-z.html"] == ("expired", "http_404")
    assert site.truth["http://www.sclero.org/scleroderma/symptoms/a-to-z.html"] == (
        "moved", "permanent_redirect")


def test_treatments_cites_the_eleven_seed_urls(site: SimulatedSite) -> None:
    text = (PAGES_DIR / "treatments.html").read_bytes().decode("cp1252")
    cited = set(page_links(text, TREATMENTS_URL))
    eleven = {demo.U_PUBMED_OLD, demo.U_PUBMED_RTX, demo.U_CORBUS, demo.U_JRHEUM,
              demo.U_PUBMED_PT, demo.U_HOPKINS, demo.U_OUP_CHALLENGE, demo.U_SCIENCEDIRECT,
              demo.U_BENTHAM, demo.U_ATS, demo.U_WILEY}
    assert eleven <= cited


# -- citation targets -------------------------------------------------------------

REDIRECTS = [
    (demo.U_PUBMED_OLD, 301, "https://pubmed.ncbi.nlm.nih.gov/29713888/"),
    (demo.U_CORBUS, 301, "https://www.globenewswire.com/"),
    (demo.U_BENTHAM, 301, "https://openrheumatologyjournal.com/VOLUME/7/PAGE/94/"),
    (demo.U_WILEY, 302, "https://onlinelibrary.wiley.com/action/showLogin?uri="
                        "%2Fdoi%2Fabs%2F10.1002%2Fmus.26321"),
    (demo.U_DOI, 302, "https://academic.oup.com/rheumatology/article/56/9/1500/3861234"),
    (demo.U_PMC_HTTP, 301, "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC5123456/"),
    ("https://www.ncbi.nlm.nih.gov/pmc/articles/PMC5123456/", 301,
     "https://pmc.ncbi.nlm.nih.gov/articles/PMC5123456/"),
    (demo.U_JSTOR, 302, "https://www.jstor.org/stable/20012345?cookieSet=1"),
    ("https://www.jstor.org/stable/20012345?cookieSet=1", 302, demo.U_JSTOR),
]


@pytest.mark.parametrize(("url", "status", "location"), REDIRECTS)
async def test_redirects(client: aiohttp.ClientSession, url: str, status: int, location: str) -> None:
    got, headers, _ = await fetch(client, url)
    assert (got, headers["Location"]) == (status, location)


FINAL_PAGES = [
    ("https://pubmed.ncbi.nlm.nih.gov/29713888/", 200, "<title>Rituximab for refractory"),
    (demo.U_PUBMED_RTX, 200, '<meta name="citation_title" content="The Use of Rituximab'),
    ("https://openrheumatologyjournal.com/VOLUME/7/PAGE/94/", 200,
     "content=\"Case Report: Intravenous Immune Globulin"),
    ("https://academic.oup.com/rheumatology/article/56/9/1500/3861234", 200,
     'name="citation_title" content="Bosentan reduces'),
    (demo.U_SCIENCEDIRECT, 200, 'content="Serum ferritin as a marker'),
    (demo.U_HOPKINS, 200, "<title>Page Not Found"),
    (demo.U_JRHEUM, 404, "Not Found"),
    (demo.U_MEDSCAPE, 410, "Gone"),
    (demo.U_PARKED, 200, "This domain is for sale"),
    (demo.U_PRNEWS, 200, "This press release is no longer available"),
    (demo.U_LINKEDIN, 999, "authwall"),
    ("https://www.globenewswire.com/", 200, "GlobeNewswire"),
    ("https://pmc.ncbi.nlm.nih.gov/articles/PMC5123456/", 200,
     'name="citation_title" content="Phosphodiesterase-5 inhibitors'),
    ("https://onlinelibrary.wiley.com/action/showLogin?uri=x", 200, "<title>Log in | Wiley"),
]


@pytest.mark.parametrize(("url", "status", "marker"), FINAL_PAGES)
async def test_final_answers(client: aiohttp.ClientSession, url: str, status: int, marker: str) -> None:
    got, _, body = await fetch(client, url)
    assert got == status
    assert marker in body.decode()


async def test_cloudflare_challenge_looks_like_cloudflare(client: aiohttp.ClientSession) -> None:
    status, headers, body = await fetch(client, demo.U_OUP_CHALLENGE)
    assert (status, headers["Server"]) == (403, "cloudflare")
    assert "CF-RAY" in headers and headers["cf-mitigated"] == "challenge"
    assert b"<title>Just a moment...</title>" in body and b"_cf_chl_opt" in body


async def test_503_always_with_retry_after(client: aiohttp.ClientSession) -> None:
    for _ in range(2):
        status, headers, _ = await fetch(client, demo.U_ATS)
        assert (status, headers["Retry-After"]) == (503, "1")


async def test_reuters_refuses_the_first_request_of_a_burst(client: aiohttp.ClientSession) -> None:
    status, headers, _ = await fetch(client, demo.U_REUTERS)
    assert (status, headers["Retry-After"]) == (429, "1")
    assert (await fetch(client, demo.U_REUTERS))[0] == 429  # too early: still refused


def test_rate_limit_admits_after_retry_after_and_forgets_after_quiet() -> None:
    limit = demo._RateLimit(retry_after=1.0, quiet=60.0)
    assert limit.admit(100.0) == 1.0
    assert limit.admit(100.4) == pytest.approx(0.6)
    assert limit.admit(101.0) is None
    assert limit.admit(150.0) is None
    assert limit.admit(300.0) == 1.0  # a new burst after a quiet minute


# -- soft-404 probes ----------------------------------------------------------------


async def test_soft404_host_answers_every_path_alike(client: aiohttp.ClientSession) -> None:
    cited = await fetch(client, demo.U_SOFT404_HOST)
    probe = await fetch(client, "https://www.scleroderma-journal.org/2016/q8z1x7c0.html")
    assert cited[0] == probe[0] == 200 and cited[2] == probe[2]


@pytest.mark.parametrize("url", [
    "https://pubmed.ncbi.nlm.nih.gov/8k2j4h6g/",
    "https://academic.oup.com/rheumatology/article/56/9/1500/zq93k",
    "https://pmc.ncbi.nlm.nih.gov/articles/PMCz9q8/",
    "https://openrheumatologyjournal.com/VOLUME/7/PAGE/zz/",
    "https://www.reuters.com/article/zq-93k",
    "https://www.rheumatology.org/Portals/0/Files/zq93k.pdf",
])
async def test_honest_hosts_answer_404_to_probes(client: aiohttp.ClientSession, url: str) -> None:
    assert (await fetch(client, url))[0] == 404


# -- network failures ----------------------------------------------------------------


async def test_untrusted_certificate_fails_tls(client: aiohttp.ClientSession) -> None:
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await fetch(client, demo.U_TLS)


async def test_refused_port_refuses(client: aiohttp.ClientSession) -> None:
    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        await fetch(client, demo.U_REFUSED)
    assert isinstance(caught.value.os_error, ConnectionRefusedError)


async def test_unmapped_names_fail_like_dns(site: SimulatedSite, client: aiohttp.ClientSession) -> None:
    assert ("*", "refuse") in site.connect_to
    with pytest.raises(aiohttp.ClientConnectorDNSError):
        await fetch(client, demo.U_DNS)


async def test_timeout_route_hangs(client: aiohttp.ClientSession) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await fetch(client, demo.U_HINDAWI, timeout=aiohttp.ClientTimeout(total=0.3))


# -- the 20 MiB PDF ----------------------------------------------------------------------


async def test_pdf_streams_twenty_mebibytes(client: aiohttp.ClientSession) -> None:
    async with client.get(demo.U_PDF) as response:
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.content_length == demo.PDF_SIZE
        first = await response.content.read(8)
        total = len(first)
        async for chunk in response.content.iter_chunked(1 << 20):
            total += len(chunk)
    assert first.startswith(b"%PDF-1.")
    assert total == demo.PDF_SIZE


async def test_pdf_prefix_then_hang_up(client: aiohttp.ClientSession) -> None:
    async with client.get(demo.U_PDF) as response:
        prefix = await response.content.read(4096)
        response.close()
    assert prefix.startswith(b"%PDF-")
    assert (await fetch(client, demo.U_PUBMED_RTX))[0] == 200  # the server is still fine


def _read_then_reset(port: int, cafile: str, read_bytes: int) -> None:
    """A checker in another process: read a prefix of the PDF, then hang up
    with a reset while the server is still writing (blocking, so it runs in a
    thread while the server's loop keeps going)."""
    context = ssl.create_default_context(cafile=cafile)
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                             server_hostname=urlsplit(demo.U_PDF).hostname) as tls:
        tls.sendall(f"GET {urlsplit(demo.U_PDF).path} HTTP/1.1\r\n"
                    f"Host: {urlsplit(demo.U_PDF).hostname}\r\n\r\n".encode())
        got = 0
        while got < read_bytes:
            data = tls.recv(65536)
            if not data:
                break
            got += len(data)
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def test_pdf_hang_up_from_another_process_logs_nothing(
        site: SimulatedSite, client: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    """Walkthrough 9 #13: `demo --serve`'s terminal got hundreds of "socket.send()
    raised exception." lines when a check hung up on the PDF."""
    port = int(dict(site.connect_to)[f"{urlsplit(demo.U_PDF).hostname}:443"].rpartition(":")[2])
    caplog.set_level(logging.WARNING, logger="asyncio")
    for _ in range(4):
        await asyncio.to_thread(_read_then_reset, port, str(site.ca_pem_path), 1 << 16)
        await asyncio.sleep(0.05)
    assert (await fetch(client, demo.U_PUBMED_RTX))[0] == 200  # the server is still fine
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


async def test_pdf_head_sends_no_body(client: aiohttp.ClientSession) -> None:
    async with client.head(demo.U_PDF) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == str(demo.PDF_SIZE)
        assert await response.read() == b""


# -- the Wayback Machine --------------------------------------------------------------


async def test_wayback_availability_api(site: SimulatedSite, client: aiohttp.ClientSession) -> None:
    async with client.get(site.archive_url, params={"url": demo.U_JRHEUM,
                                                    "timestamp": "20170101"}) as response:
        found = await response.json()
    async with client.get(site.archive_url, params={"url": demo.U_ATS}) as response:
        missing = await response.json()
    closest = found["archived_snapshots"]["closest"]
    assert closest == {"status": "200", "available": True, "timestamp": "20160615000000",
                       "url": f"http://web.archive.org/web/20160615000000/{demo.U_JRHEUM}"}
    assert missing["archived_snapshots"] == {}


async def test_wayback_snapshot_and_closest_redirect(client: aiohttp.ClientSession) -> None:
    exact = await fetch(client, f"http://web.archive.org/web/20160615000000/{demo.U_JRHEUM}")
    near = await fetch(client, f"https://web.archive.org/web/2013/{demo.U_JRHEUM}")
    assert exact[0] == 200 and demo.JRHEUM_TITLE.encode() in exact[2]
    assert "Memento-Datetime" in exact[1]
    assert (near[0], near[1]["Location"]) == (
        302, f"http://web.archive.org/web/20120301000000/{demo.U_JRHEUM}")


# -- connect_to ---------------------------------------------------------------------------


def test_connect_to_maps_both_ports_of_every_host(site: SimulatedSite) -> None:
    table = dict(site.connect_to)
    for url in (demo.U_PUBMED_OLD, demo.U_BENTHAM, TREATMENTS_URL, site.archive_url):
        host = urlsplit(url).hostname
        assert table[f"{host}:80"] == f"127.0.0.1:{site.http_port}"
        assert table[f"{host}:443"] == f"127.0.0.1:{site.https_port}"
    assert table["clinicaltrials.gov:443"] == f"127.0.0.1:{site.refused_port}"
    assert table["www.raynauds-clinic.org:443"] == f"127.0.0.1:{site.untrusted_tls_port}"
    assert site.connect_to[-1] == ("*", "refuse")
    assert "www.raynauds-association.invalid:80" not in table
