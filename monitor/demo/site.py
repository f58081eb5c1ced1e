"""A simulated slice of the web, served on loopback, for `monitor demo` and e2e tests.

Why: the monitor's whole value is telling a moved article from a removed one,
a bot wall from a dead link, a parked domain from a live page. Those
behaviours cannot be tested against the internet (it changes, and tests must
not leave loopback), so this module imitates the hosts a sclero.org page cites,
each answering the way the real one does (or did when the citation rotted).

One aiohttp `web.Application` dispatches on the Host header (virtual hosting)
and is served three times: plain HTTP, HTTPS with a certificate for every
simulated name signed by a demo CA (its PEM is written to the work directory
so the checker can trust it through `checker.ca_file`), and HTTPS with a
certificate from a *different* CA for the one host that must fail TLS. A
fourth port is bound but never listens, so connecting to it is refused and
the port cannot be reused by anyone else while the site runs. The checker
reaches the hosts through `connect_to` (like curl --connect-to); ("*",
"refuse") makes every other name fail as DNS without any query.

Behaviour per URL (the verdict the checker should reach is in `truth`):

  host / path                                   answers                              verdict
  www.sclero.org  watched pages                 200 text/html, ETag, Last-Modified,  (watched)
                                                304 on If-None-Match/-Modified-Since
  www.sclero.org  paths linked by the pages     200 small sclero-style page          ok
  www.sclero.org  /about/news/a-to-z.html       404                                  expired/http_404
  www.sclero.org  anything else                 404 (so soft-404 probes see a 404)
  http://www.sclero.org/*                       301 to https                         moved/permanent_redirect
  www.ncbi.nlm.nih.gov/pubmed/ID                301 pubmed.ncbi.nlm.nih.gov/ID/      moved/permanent_redirect
  pubmed.ncbi.nlm.nih.gov/ID/                   200 PubMed page, citation_title      ok
  globenewswire.com/news-release/...            301 https://www.globenewswire.com/   expired/redirect_to_home
  www.jrheum.org/content/...                    404                                  expired/http_404
  www.hopkinsarthritis.org/*                    200 "Page Not Found" (every path)    expired/soft_404
  academic.oup.com/.../suppl_3/...              403 Cloudflare managed challenge     blocked/bot_challenge
  academic.oup.com/rheumatology/article/56/...  200 article                          (via doi.org) ok/temporary_redirect
  www.sciencedirect.com/.../S1568997219302605   200, another article's title         drifted/title_mismatch
  benthamopen.com/ABSTRACT/TORJ-7-94            301 openrheumatologyjournal.com      moved/permanent_redirect
  www.atsjournals.org/doi/*                     503 Retry-After: 1, every time       error/http_503
  onlinelibrary.wiley.com/doi/abs/...           302 /action/showLogin (200 login)    blocked/login_required
  www.medscape.com/viewarticle/883512           410                                  expired/http_410
  www.raynauds-cure-news.com/*                  200 Sedo-style parked page           expired/parked_domain
  www.prnewswire.com/news-releases/...          200 "no longer available" notice     expired/expired_notice
  www.linkedin.com/*                            999                                  blocked/http_999
  www.reuters.com/article/...                   429 Retry-After: 1 on the first      ok
                                                request of a burst, then 200
  www.hindawi.com/journals/ijr/2018/9321497/    answers after 30 s                   error/timeout
  www.raynauds-association.invalid              not mapped: DNS failure              error/dns
  clinicaltrials.gov                            mapped to a refused port             error/connection_refused
  www.jstor.org/stable/20012345                 302 ?cookieSet=1, 302 back           error/redirect_loop
  doi.org/10.1093/rheumatology/kex123           302 academic.oup.com article         ok/temporary_redirect
  http://www.ncbi.nlm.nih.gov/pmc/articles/...  301 to https, 301 to                moved/permanent_redirect
                                                pmc.ncbi.nlm.nih.gov/articles/..., 200
  www.scleroderma-journal.org/*                 200, the same page for every path    expired/soft_404
  www.raynauds-clinic.org                       certificate from an unknown CA       error/tls
  192.168.1.20                                  never contacted                      blocked/private_address
  www.rheumatology.org/.../Fact-Sheet.pdf       200 application/pdf, 20 MiB streamed ok
  pubmed.ncbi.nlm.nih.gov/29470812/             200, "Retraction in" at the top      ok/ok, notice retracted
  href "http://"                                never contacted                      error/invalid_url
  archive.org/wayback/available                 the availability API's JSON
  web.archive.org/web/TS/URL                    200 snapshot, or 302 to the closest timestamp

docs/simulated-site.md says, for each row, what the real site does and where
that knowledge comes from. Every unlisted path of a simulated host answers 404
(except the hosts that answer everything), so a soft-404 probe of a random
sibling path behaves as on the real site.

Speed: pages are loaded and rendered once at start; no request reads a file,
and only the timeout route sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import hashlib
import html
import json
import mimetypes
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

from aiohttp import web

PAGES_DIR = Path(__file__).with_name("pages")

SCLERO = "www.sclero.org"
TREATMENTS_PATH = "/scleroderma/autoimmune/dermatomyositis/treatments.html"
RAYNAUDS_PATH = "/scleroderma/treatments/raynauds/a-to-z.html"
TREATMENTS_URL = f"https://{SCLERO}{TREATMENTS_PATH}"
RAYNAUDS_URL = f"https://{SCLERO}{RAYNAUDS_PATH}"
BROKEN_NAV_PATH = "/about/news/a-to-z.html"

TIMEOUT_ROUTE_DELAY = 30.0
"""Seconds the timeout route waits; far beyond the demo's ~2 s checker timeout."""
RETRY_AFTER_SECONDS = 1
RATE_LIMIT_QUIET_SECONDS = 60.0
"""After this long without a request the rate limiter forgets the client."""
PDF_SIZE = 20 * 1024 * 1024
PDF_CHUNK = 64 * 1024
SHUTDOWN_TIMEOUT = 0.5
"""Seconds granted to in-flight handlers (the 30 s sleeper) at stop."""

# A real 1x1 transparent GIF89a (43 bytes): resources must be valid files.
TINY_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
    b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

Truth = tuple[str, str]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- the cited articles --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Article:
    """What a publisher's page says about one article (its scholarly metadata)."""

    title: str
    journal: str
    date: str  # citation_date, as publishers write it: 2018/04/30
    summary: str = ""
    retraction: str = ""
    """PubMed's linked notice of a retracted article ("Lancet. 2010 Feb 6;375(9713):445.")."""


