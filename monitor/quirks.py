"""Known address changes of cited hosts: one table of named rewrites.

Some publishers moved their pages to a new form of address while the old form
keeps answering, or answers badly (PubMed's old `www.ncbi.nlm.nih.gov/pubmed/ID`
form has been seen answering 431 and 503 since the 2020 move). A link checker
that only follows redirects never tells the editor to update such links; this
table does. Like lychee's `quirks` module, each rewrite is named and matched by
one regular expression; the first quirk that yields a new address wins (a
quirk may match and decline, e.g. an Entrez link to a non-PubMed database).

`classify` uses `rewrite()` to suggest the new address (status `moved`, reason
`known_move`) even when the old one still answers. The checker may use it too,
to check the new form when the old one fails.

Some hosts answer 200 with an empty shell where a removed item was:
`placeholder_site()` knows their shells (YouTube's removed video).

Persistent-identifier resolvers (doi.org, handle.net, purl.org...) redirect by
design: the resolver URL is the stable citation and must never be replaced by
the publisher URL it currently points to; `is_persistent_resolver()` says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "HTTPS_HOSTS",
    "PERSISTENT_RESOLVERS",
    "QUIRKS",
    "Quirk",
    "Rewrite",
    "is_persistent_resolver",
    "placeholder_site",
    "rewrite",
]


@dataclass(frozen=True, slots=True)
class Quirk:
    """One named rewrite.

    `masks` are HTTP statuses the old form is known to answer spuriously: they
    say nothing about the cited item, so they do not make the link an error.
    """

    name: str
    pattern: re.Pattern[str]
    build: Callable[[re.Match[str]], str | None]
    why: str
    masks: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Rewrite:
    """The new address for a URL, and the quirk that gave it."""

    url: str
    quirk: Quirk


_SERVER_ERRORS = frozenset({500, 502, 503, 504})

# Hosts known to serve the same pages over HTTPS: an http:// link to them is
# out of date even when the http form still answers without redirecting.
HTTPS_HOSTS: frozenset[str] = frozenset({
    "doi.org", "pubmed.ncbi.nlm.nih.gov", "www.ncbi.nlm.nih.gov", "pmc.ncbi.nlm.nih.gov",
    "europepmc.org", "clinicaltrials.gov", "academic.oup.com", "onlinelibrary.wiley.com",
    "link.springer.com", "www.sciencedirect.com", "www.nature.com", "www.nejm.org",
    "jamanetwork.com", "www.bmj.com", "www.thelancet.com", "www.tandfonline.com",
    "journals.sagepub.com", "www.karger.com", "www.frontiersin.org", "www.mdpi.com",
    "www.atsjournals.org", "www.jrheum.org", "www.benthamscience.com",
    "benthamopen.com", "openrheumatologyjournal.com", "www.globenewswire.com",
    "www.prnewswire.com", "www.businesswire.com", "www.medscape.com",
    "www.sclero.org", "en.wikipedia.org", "www.youtube.com",
})

PERSISTENT_RESOLVERS: frozenset[str] = frozenset({
    "doi.org", "dx.doi.org", "www.doi.org", "hdl.handle.net", "purl.org",
    "purl.oclc.org", "n2t.net", "identifiers.org", "w3id.org", "www.w3id.org",
    "arks.org",
})


def _pubmed_id(m: re.Match[str]) -> str | None:
    return f"https://pubmed.ncbi.nlm.nih.gov/{m['id']}/"


def _pubmed_search(m: re.Match[str]) -> str | None:
    return f"https://pubmed.ncbi.nlm.nih.gov/?{m['query']}"


def _entrez(m: re.Match[str]) -> str | None:
    """Old Entrez query links: only a single PubMed record is rewritten."""
    params = {k.lower(): v for k, v in parse_qs(m["query"]).items()}
    if [v.lower() for v in params.get("db", [])] != ["pubmed"]:
        return None
    # cmd=Link, dopt=pubmed_pubmed, LinkName=pubmed_pmc_refs...: the record's
    # related or citing articles, a list of other papers, not the record.
    if any(v.lower() == "link" for v in params.get("cmd", [])) or "linkname" in params \
            or any("_" in v for v in params.get("dopt", [])):
        return None
    uids = params.get("list_uids") or params.get("uid") or []
    if len(uids) == 1 and uids[0].isascii() and uids[0].isdigit():  # a PMID, not "¹²"
        return f"https://pubmed.ncbi.nlm.nih.gov/{uids[0]}/"
    return None


def _pmc(m: re.Match[str]) -> str | None:
    return f"https://pmc.ncbi.nlm.nih.gov/articles/{m['id']}/"


def _doi(m: re.Match[str]) -> str | None:
    return f"https://doi.org/{m['rest']}"


def _clinicaltrials(m: re.Match[str]) -> str | None:
    return f"https://clinicaltrials.gov/study/{m['id']}"


def _https(m: re.Match[str]) -> str | None:
    if m["host"].lower() not in HTTPS_HOSTS:
        return None
    return "https://" + m["rest"]


QUIRKS: tuple[Quirk, ...] = (
    Quirk(
        "pubmed",
        re.compile(r"^https?://(?:www\.)?ncbi\.nlm\.nih\.gov/pubmed/(?P<id>\d+)/?(?:[?#].*)?$",
                   re.IGNORECASE),
        _pubmed_id,
        "PubMed moved its records to pubmed.ncbi.nlm.nih.gov in 2020",
        _SERVER_ERRORS | {431},
    ),
    Quirk(
        "pubmed_search",
        re.compile(r"^https?://(?:www\.)?ncbi\.nlm\.nih\.gov/pubmed/?\?(?P<query>[^#]+)",
                   re.IGNORECASE),
        _pubmed_search,
        "PubMed moved its searches to pubmed.ncbi.nlm.nih.gov in 2020",
        _SERVER_ERRORS | {431},
    ),
    Quirk(
        "pubmed_entrez",
        re.compile(r"^https?://(?:www\.)?ncbi\.nlm\.nih\.gov/(?:entrez/query\.fcgi|sites/entrez)"
                   r"\?(?P<query>[^#]+)", re.IGNORECASE),
        _entrez,
        "The old Entrez PubMed links were retired; PubMed records live at pubmed.ncbi.nlm.nih.gov",
        _SERVER_ERRORS | {431},
    ),
    Quirk(
        "pmc",
        re.compile(r"^https?://(?:www\.)?ncbi\.nlm\.nih\.gov/pmc/articles/(?P<id>PMC\d+)/?(?:#.*)?$",
                   re.IGNORECASE),
        _pmc,
        "PubMed Central moved its articles to pmc.ncbi.nlm.nih.gov in 2024",
        _SERVER_ERRORS,
    ),
    Quirk(
        "dx_doi",
        re.compile(r"^https?://(?:dx\.|www\.)?doi\.org/(?P<rest>10\..+)$", re.IGNORECASE),
        _doi,
        "The DOI resolver's preferred form is https://doi.org/",
    ),
    Quirk(
        "clinicaltrials",
        re.compile(r"^https?://(?:www\.)?clinicaltrials\.gov/ct2/show/(?:study/)?(?P<id>NCT\d{8})"
                   r"/?(?:[?#].*)?$", re.IGNORECASE),
        _clinicaltrials,
        "ClinicalTrials.gov retired its classic /ct2/show/ pages in 2024",
    ),
    Quirk(
        "https",
        re.compile(r"^http://(?P<rest>(?P<host>[^/:?#]+)(?:[/?#].*)?)$", re.IGNORECASE),
        _https,
        "The site serves the same page over HTTPS",
    ),
)


def rewrite(url: str) -> Rewrite | None:
    """The new address for `url` when a quirk knows one, else None.

    Only the first matching quirk applies (as in lychee); a quirk that
    matches but builds nothing, or builds the same URL, is not a rewrite.
    """
    for quirk in QUIRKS:
        m = quirk.pattern.match(url)
        if m is None:
            continue
        new = quirk.build(m)
        if new is None or new == url:
            continue
        return Rewrite(new, quirk)
    return None


def is_persistent_resolver(url: str) -> bool:
    """Whether `url` is a persistent identifier whose redirects are by design."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in PERSISTENT_RESOLVERS


# Hosts whose 200 page with a title holding nothing but the site's own name is
# an empty shell, by path. YouTube serves "<title> - YouTube</title>", no
# og:title, for a removed or private video, and the same shell to a server it
# takes for a bot ("Sign in to confirm you're not a bot"): either way the
# check saw no video, and a person must look.
_PLACEHOLDERS: tuple[tuple[re.Pattern[str], re.Pattern[str], frozenset[str], str], ...] = (
    (re.compile(r"^(?:www\.|m\.)?youtube(?:-nocookie)?\.com$"),
     re.compile(r"^/(?:watch|shorts/|embed/|live/|v/)"),
     frozenset({"- youtube", "youtube"}), "YouTube"),
)


def placeholder_site(url: str, title: str, meta_title: str) -> str | None:
    """The site's name when `url`'s page with this title is the host's empty
    shell for a missing item, else None. `title` is compared cleaned
    (whitespace collapsed, casefolded)."""
    if meta_title.strip():
        return None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    seen = " ".join(title.split()).casefold()
    for hosts, paths, titles, name in _PLACEHOLDERS:
        if hosts.match(host) and paths.match(parts.path) and seen in titles:
            return name
    return None