PUBMED: dict[str, Article] = {
    "29713888": Article(
        "Rituximab for refractory rapidly progressive interstitial lung disease (RP\u2013ILD) "
        "related to anti-MDA5 antibody\u2013positive amyopathic dermatomyositis",
        "Clin Rheumatol", "2018/04/30",
        "Our results suggest that RTX may be a useful therapy for anti-MDA5 Ab-positive ADM "
        "associated with RP\u2013ILD, although infection is the major risk."),
    "28329375": Article(
        "The Use of Rituximab in the Management of Refractory Dermatomyositis",
        "J Drugs Dermatol", "2017/02/01",
        "This is a retrospective study of 25 patients with dermatomyositis who were treated "
        "with rituximab."),
    "31197643": Article(
        "Physical therapy in adult inflammatory myopathy patients: a systematic review",
        "Clin Rheumatol", "2019/08/01",
        "Physical therapy does not have a negative effect on the disease activity of "
        "idiopathic inflammatory myopathies in quiescent disease."),
    "30123456": Article(
        "Selexipag for Raynaud's phenomenon secondary to systemic sclerosis: a randomised, "
        "placebo-controlled trial",
        "Arthritis Rheumatol", "2018/12/01",
        "Selexipag did not reduce the number of Raynaud's attacks compared with placebo."),
    "29470812": Article(
        "Oral treprostinil reduces digital ulcer healing time in systemic sclerosis: a "
        "multicentre randomised trial",
        "Scand J Rheumatol", "2018/02/01",
        "Treprostinil shortened the time to healing of digital ulcers compared with placebo.",
        retraction="Notice of retraction: Oral treprostinil reduces digital ulcer healing time in "
        "systemic sclerosis. Scand J Rheumatol. 2021 Mar;50(2):168. doi: 10.1080/03009742.2021.1880000."),
}

CORBUS_TITLE = (
    "Corbus Pharmaceuticals to Commence Phase 3 Study of Lenabasum for the Treatment of "
    "Rare Autoimmune Disease Dermatomyositis"
)
JRHEUM_TITLE = (
    "Dermatomyositis and Polymyositis Associated with Malignancy: A 21-year Retrospective Study"
)
HOPKINS_TITLE = "How is Polymyositis Treated?"
IL18_TITLE = (
    "Expression of interleukin-18 in muscle tissue of patients with polymyositis or "
    "dermatomyositis and effects of conventional immunosuppressive treatment"
)
IVIG_SSCAM_TITLE = (
    "Corticosteroid-sparing (CS) benefit of intravenous immunoglobulin (IVIg) in systemic "
    "sclerosis-associated myopathy (SScAM): A comparative study in 52 patients"
)
DRIFTED_TITLE = "Serum ferritin as a marker of disease activity in systemic lupus erythematosus"
BENTHAM_ARTICLE = Article(
    "Case Report: Intravenous Immune Globulin in Amyopathic Dermatomyositis (ADM) \u2013 "
    "Report of Two Cases and Review of the Literature",
    "Open Rheumatol J", "2013/10/31",
    "We present both cases in describing IVIG as a rescue and maintenance steroid\u2013sparing "
    "agent in the treatment of severe refractory ADM.")
ATS_TITLE = (
    "Successful Treatment With Intravenous High-Dose Immunoglobulin For Cardiomyopathy In "
    "Dermatomyositis Complicated With Rapid Progressive Interstitial Pneumonia And "
    "Macrophage Activation Syndrome"
)
OUP_BOSENTAN = Article(
    "Bosentan reduces the number of new digital ulcers in patients with systemic sclerosis: "
    "a real-life cohort study",
    "Rheumatology (Oxford)", "2017/09/01",
    "In routine care, bosentan reduced the number of new digital ulcers.")
PMC_PDE5 = Article(
    "Phosphodiesterase-5 inhibitors for secondary Raynaud's phenomenon: a systematic review "
    "and meta-analysis of randomised trials",
    "Rheumatology (Oxford)", "2016/11/01",
    "PDE-5 inhibitors reduced the frequency and duration of attacks of secondary Raynaud's.")
REUTERS_TITLE = "Sildenafil eases Raynaud's attacks in small trial"
HINDAWI_TITLE = (
    "Tadalafil as Add-On Therapy for Secondary Raynaud's Phenomenon: A Randomized "
    "Crossover Trial"
)
MEDSCAPE_TITLE = "Amlodipine vs Nifedipine in Raynaud Phenomenon"
PARKED_TITLE = "Nifedipine Still First Choice for Raynaud's, Experts Say"
PRNEWS_TITLE = "New Data on Iloprost for Raynaud's Phenomenon Presented at ACR Annual Meeting"

# -- the cited URLs and the verdict each one must get --------------------------

U_PUBMED_OLD = "https://www.ncbi.nlm.nih.gov/pubmed/29713888"
U_PUBMED_RTX = "https://pubmed.ncbi.nlm.nih.gov/28329375/"
U_CORBUS = (
    "https://globenewswire.com/news-release/2018/07/25/1542139/0/en/Corbus-Pharmaceuticals-"
    "to-Commence-Phase-3-Study-of-Lenabasum-for-the-Treatment-of-Rare-Autoimmune-Disease-"
    "Dermatomyositis.html"
)
U_JRHEUM = "http://www.jrheum.org/content/39/2/345.abstract"
U_PUBMED_PT = "https://pubmed.ncbi.nlm.nih.gov/31197643/"
U_HOPKINS = "https://www.hopkinsarthritis.org/arthritis-info/polymyositis/treatment/"
U_OUP_CHALLENGE = "https://academic.oup.com/rheumatology/article/57/suppl_3/key075.537/5037456"
U_SCIENCEDIRECT = "https://www.sciencedirect.com/science/article/pii/S1568997219302605"
U_BENTHAM = "http://benthamopen.com/ABSTRACT/TORJ-7-94"
U_ATS = (
    "https://www.atsjournals.org/doi/abs/10.1164/"
    "ajrccm-conference.2019.199.1_MeetingAbstracts.A6070"
)
U_WILEY = "https://onlinelibrary.wiley.com/doi/abs/10.1002/mus.26321"
U_MEDSCAPE = "https://www.medscape.com/viewarticle/883512"
U_PARKED = "http://www.raynauds-cure-news.com/article/nifedipine.html"
U_PRNEWS = (
    "https://www.prnewswire.com/news-releases/new-data-on-iloprost-for-raynauds-phenomenon-"
    "presented-at-acr-annual-meeting-300512345.html"
)
U_LINKEDIN = "https://www.linkedin.com/pulse/raynauds-phenomenon-what-you-need-know-anna-kowalski-md"
U_REUTERS = "https://www.reuters.com/article/us-health-raynauds-idUSKBN1X21AB"
U_HINDAWI = "https://www.hindawi.com/journals/ijr/2018/9321497/"
U_DNS = "http://www.raynauds-association.invalid/treatments"
U_REFUSED = "https://clinicaltrials.gov/ct2/show/NCT01234567"
U_JSTOR = "https://www.jstor.org/stable/20012345"
U_DOI = "https://doi.org/10.1093/rheumatology/kex123"
U_PMC_HTTP = "http://www.ncbi.nlm.nih.gov/pmc/articles/PMC5123456/"
U_SOFT404_HOST = "https://www.scleroderma-journal.org/2016/raynaud-bosentan.html"
U_TLS = "https://www.raynauds-clinic.org/treatments.html"
U_PRIVATE = "http://192.168.1.20/intranet/raynauds-protocol.pdf"
U_PDF = "https://www.rheumatology.org/Portals/0/Files/Raynauds-Fact-Sheet.pdf"
U_INVALID = "http://"
U_PUBMED_STALE_MARK = "https://pubmed.ncbi.nlm.nih.gov/30123456/"
U_PUBMED_RETRACTED = "https://pubmed.ncbi.nlm.nih.gov/29470812/"

CITATION_TRUTH: dict[str, Truth] = {
    U_PUBMED_OLD: ("moved", "permanent_redirect"),
    U_PUBMED_RTX: ("ok", "ok"),
    U_CORBUS: ("expired", "redirect_to_home"),
    U_JRHEUM: ("expired", "http_404"),
    U_PUBMED_PT: ("ok", "ok"),
    U_HOPKINS: ("expired", "soft_404"),
    U_OUP_CHALLENGE: ("blocked", "bot_challenge"),
    U_SCIENCEDIRECT: ("drifted", "title_mismatch"),
    U_BENTHAM: ("moved", "permanent_redirect"),
    U_ATS: ("error", "http_503"),
    U_WILEY: ("blocked", "login_required"),
    U_MEDSCAPE: ("expired", "http_410"),
    U_PARKED: ("expired", "parked_domain"),
    U_PRNEWS: ("expired", "expired_notice"),
    U_LINKEDIN: ("blocked", "http_999"),
    U_REUTERS: ("ok", "ok"),
    U_HINDAWI: ("error", "timeout"),
    U_DNS: ("error", "dns"),
    U_REFUSED: ("error", "connection_refused"),
    U_JSTOR: ("error", "redirect_loop"),
    U_DOI: ("ok", "temporary_redirect"),
    U_PMC_HTTP: ("moved", "permanent_redirect"),
    U_SOFT404_HOST: ("expired", "soft_404"),
    U_TLS: ("error", "tls"),
    U_PRIVATE: ("blocked", "private_address"),
    U_PDF: ("ok", "ok"),
    U_INVALID: ("error", "invalid_url"),
    U_PUBMED_STALE_MARK: ("ok", "ok"),
    U_PUBMED_RETRACTED: ("ok", "ok"),  # with the notice "retracted"
}

# Wayback Machine: the snapshots held per URL (key: URL without scheme, "www."
# and trailing slash, as the real index canonicalises) and the page each shows.
WAYBACK: dict[str, tuple[str, tuple[str, ...], str]] = {}
"""canonical URL -> (original URL, snapshot timestamps ascending, archived title)."""


def _wayback_key(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").lower().removeprefix("www.")
    path = parts.path.rstrip("/")
    return f"{host}{path}" + (f"?{parts.query}" if parts.query else "")


for _url, _stamps, _title in (
    (U_JRHEUM, ("20120301000000", "20160615000000"), JRHEUM_TITLE),
    (U_CORBUS, ("20180726000000",), CORBUS_TITLE),
    (U_HOPKINS, ("20170501000000", "20190110000000"), HOPKINS_TITLE),
    (U_SCIENCEDIRECT, ("20191201000000",), IVIG_SSCAM_TITLE),
    (U_MEDSCAPE, ("20170915000000",), MEDSCAPE_TITLE),
    (U_PARKED, ("20160320000000",), PARKED_TITLE),
    (U_PRNEWS, ("20171107000000",), PRNEWS_TITLE),
    (U_DNS, ("20150101000000",), "Raynaud's Association: Treatment Options"),
):
    WAYBACK[_wayback_key(_url)] = (_url, _stamps, _title)


# -- rendering -----------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html(title: str, body: str, meta: dict[str, str] | None = None, head: str = "") -> bytes:
    """A small UTF-8 HTML document; `meta` becomes name/property meta tags."""
    tags = []
    for key, value in (meta or {}).items():
        attr = "property" if key.startswith("og:") else "name"
        tags.append(f'<meta {attr}="{_e(key)}" content="{_e(value)}">')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n" + "\n".join(tags) + head
        + f"\n</head>\n<body>\n{body}\n</body></html>\n"
    ).encode("utf-8")


def _scholarly_meta(article: Article, site: str) -> dict[str, str]:
    return {
        "description": article.summary,
        "citation_title": article.title,
        "citation_journal_title": article.journal,
        "citation_date": article.date,
        "og:title": article.title,
        "og:site_name": site,
    }


def _pubmed_page(pmid: str, article: Article) -> bytes:
    meta = _scholarly_meta(article, "PubMed") | {"citation_pmid": pmid}
    meta["og:title"] = f"{article.title} - PubMed"
    # A retracted record shows the linked notice at the top ("Retraction in"),
    # as PubMed has since 2016 (NLM, "Errata, Retractions, and Other Linked
    # Citations in PubMed"); the title is unchanged.
    notice = (f'<div class="linked-articles retraction"><h3>Retraction in</h3><ul><li>'
              f'{_e(article.retraction)}</li></ul></div>\n' if article.retraction else "")
    body = (
        f'<main id="article-details">{notice}<h1 class="heading-title">{_e(article.title)}</h1>\n'
        f'<div class="journal-actions">{_e(article.journal)}. {_e(article.date)}.</div>\n'
        f'<div class="abstract-content selected"><p>{_e(article.summary)}</p></div>\n'
        f'<ul class="identifiers"><li>PMID: <strong class="current-id">{pmid}</strong></li></ul>'
        "</main>"
    )
    head = f'\n<link rel="canonical" href="https://pubmed.ncbi.nlm.nih.gov/{pmid}/">'
    return _html(f"{article.title} - PubMed", body, meta, head)


def _article_page(title_suffix: str, article: Article, site: str) -> bytes:
    body = (
        f'<article><h1 class="article-title">{_e(article.title)}</h1>\n'
        f"<p class=\"citation\">{_e(article.journal)}, {_e(article.date)}</p>\n"
        f'<section class="abstract"><h2>Abstract</h2><p>{_e(article.summary)}</p></section>'
        "</article>"
    )
    return _html(f"{article.title}{title_suffix}", body, _scholarly_meta(article, site))


def _sclero_page(title: str, body: str) -> bytes:
    return _html(
        f"{title} - International Scleroderma Network",
        f'<div id="page"><p><a href="/">SCLERO.ORG</a></p><h1>{_e(title)}</h1>\n{body}\n'
        '<p class="footer">International Scleroderma Network (ISN)</p></div>',
    )


def _title_from_path(path: str) -> str:
    """A readable page title for a navigation path, as sclero.org names pages."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "Scleroderma"
    stem = parts[-1].rsplit(".", 1)[0]
    if stem in ("a-to-z", "index", "treatments") and len(parts) > 1:
        label = parts[-2].replace("-", " ").title()
        return f"{label} {'A to Z' if stem == 'a-to-z' else stem.title()}"
    return stem.replace("-", " ").replace("_", " ").title()


CLOUDFLARE_CHALLENGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
    '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
    '<meta http-equiv="X-UA-Compatible" content="IE=Edge">'
    '<meta name="robots" content="noindex,nofollow">'
    '<meta name="viewport" content="width=device-width,initial-scale=1"></head>'
    '<body><div class="main-wrapper" role="main"><div class="main-content">'
    '<h1 class="zone-name-title h1">academic.oup.com</h1>'
    '<h2 class="h2" id="challenge-running">Verifying you are human. This may take a few seconds.</h2>'
    '<noscript><div class="h2"><span id="challenge-error-text">Enable JavaScript and cookies to '
    "continue</span></div></noscript></div></div>"
    "<script>(function(){window._cf_chl_opt={cvId: '3',cZone: 'academic.oup.com',"
    "cType: 'managed',cRay: '8e3f1c2b9a7d4e21',cH: 'kq0Yx2',cUPMDTk: "
    "'/rheumatology/article/57/suppl_3/key075.537/5037456?__cf_chl_tk=demo'};"
    "var cpo=document.createElement('script');"
    "cpo.src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=8e3f1c2b9a7d4e21';"
    "document.getElementsByTagName('head')[0].appendChild(cpo);}());</script>"
    '<div class="footer" role="contentinfo">Performance &amp; security by '
    '<a href="https://www.cloudflare.com">Cloudflare</a></div></body></html>'
).encode("utf-8")

LINKEDIN_999 = (
    "<html><head>\n<script type=\"text/javascript\">\nwindow.onload = function() {\n"
    "  var trk = \"bf\";\n  var trkInfo = \"bf\";\n  var cookies = document.cookie.split(\"; \");\n"
    "  for (var i = 0; i < cookies.length; ++i) {\n"
    "    if ((cookies[i].indexOf(\"trkCode=\") == 0) && (cookies[i].length > 8)) {\n"
    "      trk = cookies[i].substring(8);\n    }\n  }\n"
    "  window.location.href = \"https://www.linkedin.com/authwall?trk=\" + trk + "
    "\"&trkInfo=\" + trkInfo + \"&sessionRedirect=\" + encodeURIComponent(window.location.href);\n"
    "}\n</script>\n</head></html>\n"
).encode("utf-8")


# -- which URLs the watched pages link to ----------------------------------------

_URL_ATTRS = {
    "a": "href", "area": "href", "link": "href", "img": "src", "script": "src",
    "iframe": "src", "frame": "src", "embed": "src", "source": "src", "video": "src",
    "audio": "src", "track": "src", "object": "data",
}


class _LinkScanner(HTMLParser):
    """Every URL-bearing attribute of a page, as written (entities decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = _URL_ATTRS.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.hrefs.append(value.strip())


def page_links(text: str, page_url: str) -> list[str]:
    """The absolute URLs (or raw hrefs for non-http schemes) a page links to."""
    return [url for _, url in page_hrefs(text, page_url)]


def page_hrefs(text: str, page_url: str) -> list[tuple[str, str]]:
    """(href as written, resolved against the page) for every link of a page."""
    scanner = _LinkScanner()
    scanner.feed(text)
    scanner.close()
    return [(href, urljoin(page_url, href)) for href in scanner.hrefs]


def truth_key(href: str, url: str, truth: Truth) -> str:
    """How the pipeline names a link: never-fetched links keep their href as written."""
    return href if truth[0] == "skipped" or truth[1] == "invalid_url" else url


def _link_truth(url: str, page_url: str) -> Truth:
    """The verdict the pipeline should reach for one link of a watched page."""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("mailto", "javascript", "tel", "data"):
        return ("skipped", scheme)
    if url in CITATION_TRUTH:
        return CITATION_TRUTH[url]
    parts = urlsplit(url)
    if parts.fragment and url.split("#", 1)[0] == page_url:
        return ("skipped", "fragment")
    if parts.hostname == SCLERO:
        if parts.scheme == "http":
            return ("moved", "permanent_redirect")
        if parts.path == BROKEN_NAV_PATH:
            return ("expired", "http_404")
        return ("ok", "ok")
    raise ValueError(f"{page_url} links to {url!r}, which the simulated site does not serve")


# -- the server's behaviour ------------------------------------------------------


@dataclass(slots=True)
class _WatchedPage:
    body: bytes
    content_type: str
    etag: str
    last_modified: dt.datetime

    @property
    def last_modified_http(self) -> str:
        return email.utils.format_datetime(self.last_modified, usegmt=True)


@dataclass(slots=True)
class _RateLimit:
    """Refuses the first request of a burst, as Reuters' edge does to unknown clients.

    A burst begins after `quiet` seconds of silence; requests are admitted once
    `retry_after` seconds have passed since the burst began (an early retry is
    refused again, so a checker that ignores Retry-After keeps failing).
    """

    retry_after: float = RETRY_AFTER_SECONDS
    quiet: float = RATE_LIMIT_QUIET_SECONDS
    window_start: float | None = None
    last: float = 0.0

    def admit(self, now: float) -> float | None:
        """None when admitted, else the seconds to wait."""
        if self.window_start is None or now - self.last > self.quiet:
            self.window_start = now
            self.last = now
            return self.retry_after
        self.last = now
        wait = self.window_start + self.retry_after - now
        return wait if wait > 0 else None


def _hung_up(request: web.Request) -> bool:
    """Whether the client has gone: a streamed body stops writing then."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _redirect(location: str, status: int = 301) -> web.Response:
    return web.Response(status=status, headers={"Location": location},
                        content_type="text/html", body=b"")


def _respond(body: bytes, status: int = 200, content_type: str = "text/html",
             charset: str | None = "utf-8", headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(status=status, body=body, headers=headers)
    response.content_type = content_type
    if charset:
        response.charset = charset
    return response


def _https_url(request: web.Request) -> str:
    return f"https://{request.host.split(':')[0]}{request.path_qs}"


SERVER_HEADERS = {
    SCLERO: "Apache", "www.ncbi.nlm.nih.gov": "nginx", "pubmed.ncbi.nlm.nih.gov": "nginx", "pmc.ncbi.nlm.nih.gov": "nginx",
    "academic.oup.com": "cloudflare", "www.linkedin.com": "Play",
    "www.raynauds-cure-news.com": "Parking/1.0", "archive.org": "nginx",
    "web.archive.org": "nginx",
}


class Behaviours:
    """One handler per simulated host; holds the pre-rendered pages and the state."""

    def __init__(self, watched: dict[str, _WatchedPage], sclero_paths: frozenset[str]) -> None:
        self.watched = watched
        self.sclero_paths = sclero_paths
        self.reuters_limit = _RateLimit()
        self.sclero_pages = {p: _sclero_page(_title_from_path(p), "<p>Information about "
                                             f"{_e(_title_from_path(p))}.</p>")
                             for p in sclero_paths}
        self.not_found = _html("404 Not Found", "<h1>Not Found</h1><p>The requested URL was not "
                               "found on this server.</p>")
        self.pubmed = {pmid: _pubmed_page(pmid, a) for pmid, a in PUBMED.items()}
        self.pmc = _article_page(" - PMC", PMC_PDE5, "PMC")
        self.oup = _article_page(" | Rheumatology | Oxford Academic", OUP_BOSENTAN,
                                 "OUP Academic")
        self.bentham = _article_page("", BENTHAM_ARTICLE, "The Open Rheumatology Journal")
        self.sciencedirect = _article_page(
            " - ScienceDirect",
            Article(DRIFTED_TITLE, "Autoimmun Rev", "2019/11/01",
                    "Serum ferritin correlated with disease activity in SLE."),
            "ScienceDirect")
        self.pdf_chunk = self._pdf_filler()
        self.hosts: dict[str, Handler] = {
            SCLERO: self.sclero,
            "sclero.org": self.sclero_apex,
            "www.ncbi.nlm.nih.gov": self.ncbi,
            "pubmed.ncbi.nlm.nih.gov": self.pubmed_host,
            "pmc.ncbi.nlm.nih.gov": self.pmc_host,
            "globenewswire.com": self.globenewswire_apex,
            "www.globenewswire.com": self.globenewswire,
            "www.jrheum.org": self.jrheum,
            "www.hopkinsarthritis.org": self.hopkins,
            "academic.oup.com": self.oup_host,
            "www.sciencedirect.com": self.sciencedirect_host,
            "benthamopen.com": self.benthamopen,
            "openrheumatologyjournal.com": self.openrheumatology,
            "www.atsjournals.org": self.atsjournals,
            "onlinelibrary.wiley.com": self.wiley,
            "www.medscape.com": self.medscape,
            "www.raynauds-cure-news.com": self.parked,
            "raynauds-cure-news.com": self.parked,
            "www.prnewswire.com": self.prnewswire,
            "www.linkedin.com": self.linkedin,
            "www.reuters.com": self.reuters,
            "www.hindawi.com": self.hindawi,
            "www.jstor.org": self.jstor,
            "doi.org": self.doi,
            "www.scleroderma-journal.org": self.soft404_host,
            "www.raynauds-clinic.org": self.raynauds_clinic,
            "www.rheumatology.org": self.rheumatology,
            "archive.org": self.wayback_api,
            "web.archive.org": self.wayback,
        }

    # dispatch

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        host = request.host.rsplit(":", 1)[0].lower() if request.host else ""
        handler = self.hosts.get(host)
        if handler is None:
            return _respond(b"Misdirected Request\n", 421, "text/plain")
        return await handler(request)

    def missing(self) -> web.Response:
        return _respond(self.not_found, 404)

    # www.sclero.org

    async def sclero(self, request: web.Request) -> web.StreamResponse:
        if request.scheme == "http":
            return _redirect(_https_url(request))
        path = request.path
        if path in self.watched:
            return self._conditional(request, self.watched[path])
        if path == "/robots.txt":
            return _respond(b"User-agent: *\nDisallow: /cgi-bin/\n\n"
                            b"Sitemap: https://www.sclero.org/sitemap.xml\n", content_type="text/plain")
        if path == "/sitemap.xml":
            urls = "".join(f"<url><loc>https://{SCLERO}{p}</loc></url>" for p in self.watched)
            return _respond(('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns='
                             f'"http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>\n')
                            .encode(), content_type="application/xml")
        if path not in self.sclero_paths:
            return _respond(_sclero_page("Page Not Found", "<p>Sorry, that page does not exist."
                                         "</p>"), 404)
        if path.endswith(".gif"):
            return _respond(TINY_GIF, content_type="image/gif", charset=None)
        if not path.endswith((".html", ".htm", "/")):
            kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
            return _respond(b"/* sclero.org */\n", content_type=kind,
                            charset=None if kind.startswith("image/") else "utf-8")
        return _respond(self.sclero_pages[path])

    def _conditional(self, request: web.Request, page: _WatchedPage) -> web.Response:
        """RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since only without it."""
        validators = {"ETag": page.etag, "Last-Modified": page.last_modified_http}
        inm = request.headers.get("If-None-Match")
        if inm is not None:
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            if "*" in tags or page.etag in tags:
                return web.Response(status=304, headers=validators)
        elif (ims := request.headers.get("If-Modified-Since")) is not None:
            try:
                since = email.utils.parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                since = None
            if since is not None and since.tzinfo is not None and since >= page.last_modified:
                return web.Response(status=304, headers=validators)
        response = web.Response(body=page.body, headers=validators)
        response.headers["Content-Type"] = page.content_type
        return response

    async def sclero_apex(self, request: web.Request) -> web.StreamResponse:
        return _redirect(f"https://{SCLERO}{request.path_qs}")

    # PubMed and PMC

    async def ncbi(self, request: web.Request) -> web.StreamResponse:
        if request.scheme == "http":
            return _redirect(_https_url(request))
        parts = [p for p in request.path.split("/") if p]
        if len(parts) == 2 and parts[0] == "pubmed" and parts[1].isdigit():
            return _redirect(f"https://pubmed.ncbi.nlm.nih.gov/{parts[1]}/")
        if request.path.startswith("/pmc/articles/PMC"):
            return _redirect(f"https://pmc.ncbi.nlm.nih.gov{request.path[len('/pmc'):]}")
        return self.missing()

    async def pmc_host(self, request: web.Request) -> web.StreamResponse:
        if request.scheme == "http":
            return _redirect(_https_url(request))
        if request.path == "/articles/PMC5123456/":
            return _respond(self.pmc)
        return self.missing()

    async def pubmed_host(self, request: web.Request) -> web.StreamResponse:
        if request.scheme == "http":
            return _redirect(_https_url(request))
        pmid = request.path.strip("/")
        if pmid in self.pubmed:
            if not request.path.endswith("/"):
                return _redirect(f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/")
            return _respond(self.pubmed[pmid])
        return _respond(_html("Page not available - PubMed", "<h1>Page not available</h1>"
                              "<p>The page you requested could not be found.</p>"), 404)

    # news wires

    async def globenewswire_apex(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/news-release/"):
            return _redirect("https://www.globenewswire.com/")
        return _redirect(f"https://www.globenewswire.com{request.path_qs}")

    async def globenewswire(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/":
            return _respond(_html(
                "GlobeNewswire: News Release Distribution Service",
                "<h1>Press Release Distribution</h1><p>Latest press releases</p>"))
        return self.missing()

    async def prnewswire(self, request: web.Request) -> web.StreamResponse:
        if request.path == urlsplit(U_PRNEWS).path:
            return _respond(_html(
                "This press release is no longer available | PR Newswire",
                "<h1>This press release is no longer available.</h1>"
                "<p>The news release you requested has expired or has been removed by the "
                'issuer. <a href="/news-releases/">Browse the latest news releases</a>.</p>'))
        return self.missing()

    async def reuters(self, request: web.Request) -> web.StreamResponse:
        if request.path != urlsplit(U_REUTERS).path:
            return self.missing()
        wait = self.reuters_limit.admit(asyncio.get_running_loop().time())
        if wait is not None:
            return _respond(b"Too Many Requests\n", 429, "text/plain",
                            headers={"Retry-After": str(max(1, round(wait)))})
        return _respond(_html(f"{REUTERS_TITLE} | Reuters",
                              f"<article><h1>{_e(REUTERS_TITLE)}</h1><p>A small trial found "
                              "that sildenafil reduced Raynaud's attacks.</p></article>",
                              {"og:title": REUTERS_TITLE, "og:site_name": "Reuters"}))

    # journals and publishers

    async def jrheum(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/":
            return _respond(_html("The Journal of Rheumatology", "<h1>The Journal of "
                                  "Rheumatology</h1>"))
        return self.missing()

    async def hopkins(self, request: web.Request) -> web.StreamResponse:
        if request.scheme == "http":
            return _redirect(_https_url(request))
        if request.path == "/":
            return _respond(_html("Johns Hopkins Arthritis Center", "<h1>Johns Hopkins "
                                  "Arthritis Center</h1>"))
        return _respond(_html(
            "Page Not Found | Johns Hopkins Arthritis Center",
            "<h1>Page Not Found</h1><p>Sorry, the page you are looking for could not be "
            'found. Try the <a href="/">home page</a> or search the site.</p>'))

    async def oup_host(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/rheumatology/article/57/suppl_3/"):
            return _respond(CLOUDFLARE_CHALLENGE, 403, headers={
                "Server": "cloudflare", "CF-RAY": "8e3f1c2b9a7d4e21-IAD",
                "cf-mitigated": "challenge", "Cache-Control":
                "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, "
                "pre-check=0", "Critical-CH": "Sec-CH-UA-Bitness, Sec-CH-UA-Arch"})
        if request.path == "/rheumatology/article/56/9/1500/3861234":
            return _respond(self.oup, headers={"CF-RAY": "8e3f1c2b9a7d4e22-IAD"})
        return self.missing()

    async def sciencedirect_host(self, request: web.Request) -> web.StreamResponse:
        if request.path == urlsplit(U_SCIENCEDIRECT).path:
            return _respond(self.sciencedirect)
        return self.missing()

    async def benthamopen(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/ABSTRACT/TORJ-7-94":
            return _redirect("https://openrheumatologyjournal.com/VOLUME/7/PAGE/94/")
        return self.missing()

    async def openrheumatology(self, request: web.Request) -> web.StreamResponse:
        if request.scheme == "http":
            return _redirect(_https_url(request))
        if request.path == "/VOLUME/7/PAGE/94/":
            return _respond(self.bentham)
        return self.missing()

    async def atsjournals(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/doi/"):
            return _respond(_html("503 Service Unavailable", "<h1>Service Unavailable</h1><p>The "
                                  "server is temporarily unable to service your request.</p>"),
                            503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        return self.missing()

    async def wiley(self, request: web.Request) -> web.StreamResponse:
        if request.path == urlsplit(U_WILEY).path:
            return _redirect("https://onlinelibrary.wiley.com/action/showLogin?uri="
                             + quote(request.path, safe=""), 302)
        if request.path == "/action/showLogin":
            return _respond(_html("Log in | Wiley Online Library", (
                '<h1>Log in to Wiley Online Library</h1><form method="post" '
                'action="/action/doLogin"><label>Email or Customer ID <input name="login">'
                '</label><label>Password <input type="password" name="password"></label>'
                "<button>Log In</button></form>")))
        return self.missing()

    async def medscape(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/viewarticle/883512":
            return _respond(_html("410 Gone", "<h1>Gone</h1><p>The requested resource is no "
                                  "longer available on this server.</p>"), 410)
        return self.missing()

    async def parked(self, request: web.Request) -> web.StreamResponse:
        domain = "raynauds-cure-news.com"
        searches = ("Raynaud's Treatment", "Cold Hands Remedy", "Circulation Supplements",
                    "Scleroderma Doctors", "Nifedipine Side Effects")
        related = "".join(f'<li><a href="/?search={quote(s)}">{_e(s)}</a></li>' for s in searches)
        return _respond(_html(
            f"{domain} - This domain is for sale!",
            f'<div id="parking"><h1>{domain}</h1><p>This domain is for sale! '
            '<a href="https://sedo.com/search/details/?domain=raynauds-cure-news.com">'
            "Buy this domain</a></p><h2>Related searches</h2><ul>" + related + "</ul>"
            '<p class="footer">The Sponsored Listings displayed above are served '
            "automatically by a third party. Copyright &copy; Sedo GmbH. "
            '<a href="https://sedo.com/services/parking.php3">Sedo Domain Parking</a>.</p></div>',
            head='\n<script src="https://img.sedoparking.com/templates/js/min/parking.js">'
                 "</script>"))

    async def linkedin(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/robots.txt":
            return self.missing()
        response = _respond(LINKEDIN_999, 999)
        response.set_status(999, "Request denied")
        return response

    async def hindawi(self, request: web.Request) -> web.StreamResponse:
        if request.path != "/journals/ijr/2018/9321497/":
            return self.missing()
        await asyncio.sleep(TIMEOUT_ROUTE_DELAY)
        return _respond(_article_page("", Article(HINDAWI_TITLE, "Int J Rheumatol", "2018/10/02"),
                                      "Hindawi"))

    async def jstor(self, request: web.Request) -> web.StreamResponse:
        if request.path != "/stable/20012345":
            return self.missing()
        if request.query.get("cookieSet") == "1":
            return _redirect("https://www.jstor.org/stable/20012345", 302)
        return _redirect("https://www.jstor.org/stable/20012345?cookieSet=1", 302)

    async def doi(self, request: web.Request) -> web.StreamResponse:
        if request.path.lower() == "/10.1093/rheumatology/kex123":
            return _redirect("https://academic.oup.com/rheumatology/article/56/9/1500/3861234",
                             302)
        return _respond(_html("Error: DOI Not Found", "<h1>DOI Not Found</h1>"), 404)

    async def soft404_host(self, request: web.Request) -> web.StreamResponse:
        return _respond(_html(
            "Scleroderma Journal - Research and News",
            "<h1>Scleroderma Journal</h1><p>Welcome to the Scleroderma Journal. Browse our "
            'latest issue, news and research.</p><ul><li><a href="/">Home</a></li>'
            '<li><a href="/archive/">Archive</a></li></ul>'))

    async def raynauds_clinic(self, request: web.Request) -> web.StreamResponse:
        if request.scheme == "http":
            return _redirect(_https_url(request))
        return _respond(_html("Raynaud's Clinic", "<h1>Botulinum toxin injections</h1>"))

    async def rheumatology(self, request: web.Request) -> web.StreamResponse:
        if request.path != urlsplit(U_PDF).path:
            return self.missing()
        response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        response.content_length = PDF_SIZE
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
        tail = b"\n%%EOF\n"
        try:
            await response.write(head)
            remaining = PDF_SIZE - len(head) - len(tail)
            while remaining > 0:
                # A write into a socket that is not full never yields, and over
                # TLS a reset peer is only noticed after a yield: without this
                # check the loop wrote the whole PDF into a dead connection and
                # asyncio logged "socket.send() raised exception." per chunk.
                await asyncio.sleep(0)
                if _hung_up(request):
                    return response
                chunk = self.pdf_chunk if remaining >= PDF_CHUNK else self.pdf_chunk[:remaining]
                await response.write(chunk)
                remaining -= len(chunk)
            await response.write(tail)
            await response.write_eof()
        except ConnectionError:
            pass  # the checker read its bounded prefix and hung up: expected.
        return response

    @staticmethod
    def _pdf_filler() -> bytes:
        line = b"% Raynaud's Phenomenon Fact Sheet - American College of Rheumatology\n"
        return (line * (PDF_CHUNK // len(line) + 1))[:PDF_CHUNK]

    # the Wayback Machine

    async def wayback_api(self, request: web.Request) -> web.StreamResponse:
        if request.path != "/wayback/available":
            return self.missing()
        url = request.query.get("url", "")
        stamp = request.query.get("timestamp", "")
        document: dict[str, object] = {"url": url, "archived_snapshots": {}}
        found = WAYBACK.get(_wayback_key(url)) if url else None
        if found:
            original, stamps, _ = found
            best = _closest(stamps, stamp)
            document["archived_snapshots"] = {"closest": {
                "status": "200", "available": True,
                "url": f"http://web.archive.org/web/{best}/{original}", "timestamp": best}}
        if stamp:
            document["timestamp"] = stamp
        return _respond(json.dumps(document).encode(), content_type="application/json")

    async def wayback(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path
        if not raw.startswith("/web/"):
            return self.missing()
        stamp, _, target = raw[len("/web/"):].partition("/")
        stamp = stamp[:14]
        for scheme in ("http:/", "https:/"):  # clients may squash "//" in a path
            if target.startswith(scheme) and not target.startswith(scheme + "/"):
                target = scheme + "/" + target[len(scheme):]
        found = WAYBACK.get(_wayback_key(target))
        if not stamp.isdigit() or not found:
            return _respond(_html("Wayback Machine", "<p>Hrm. The Wayback Machine has not "
                                  "archived that URL.</p>"), 404)
        original, stamps, title = found
        best = _closest(stamps, stamp)
        if best != stamp:
            return _redirect(f"http://web.archive.org/web/{best}/{original}", 302)
        when = dt.datetime.strptime(best, "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc)
        return _respond(_html(title, (
            "<!-- BEGIN WAYBACK TOOLBAR INSERT --><div id=\"wm-ipp\">The Wayback Machine - "
            f"http://web.archive.org/web/{best}/{_e(original)}</div>"
            f"<!-- END WAYBACK TOOLBAR INSERT -->\n<h1>{_e(title)}</h1>"),
            {"citation_title": title}), headers={
            "Memento-Datetime": email.utils.format_datetime(when, usegmt=True),
            "Link": f'<{original}>; rel="original"'})


def _closest(stamps: tuple[str, ...], wanted: str) -> str:
    """The snapshot nearest in time to `wanted` (a 1-14 digit prefix); latest if none."""
    if not wanted.isdigit():
        return stamps[-1]
    target = int(wanted.ljust(14, "0")[:14])
    return min(stamps, key=lambda s: (abs(int(s) - target), s))


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    """Each host answers with its own Server header (the challenge page sets its own)."""
    if "Server" not in response.headers:
        host = request.host.rsplit(":", 1)[0].lower() if request.host else ""
        response.headers["Server"] = SERVER_HEADERS.get(host, "nginx")


# -- assembly ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedPages:
    """The watched pages, read once, and the verdict expected for each link."""

    watched: dict[str, _WatchedPage]
    sclero_paths: frozenset[str]
    truth: dict[str, Truth]


WATCHED_FILES = (
    # path, file, Content-Type, Last-Modified, encoding to read links with
    (TREATMENTS_PATH, "treatments.html", "text/html",
     dt.datetime(2020, 1, 20, 18, 42, 7, tzinfo=dt.timezone.utc), "cp1252"),
    (RAYNAUDS_PATH, "raynauds.html", "text/html; charset=utf-8",
     dt.datetime(2019, 11, 5, 9, 15, 0, tzinfo=dt.timezone.utc), "utf-8"),
)


def load_pages(pages_dir: Path = PAGES_DIR) -> LoadedPages:
    """Read the watched pages, learn the sclero.org paths they use, derive `truth`.

    Serving exactly the linked paths (and 404 elsewhere) keeps sclero.org an
    honest host for soft-404 probes; a link to an unsimulated URL is a bug in
    the page or here, so it fails loudly.
    """
    watched: dict[str, _WatchedPage] = {}
    truth: dict[str, Truth] = {}
    paths: set[str] = set()
    for path, name, content_type, modified, encoding in WATCHED_FILES:
        body = (pages_dir / name).read_bytes()
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        watched[path] = _WatchedPage(body, content_type, etag, modified)
        page_url = f"https://{SCLERO}{path}"
        for href, url in page_hrefs(body.decode(encoding, errors="replace"), page_url):
            verdict = _link_truth(url, page_url)
            if truth.setdefault(truth_key(href, url, verdict), verdict) != verdict:
                raise ValueError(f"{url}: two expected verdicts")
            parts = urlsplit(url) if url.startswith(("http:", "https:")) else None
            if parts and parts.hostname == SCLERO and parts.path != BROKEN_NAV_PATH:
                paths.add(parts.path or "/")
    paths.difference_update(watched)
    return LoadedPages(watched, frozenset(paths | {"/"}), truth)


BEHAVIOURS = web.AppKey("behaviours", Behaviours)


# -- last week -----------------------------------------------------------------
# The demo audits the site twice, "last week" and "this week", so that its
# report shows what broke this week, what is still broken and what was fixed.
# Last week, PubMed had an outage on one article (fixed since), while the
# press release and the ScienceDirect article still answered as cited (they
# broke this week). Every other URL behaves the same both weeks.

LAST_WEEK = web.AppKey("last_week", dict)


def _last_week_page(url: str) -> web.Response | None:
    if url == U_PUBMED_PT:
        return web.Response(status=503, text="Service Temporarily Unavailable",
                            headers={"Retry-After": "1"})
    if url == U_CORBUS:
        article = Article(CORBUS_TITLE, "GlobeNewswire", "2018/07/25",
                          "Corbus Pharmaceuticals announced today that the Company will proceed "
                          "with a Phase 3 trial.")
        return _respond(_article_page(" | GlobeNewswire", article, "GlobeNewswire"))
    if url == U_SCIENCEDIRECT:
        article = Article(IVIG_SSCAM_TITLE, "Autoimmun Rev", "2020/01/01")
        return _respond(_article_page(" - ScienceDirect", article, "ScienceDirect"))
    return None


@web.middleware
async def _last_week_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.app[LAST_WEEK].get("on"):
        scheme = "https" if request.transport and request.transport.get_extra_info("sslcontext") else "http"
        host = (request.host or "").split(":")[0].lower()
        response = _last_week_page(f"{scheme}://{host}{request.path_qs}")
        if response is not None:
            return response
    return await handler(request)


def build_app(pages: LoadedPages | None = None) -> web.Application:
    """The virtual-hosting application (no sockets): usable with aiohttp's test server."""
    pages = pages or load_pages()
    behaviours = Behaviours(pages.watched, pages.sclero_paths)
    app = web.Application(middlewares=[_last_week_middleware])
    app[LAST_WEEK] = {"on": False}
    app.router.add_route("*", "/{tail:.*}", behaviours.dispatch)
    app.on_response_prepare.append(_server_header)
    app[BEHAVIOURS] = behaviours
    return app


# -- serving on loopback -----------------------------------------------------------

UNTRUSTED_HOSTS = ("www.raynauds-clinic.org",)
REFUSED_HOSTS = ("clinicaltrials.gov",)
CA_FILE_NAME = "simulated-site-ca.pem"


@dataclass(frozen=True)
class SimulatedSite:
    """Where the running simulation listens and what the checker should conclude.

    `truth` maps every link of the watched pages to the expected (status,
    reason), keyed as the pipeline names links: the absolute URL, or the href
    as written for links never fetched (mailto:, "#fragment", the broken
    "http://").
    """

    http_port: int
    https_port: int
    refused_port: int
    ca_pem_path: Path
    connect_to: tuple[tuple[str, str], ...]
    pages: tuple[str, ...]
    truth: dict[str, Truth]
    untrusted_tls_port: int = 0
    archive_url: str = "https://archive.org/wayback/available"
    hosts: tuple[str, ...] = field(default=())


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _refusing_socket() -> socket.socket:
    """Bound but never listening: connections are refused and the port stays ours."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _tls_contexts(hosts: list[str], ca_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    import trustme  # a runtime need of the demo only

    ca = trustme.CA(organization_name="citation-monitor demo CA")
    ca.cert_pem.write_to_path(str(ca_path))
    good = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hosts).configure_cert(good)
    stranger = trustme.CA(organization_name="Unknown CA")
    bad = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    stranger.issue_cert(*UNTRUSTED_HOSTS).configure_cert(bad)
    return good, bad


class SimulatedSiteServer:
    """Start/stop pair for callers that cannot hold an `async with` (the CLI demo)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self._runner: web.AppRunner | None = None
        self._refusing: socket.socket | None = None
        self._app: web.Application | None = None

    def set_last_week(self, on: bool) -> None:
        """Serve last week's answers (see `_last_week_page`) or this week's."""
        assert self._app is not None, "start() first"
        self._app[LAST_WEEK]["on"] = on

    async def start(self) -> SimulatedSite:
        pages = load_pages()
        app = build_app(pages)
        self._app = app
        hosts = sorted(app[BEHAVIOURS].hosts)
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca_path = self.workdir / CA_FILE_NAME
        good, bad = _tls_contexts([h for h in hosts if h not in UNTRUSTED_HOSTS], ca_path)
        runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
        await runner.setup()
        self._runner = runner
        plain, secure, untrusted = _listening_socket(), _listening_socket(), _listening_socket()
        self._refusing = _refusing_socket()
        for sock, context in ((plain, None), (secure, good), (untrusted, bad)):
            await web.SockSite(runner, sock, ssl_context=context).start()
        ports = [s.getsockname()[1] for s in (plain, secure, untrusted, self._refusing)]
        http_port, https_port, untrusted_port, refused_port = ports
        connect_to: list[tuple[str, str]] = []
        for host in hosts + list(REFUSED_HOSTS):
            refused = host in REFUSED_HOSTS
            tls_port = refused_port if refused else (
                untrusted_port if host in UNTRUSTED_HOSTS else https_port)
            connect_to.append((f"{host}:80", f"127.0.0.1:{refused_port if refused else http_port}"))
            connect_to.append((f"{host}:443", f"127.0.0.1:{tls_port}"))
        connect_to.append(("*", "refuse"))
        return SimulatedSite(
            http_port=http_port, https_port=https_port, refused_port=refused_port,
            ca_pem_path=ca_path, connect_to=tuple(connect_to),
            pages=(TREATMENTS_URL, RAYNAUDS_URL), truth=dict(pages.truth),
            untrusted_tls_port=untrusted_port, hosts=tuple(hosts + list(REFUSED_HOSTS)))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._refusing is not None:
            self._refusing.close()
            self._refusing = None


@contextlib.asynccontextmanager
async def start_simulated_site(workdir: Path) -> AsyncIterator[SimulatedSite]:
    """Run the simulated site for the duration of an `async with` block."""
    server = SimulatedSiteServer(workdir)
    try:
        yield await server.start()
    finally:
        await server.stop()
