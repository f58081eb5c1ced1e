"""Table-driven tests of classification, title matching and the per-URL state.

Titles come from the watched page (/work/shared/seed/treatments-dm-pm.txt);
observations are built by hand, as the checker would record them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import classify as classify_module
from monitor import quirks
from monitor.classify import (
    CONFIRM_AFTER,
    DRIFT_THRESHOLD,
    PRESENT_THRESHOLD,
    RECENT_WINDOW,
    classify,
    classify_unprobed,
    is_confirmed,
    is_specific_title,
    next_state,
    titles_match,
)
from monitor.types import ErrorKind, Hop, LinkStatus, Observation, UrlState, Verdict

T0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.timezone.utc)

# Citation titles of the seed page.
RTX_ILD = ("Rituximab for refractory rapidly progressive interstitial lung disease (RP–ILD) "
           "related to anti-MDA5 antibody–positive amyopathic dermatomyositis")
RTX_DM = "The Use of Rituximab in the Management of Refractory Dermatomyositis"
CORBUS = ("Corbus Pharmaceuticals to Commence Phase 3 Study of Lenabasum for the Treatment of "
          "Rare Autoimmune Disease Dermatomyositis")
MALIGNANCY = ("(Expired Article) Dermatomyositis and Polymyositis Associated with Malignancy: "
              "A 21-year Retrospective Study")
PHYSIO = "Physical therapy in adult inflammatory myopathy patients: a systematic review"
IL18 = ("Expression of interleukin-18 in muscle tissue of patients with polymyositis or "
        "dermatomyositis and effects of conventional immunosuppressive treatment")
IVIG_SSC = ("Corticosteroid-sparing (CS) benefit of intravenous immunoglobulin (IVIg) in systemic "
            "sclerosis-associated myopathy (SScAM): A comparative study in 52 patients")
ADM = ("Case Report: Intravenous Immune Globulin in Amyopathic Dermatomyositis (ADM) – Report of "
       "Two Cases and Review of the Literature")
ATS = ("Successful Treatment With Intravenous High-Dose Immunoglobulin For Cardiomyopathy In "
       "Dermatomyositis Complicated With Rapid Progressive Interstitial Pneumonia And Macrophage "
       "Activation Syndrome")
SCT = "Inflammatory myopathies (IM) after allogeneic stem cell transplantation (SCT)"
PM_TREATED = "How is Polymyositis Treated?"

PUBMED = "https://pubmed.ncbi.nlm.nih.gov/29713898/"
OLD_PUBMED = "https://www.ncbi.nlm.nih.gov/pubmed/29713898"
OUP = "https://academic.oup.com/rheumatology/article/57/12/2114/5068311"
GNW = ("https://www.globenewswire.com/news-release/2018/07/25/1541681/0/en/Corbus-Pharmaceuticals"
       "-to-Commence-Phase-3-Study-of-Lenabasum.html")
WILEY = "https://onlinelibrary.wiley.com/doi/full/10.1002/mus.26182"


def hop(url: str, status: int, location: str) -> Hop:
    return Hop(url=url, status=status, location=location)


def ob(url: str = PUBMED, status: int | None = 200, **kw: Any) -> Observation:
    """An observation as the checker records it; final_url follows the hops."""
    redirects = tuple(kw.pop("redirects", ()))
    final = kw.pop("final_url", redirects[-1].location if redirects else url)
    return Observation(url=url, checked_at=kw.pop("checked_at", T0), http_status=status,
                       final_url=final, redirects=redirects, **kw)


@dataclass
class Case:
    id: str
    obs: Observation
    status: LinkStatus
    reason: str
    title: str = ""
    probe: Observation | None = None
    previous: UrlState | None = None
    suggested: str | None = field(default=None)

    def run(self) -> Verdict:
        return classify(self.obs, title=self.title, probe=self.probe, previous=self.previous)


OK, MOVED, EXPIRED = LinkStatus.OK, LinkStatus.MOVED, LinkStatus.EXPIRED
ERROR, BLOCKED, DRIFTED = LinkStatus.ERROR, LinkStatus.BLOCKED, LinkStatus.DRIFTED

CASES: list[Case] = [
    # -- ok ------------------------------------------------------------------------------
    Case("ok_plain", ob(title="Rituximab for refractory rapidly progressive interstitial lung "
                        "disease related to anti-MDA5 antibody-positive amyopathic "
                        "dermatomyositis - PubMed"), OK, "ok", title=RTX_ILD),
    Case("ok_no_cited_title", ob(title="Something else entirely about gardening"), OK, "ok"),
    Case("ok_generic_title_is_no_evidence", ob(OUP, title="ScienceDirect"), OK, "ok", title=RTX_DM),
    Case("ok_journal_home_title_is_generic", ob(OUP, title="Rheumatology | Oxford Academic"),
         OK, "ok", title=IL18),
    Case("ok_short_cited_title_no_drift",
         ob("https://www.hopkinsmedicine.org/health/conditions-and-diseases/polymyositis",
            title="Polymyositis | Johns Hopkins Medicine"), OK, "ok", title=PM_TREATED),
    Case("ok_meta_title_matches_though_title_differs",
         ob(OUP, title="Oxford Academic", meta_title="Expression of interleukin-18 in muscle tissue "
            "of patients with polymyositis or dermatomyositis and effects of conventional "
            "immunosuppressive treatment"), OK, "ok", title=IL18),
    Case("ok_pdf_without_title", ob(WILEY + ".pdf", content_type="application/pdf"), OK, "ok",
         title=SCT),
    Case("ok_head_request", ob(method="HEAD"), OK, "ok", title=RTX_ILD),
    Case("ok_temporary_redirect_302",
         ob("https://example.org/story/123", redirects=[hop("https://example.org/story/123", 302,
            "https://cdn.example.org/story/123?session=1")]), OK, "temporary_redirect"),
    Case("ok_doi_302_is_normal",
         ob("https://doi.org/10.1007/s10067-018-4132-7", redirects=[hop(
             "https://doi.org/10.1007/s10067-018-4132-7", 302,
             "https://link.springer.com/article/10.1007/s10067-018-4132-7")],
            title="Rituximab for refractory rapidly progressive interstitial lung disease "
                  "(RP-ILD) related to anti-MDA5... | Clinical Rheumatology"),
         OK, "temporary_redirect", title=RTX_ILD),
    Case("ok_doi_301_is_by_design",
         ob("https://doi.org/10.1002/mus.26182", redirects=[hop(
             "https://doi.org/10.1002/mus.26182", 301, WILEY)]), OK, "resolver_redirect", title=SCT),
    Case("ok_temporary_then_permanent_is_not_a_move",
         ob("https://example.org/a/1", redirects=[
             hop("https://example.org/a/1", 302, "https://example.org/b/1"),
             hop("https://example.org/b/1", 301, "https://example.org/c/1")]),
         OK, "temporary_redirect"),
    Case("ok_301_adding_tracking_parameter_is_no_move", ob(OUP, redirects=[
        hop(OUP, 301, OUP + "?utm_source=site&utm_medium=referral")]), OK, "temporary_redirect"),
    Case("ok_301_adding_session_id_is_no_move", ob("https://example.org/x/1.jsp", redirects=[
        hop("https://example.org/x/1.jsp", 301, "https://example.org/x/1.jsp;jsessionid=A1B2?sid=9")]),
         OK, "temporary_redirect"),
    # A 301 to the old form of the same address: normalised by a quirk it is the
    # cited URL again, and "update the link to <the same link>" is no fix.
    Case("ok_301_to_http_form_of_https_host_is_no_move",
         ob("https://www.nejm.org/doi/full/10.1056/x", redirects=[
             hop("https://www.nejm.org/doi/full/10.1056/x", 301, "http://www.nejm.org/doi/full/10.1056/x")],
            final_url="http://www.nejm.org/doi/full/10.1056/x"),
         OK, "temporary_redirect"),
    Case("ok_301_to_old_pubmed_form_is_no_move", ob(PUBMED, redirects=[hop(PUBMED, 301, OLD_PUBMED)]),
         OK, "temporary_redirect"),
    # A 301 to a cookie or consent interstitial that sends the browser back: the
    # page is still at the cited address; the interstitial is no new address.
    Case("ok_301_to_interstitial_and_back_is_no_move", ob("https://example.org/x/1", redirects=[
        hop("https://example.org/x/1", 301, "https://example.org/cookie-check?u=/x/1"),
        hop("https://example.org/cookie-check?u=/x/1", 302, "https://example.org/x/1")]),
         OK, "temporary_redirect"),
    # -- moved ---------------------------------------------------------------------------
    Case("moved_301", ob("https://www.jrheum.org/content/40/12/2031",
                         redirects=[hop("https://www.jrheum.org/content/40/12/2031", 301,
                                        "https://www.jrheum.org/content/jrheum/40/12/2031")]),
         MOVED, "permanent_redirect", title=MALIGNANCY,
         suggested="https://www.jrheum.org/content/jrheum/40/12/2031"),
    Case("moved_308", ob("https://example.org/x/1", redirects=[
        hop("https://example.org/x/1", 308, "https://example.net/x/1")]),
         MOVED, "permanent_redirect", suggested="https://example.net/x/1"),
    Case("moved_http_to_https_301", ob("http://example.org/x/1", redirects=[
        hop("http://example.org/x/1", 301, "https://example.org/x/1")]),
         MOVED, "permanent_redirect", suggested="https://example.org/x/1"),
    Case("moved_http_to_https_even_by_302", ob("http://example.org/x/1", redirects=[
        hop("http://example.org/x/1", 302, "https://example.org/x/1")]),
         MOVED, "permanent_redirect", suggested="https://example.org/x/1"),
    Case("moved_permanent_then_temporary_suggests_last_permanent",
         ob("http://example.org/x/1", redirects=[
             hop("http://example.org/x/1", 301, "https://example.org/x/1"),
             hop("https://example.org/x/1", 301, "https://www.example.org/x/1"),
             hop("https://www.example.org/x/1", 302, "https://www.example.org/x/1?cookie=set")]),
         MOVED, "permanent_redirect", suggested="https://www.example.org/x/1"),
    Case("moved_relative_location", ob("https://example.org/x/1", redirects=[
        hop("https://example.org/x/1", 301, "/y/1")], final_url="https://example.org/y/1"),
         MOVED, "permanent_redirect", suggested="https://example.org/y/1"),
    Case("moved_keeps_fragment", ob("https://example.org/x/1#results", redirects=[
        hop("https://example.org/x/1", 301, "https://example.org/y/1")]),
         MOVED, "permanent_redirect", suggested="https://example.org/y/1#results"),
    Case("moved_known_pubmed_even_when_answering_200",
         ob(OLD_PUBMED, title="Rituximab for refractory ... - PubMed - NCBI"),
         MOVED, "known_move", suggested=PUBMED),
    Case("moved_known_pubmed_431", ob(OLD_PUBMED, 431), MOVED, "known_move", suggested=PUBMED),
    Case("moved_known_pubmed_503", ob(OLD_PUBMED, 503), MOVED, "known_move", suggested=PUBMED),
    Case("moved_pubmed_redirect_agrees_with_quirk",
         ob("http://www.ncbi.nlm.nih.gov/pubmed/29713898", redirects=[
             hop("http://www.ncbi.nlm.nih.gov/pubmed/29713898", 301, OLD_PUBMED),
             hop(OLD_PUBMED, 301, PUBMED)]),
         MOVED, "permanent_redirect", suggested=PUBMED),
    Case("moved_known_dx_doi",
         ob("http://dx.doi.org/10.1007/s10067-018-4132-7", redirects=[hop(
             "http://dx.doi.org/10.1007/s10067-018-4132-7", 302,
             "https://link.springer.com/article/10.1007/s10067-018-4132-7")]),
         MOVED, "known_move", suggested="https://doi.org/10.1007/s10067-018-4132-7"),
    Case("moved_known_https_host_answering_http",
         ob("http://www.globenewswire.com/news-release/2018/07/25/1541681/0/en/x.html"),
         MOVED, "known_move",
         suggested="https://www.globenewswire.com/news-release/2018/07/25/1541681/0/en/x.html"),
    Case("moved_site_redirect_beats_https_quirk",
         ob("http://www.globenewswire.com/news-release/2018/x.html", redirects=[
             hop("http://www.globenewswire.com/news-release/2018/x.html", 301,
                 "https://www.globenewswire.com/en/news-release/2018/x.html")]),
         MOVED, "permanent_redirect",
         suggested="https://www.globenewswire.com/en/news-release/2018/x.html"),
    Case("moved_known_dx_doi_even_by_301",
         ob("http://dx.doi.org/10.1002/mus.26182", redirects=[
             hop("http://dx.doi.org/10.1002/mus.26182", 301, WILEY)]),
         MOVED, "known_move", suggested="https://doi.org/10.1002/mus.26182"),
    Case("moved_suggestion_drops_added_tracking", ob("http://example.org/x/1?id=7", redirects=[
        hop("http://example.org/x/1?id=7", 301, "https://www.example.org/x/1?id=7&utm_source=old")]),
         MOVED, "permanent_redirect", suggested="https://www.example.org/x/1?id=7"),
    # A user part dresses up the host: "pubmed.ncbi.nlm.nih.gov@evil.example.net" is
    # evil.example.net. The report says "replace the link with the new address":
    # the address suggested is the one a browser would really open.
    Case("moved_suggestion_drops_a_user_part", ob("http://example.org/x/1", redirects=[
        hop("http://example.org/x/1", 301, "http://pubmed.ncbi.nlm.nih.gov@evil.example.net/12345")]),
         MOVED, "permanent_redirect", suggested="http://evil.example.net/12345"),
    Case("moved_suggestion_drops_a_user_and_password", ob("http://example.org/x/1", redirects=[
        hop("http://example.org/x/1", 308,
            "https://www.ncbi.nlm.nih.gov:443@evil.example.net:8443/pmc/?id=1#abstract")]),
         MOVED, "permanent_redirect", suggested="https://evil.example.net:8443/pmc/?id=1#abstract"),
    Case("moved_to_author_page_is_not_login",
         ob("https://example.org/people/7", redirects=[
             hop("https://example.org/people/7", 301, "https://example.org/authors/jones")]),
         MOVED, "permanent_redirect", suggested="https://example.org/authors/jones"),
    Case("moved_to_shorter_non_ancestor_path",
         ob("https://example.org/article/view/123/456", redirects=[
             hop("https://example.org/article/view/123/456", 301, "https://example.org/a/123")]),
         MOVED, "permanent_redirect", suggested="https://example.org/a/123"),
    # -- expired ---------------------------------------------------------------------------
    Case("expired_404", ob(status=404, title="Page not found - PubMed"), EXPIRED, "http_404"),
    Case("expired_410", ob(GNW, 410), EXPIRED, "http_410"),
    Case("expired_404_after_redirect", ob("https://example.org/x/1", 404, redirects=[
        hop("https://example.org/x/1", 301, "https://example.org/y/1")]), EXPIRED, "http_404"),
    Case("expired_pubmed_404_not_masked", ob(OLD_PUBMED, 404), EXPIRED, "http_404"),
    Case("soft404_title_oup", ob(OUP, title="Page Not Found | Oxford Academic"),
         EXPIRED, "soft_404", title=IL18),
    Case("soft404_title_error_404", ob(OUP, title="Error 404 - Page not found"),
         EXPIRED, "soft_404"),
    Case("soft404_title_bare_404", ob(OUP, title="404"), EXPIRED, "soft_404"),
    Case("soft404_title_cant_be_found", ob(GNW, title="Oops! That page can’t be found."),
         EXPIRED, "soft_404", title=CORBUS),
    Case("soft404_title_sorry_couldnt_find", ob(OUP, title="Sorry, we couldn’t find that page"),
         EXPIRED, "soft_404", title=IL18),
    Case("soft404_title_were_sorry", ob(GNW, title="We're sorry, the page you requested cannot "
         "be found | Example Health"), EXPIRED, "soft_404"),
    Case("soft404_title_we_cant_find", ob(GNW, title="We can't find that page - Example Hospital"),
         EXPIRED, "soft_404", title=CORBUS),
    Case("soft404_title_not_found_german", ob(GNW, title="Seite nicht gefunden"), EXPIRED, "soft_404"),
    Case("soft404_text_could_not_be_found", ob(GNW, title="GlobeNewswire",
         text="Sorry, the page you are looking for could not be found. Try the search."),
         EXPIRED, "soft_404", title=CORBUS),
    Case("soft404_text_we_cant_find", ob(GNW, title="News",
         text="Hmm. We can't find that page. It may have moved."), EXPIRED, "soft_404"),
    Case("soft404_text_doesnt_exist", ob(GNW, title="",
         text="This page doesn’t exist or was moved."), EXPIRED, "soft_404"),
    *[Case(f"soft404_text_{lang}", ob("https://www.example-klinik.eu/myositis/behandlung",
           title="Example Klinik", text=text), EXPIRED, "soft_404") for lang, text in (
        ("german", "Die angeforderte Seite wurde nicht gefunden. Zur Startseite"),
        ("french", "Oups ! La page que vous recherchez est introuvable."),
        ("spanish", "Lo sentimos, la página que busca no existe."),
        ("portuguese", "Erro: página não encontrada."),
        ("italian", "Spiacenti, la pagina richiesta non è stata trovata."),
        ("dutch", "Deze pagina is niet gevonden."))],
    Case("soft404_text_with_mismatching_title", ob(GNW, title="Latest news releases from Corbus",
         text="The page you requested could not be found."), EXPIRED, "soft_404", title=CORBUS),
    Case("soft404_final_url_404", ob("https://example.org/x/1", redirects=[
        hop("https://example.org/x/1", 302, "https://example.org/404.html")]), EXPIRED, "soft_404"),
    Case("soft404_final_url_notfound", ob("https://example.org/x/1", redirects=[
        hop("https://example.org/x/1", 302, "https://example.org/errors/notfound?u=x")]),
         EXPIRED, "soft_404"),
    Case("soft404_final_url_aspx", ob("https://example.org/x/1.aspx", redirects=[
        hop("https://example.org/x/1.aspx", 302,
            "https://example.org/Error.aspx?aspxerrorpath=/x/1.aspx")]), EXPIRED, "soft_404"),
    Case("soft404_probe_same_hash", ob(GNW, title="Corbus", content_hash="abc"),
         EXPIRED, "soft_404", title=CORBUS,
         probe=ob("https://www.globenewswire.com/news-release/zq81kx", title="Corbus",
                  content_hash="abc")),
    Case("soft404_probe_same_redirect_target",
         ob("https://example.org/x/1", redirects=[
             hop("https://example.org/x/1", 302, "https://example.org/sorry")]),
         EXPIRED, "soft_404",
         probe=ob("https://example.org/zq81kx", redirects=[
             hop("https://example.org/zq81kx", 302, "https://example.org/sorry")])),
    Case("soft404_probe_same_title_and_text",
         ob("https://example.org/x/1", title="Example Org", content_hash="h1",
            text="Welcome to Example Org. The address /x/1 leads nowhere. " * 10),
         EXPIRED, "soft_404",
         probe=ob("https://example.org/zq81kx", title="Example Org", content_hash="h2",
                  text="Welcome to Example Org. The address /zq81kx leads nowhere. " * 10)),
    Case("redirect_to_home_root", ob(GNW, redirects=[hop(GNW, 301, "https://www.globenewswire.com/")]),
         EXPIRED, "redirect_to_home", title=CORBUS),
    Case("redirect_to_home_index", ob("https://example.org/news/2018/story.html", redirects=[
        hop("https://example.org/news/2018/story.html", 302, "https://example.org/index.php")]),
         EXPIRED, "redirect_to_home"),
    Case("redirect_to_home_locale", ob("https://example.org/en/news/2018/story", redirects=[
        hop("https://example.org/en/news/2018/story", 302, "https://example.org/en-us/")]),
         EXPIRED, "redirect_to_home"),
    Case("redirect_to_home_other_host", ob("http://www.corbuspharma.com/news/2018/lenabasum",
         redirects=[hop("http://www.corbuspharma.com/news/2018/lenabasum", 301,
                        "https://www.newowner.example/")]), EXPIRED, "redirect_to_home"),
    Case("redirect_to_listing_news_releases", ob(GNW, redirects=[
        hop(GNW, 301, "https://www.globenewswire.com/news-releases")]),
         EXPIRED, "redirect_to_home", title=CORBUS),
    Case("redirect_to_search", ob("https://example.org/articles/2018/123", redirects=[
        hop("https://example.org/articles/2018/123", 302,
            "https://example.org/search?q=lenabasum")]), EXPIRED, "redirect_to_home"),
    Case("redirect_to_path_search_gnw_deleted_release", ob(GNW, redirects=[
        hop(GNW, 302, "https://www.globenewswire.com/en/search/organization/Corbus%20Pharmaceuticals")],
         title="Corbus Pharmaceuticals Holdings, Inc. News Releases | GlobeNewswire"),
         EXPIRED, "redirect_to_home", title=CORBUS),
    Case("redirect_to_search_for_its_own_slug", ob("https://www.example-hospital.org/lenabasum-trial",
         redirects=[hop("https://www.example-hospital.org/lenabasum-trial", 302,
                        "https://www.example-hospital.org/search?q=lenabasum+trial")]),
         EXPIRED, "redirect_to_home"),
    Case("near_search_page_moved_is_not_gone", ob("https://example.org/search?q=dermatomyositis",
         redirects=[hop("https://example.org/search?q=dermatomyositis", 302,
                        "https://example.org/find?q=dermatomyositis")]), OK, "temporary_redirect"),
    Case("near_tool_to_empty_search_is_not_gone", ob("https://example.org/find-a-doctor",
         redirects=[hop("https://example.org/find-a-doctor", 302, "https://example.org/doctors?q=")]),
         OK, "temporary_redirect"),
    Case("redirect_to_pubmed_search", ob(PUBMED, redirects=[
        hop(PUBMED, 301, "https://pubmed.ncbi.nlm.nih.gov/?term=29713898")]),
         EXPIRED, "redirect_to_home"),
    Case("redirect_to_section_ancestor", ob(OUP, redirects=[
        hop(OUP, 301, "https://academic.oup.com/rheumatology")]),
         EXPIRED, "redirect_to_home", title=IL18),
    Case("expired_notice_headline_kept", ob(GNW, title=CORBUS + " | GlobeNewswire",
         text="This press release is no longer available."), EXPIRED, "expired_notice",
         title=CORBUS),
    Case("expired_notice_article_has_expired", ob(GNW, title="Corbus news",
         text="We're sorry, this article has expired and is no longer online."),
         EXPIRED, "expired_notice", title=CORBUS),
    Case("expired_notice_has_been_removed", ob(GNW, title="Press Release",
         text="The news release you requested has been removed by the issuer."),
         EXPIRED, "expired_notice"),
    Case("expired_notice_content_archived", ob("https://example.gc.ca/x/1", title="",
         text="Content has been archived and is no longer updated."), EXPIRED, "expired_notice"),
    Case("expired_notice_bare_phrase_generic_title", ob(GNW, title="GlobeNewswire",
         text="No longer available."), EXPIRED, "expired_notice"),
    Case("parked_for_sale", ob("https://corbuspharma.example/news/1", title="corbuspharma.example",
         text="This domain is for sale! Make an offer."), EXPIRED, "parked_domain", title=CORBUS),
    Case("parked_buy_this_domain", ob("https://old.example/x", title="old.example",
         text="Buy this domain. The owner of old.example is offering it for sale."),
         EXPIRED, "parked_domain"),
    Case("parked_hugedomains", ob("https://old.example/x", title="Old.example is for sale | "
         "HugeDomains"), EXPIRED, "parked_domain"),
    Case("parked_godaddy", ob("https://old.example/x", title="old.example",
         text="This Web page is parked FREE, courtesy of GoDaddy.com."), EXPIRED, "parked_domain"),
    Case("parked_sedo_text", ob("https://old.example/x", title="old.example",
         text="Sedoparking: this domain may be for sale"), EXPIRED, "parked_domain"),
    Case("parked_related_searches", ob("https://old.example/x", title="old.example",
         text="Related Searches: Dermatomyositis Treatment, Lung Disease, Cheap Flights"),
         EXPIRED, "parked_domain"),
    Case("parked_redirect_to_parking_host", ob("https://old.example/x", redirects=[
        hop("https://old.example/x", 302, "https://sedoparking.com/search/registrar.php?d=old")]),
         EXPIRED, "parked_domain"),
    # -- error -----------------------------------------------------------------------------
    Case("error_500", ob(status=500), ERROR, "http_500"),
    Case("error_502", ob(status=502), ERROR, "http_502"),
    Case("error_503", ob(OUP, 503, title="Service Unavailable"), ERROR, "http_503"),
    Case("error_cloudflare_origin_down_522", ob(OUP, 522, server="cloudflare",
         text="Connection timed out. Cloudflare Ray ID: 7a1b"), ERROR, "http_522"),
    Case("error_akamai_503_origin_failed", ob(OUP, 503, server="AkamaiGHost",
         title="Service Unavailable - Zero size object", text="Service Unavailable - Zero size "
         "object The server is temporarily unable to service your request. Reference #18.2f1e"),
         ERROR, "http_503", title=IL18),
    Case("error_sucuri_502_origin_down", ob(GNW, 502, server="Sucuri/Cloudproxy",
         title="Sucuri WebSite Firewall - Bad Gateway",
         text="Sucuri WebSite Firewall - CloudProxy - Bad Gateway. The website is unreachable."),
         ERROR, "http_502", title=CORBUS),
    Case("error_400_is_not_gone", ob(OUP, 400, title="Bad Request"), ERROR, "http_400"),
    Case("error_405", ob(status=405), ERROR, "http_405"),
    Case("error_no_status_no_kind", ob(status=None), ERROR, "bad_response"),
    *[Case(f"error_kind_{kind.value}", ob(status=None, error_kind=kind), ERROR, kind.value)
      for kind in (ErrorKind.TIMEOUT, ErrorKind.DNS, ErrorKind.CONNECTION_REFUSED,
                   ErrorKind.CONNECTION_RESET, ErrorKind.TLS, ErrorKind.REDIRECT_LOOP,
                   ErrorKind.TOO_MANY_REDIRECTS, ErrorKind.BAD_RESPONSE, ErrorKind.INVALID_URL)],
    # -- blocked ---------------------------------------------------------------------------
    Case("blocked_401", ob(status=401), BLOCKED, "http_401"),
    Case("blocked_403_plain", ob(OUP, 403, title="403 Forbidden", server="nginx"), BLOCKED, "http_403"),
    Case("blocked_406_firewall", ob(status=406), BLOCKED, "http_406"),
    Case("blocked_999_linkedin", ob("https://www.linkedin.com/in/someone", 999), BLOCKED, "http_999"),
    Case("blocked_429_rate_limited", ob(status=429, retry_after=120.0, attempts=3),
         BLOCKED, "rate_limited"),
    Case("blocked_private_address", ob("http://10.0.0.5/x", None,
         error_kind=ErrorKind.PRIVATE_ADDRESS), BLOCKED, "private_address"),
    Case("blocked_robots", ob(status=None, error_kind=ErrorKind.ROBOTS_DISALLOWED),
         BLOCKED, "robots_disallowed"),
    Case("blocked_redirect_to_ftp", ob("https://example.org/file", None,
         error_kind=ErrorKind.UNSUPPORTED_SCHEME, redirects=[
             hop("https://example.org/file", 301, "ftp://ftp.example.org/pub/file.pdf")]),
         BLOCKED, "unsupported_scheme"),
    Case("bot_cloudflare_just_a_moment", ob(OUP, 503, server="cloudflare", title="Just a moment...",
         text="Enable JavaScript and cookies to continue"), BLOCKED, "bot_challenge", title=IL18),
    Case("bot_cloudflare_attention_required", ob(OUP, 403, server="cloudflare",
         title="Attention Required! | Cloudflare", text="Sorry, you have been blocked"),
         BLOCKED, "bot_challenge"),
    Case("bot_cloudflare_403_ray_id", ob(OUP, 403, server="cloudflare", title="academic.oup.com",
         text="Error 1020 Access denied. Cloudflare Ray ID: 8a9b7c"), BLOCKED, "bot_challenge"),
    Case("bot_cloudflare_visible_text_only", ob(WILEY, 403, server="cloudflare", title="Just a moment…",
         text="onlinelibrary.wiley.com needs to review the security of your connection before "
              "proceeding. Ray ID: 8f1e. Performance & security by Cloudflare"),
         BLOCKED, "bot_challenge", title=SCT),
    Case("blocked_403_origin_behind_cloudflare", ob(WILEY, 403, server="cloudflare",
         title="403 Forbidden", text="Forbidden. You don't have access."), BLOCKED, "http_403"),
    Case("bot_cf_chl_in_200", ob(OUP, title="", text="window._cf_chl_opt={cvId: '3'}"),
         BLOCKED, "bot_challenge"),
    Case("bot_checking_browser", ob(OUP, 403, title="Please Wait",
         text="Checking your browser before accessing academic.oup.com."), BLOCKED, "bot_challenge"),
    Case("bot_datadome", ob(WILEY, 403, title="onlinelibrary.wiley.com",
         text="Please enable JS and disable any ad blocker"), BLOCKED, "bot_challenge"),
    Case("bot_akamai", ob(WILEY, 403, title="Access Denied", server="AkamaiGHost",
         text="You don't have permission to access this resource. Reference #18.6b7e1402.1700000000.5f"),
         BLOCKED, "bot_challenge"),
    Case("bot_perimeterx", ob(WILEY, 403, title="Access to this page has been denied",
         text="Press & Hold to confirm you are a human (and not a bot)."), BLOCKED, "bot_challenge"),
    Case("bot_captcha_generic_200", ob(GNW, title="Security", text="Please solve the CAPTCHA below."),
         BLOCKED, "bot_challenge"),
    Case("blocked_youtube_empty_shell", ob("https://www.youtube.com/watch?v=x1Y2z3A4b5C",
         title=" - YouTube", text="About Press Copyright Contact us Creators Advertise Developers "
         "Terms Privacy Policy & Safety How YouTube works Test new features"),
         BLOCKED, "video_unavailable", title="Living with scleroderma: three patients tell their stories"),
    Case("blocked_youtu_be_to_empty_shell", ob("https://youtu.be/x1Y2z3A4b5C", redirects=[
        hop("https://youtu.be/x1Y2z3A4b5C", 301, "https://www.youtube.com/watch?v=x1Y2z3A4b5C&feature=youtu.be")],
         title="YouTube"), BLOCKED, "video_unavailable"),
    Case("expired_youtube_shell_saying_why", ob("https://www.youtube.com/watch?v=x1Y2z3A4b5C",
         title=" - YouTube", text="This video is no longer available because the YouTube account "
         "associated with this video has been terminated."), EXPIRED, "expired_notice"),
    Case("near_youtube_video_with_title", ob("https://www.youtube.com/watch?v=x1Y2z3A4b5C",
         title="Living with scleroderma - YouTube", meta_title="Living with scleroderma"), OK, "ok"),
    Case("near_youtube_home_is_no_video", ob("https://www.youtube.com/", title="YouTube"), OK, "ok"),
    Case("login_redirect", ob(WILEY, redirects=[hop(WILEY, 302,
         "https://onlinelibrary.wiley.com/action/showLogin?uri=%2Fdoi%2Ffull%2F10.1002%2Fmus.26182")],
         title="Log in | Wiley Online Library"), BLOCKED, "login_required", title=SCT),
    Case("login_redirect_then_401", ob("https://example.org/members/paper/1", 401, redirects=[
        hop("https://example.org/members/paper/1", 302, "https://example.org/account/login?next=/x")]),
         BLOCKED, "login_required"),
    Case("login_redirect_to_sso_host", ob("https://intranet.example.org/doc/1", redirects=[
        hop("https://intranet.example.org/doc/1", 302, "https://login.example.org/?sp=intranet")]),
         BLOCKED, "login_required"),
    Case("login_title_sign_in", ob(OUP, title="Sign in"), BLOCKED, "login_required", title=IL18),
    # -- drifted ---------------------------------------------------------------------------
    Case("drift_meta_title_other_article", ob(OUP, title="Oxford Academic",
         meta_title="Interleukin-6 in systemic sclerosis: a review"), DRIFTED, "title_mismatch",
         title=IL18),
    Case("drift_title_other_article", ob("https://link.springer.com/article/10.1007/s10067-019-04567-x",
         title="Exercise training in systemic sclerosis: a systematic review | Clinical Rheumatology"),
         DRIFTED, "title_mismatch", title=PHYSIO),
    Case("drift_press_release_reused", ob(GNW, title="Corbus Pharmaceuticals Announces Topline "
         "Results from Phase 3 RESOLVE-1 Study of Lenabasum in Systemic Sclerosis"),
         DRIFTED, "title_mismatch", title=CORBUS),
    Case("drift_beats_permanent_redirect", ob(OUP, redirects=[hop(OUP, 301,
         "https://academic.oup.com/rheumatology/article/58/1/1/5000001")],
         meta_title="Tocilizumab in systemic sclerosis-associated interstitial lung disease"),
         DRIFTED, "title_mismatch", title=IL18),
    Case("drift_navigation_content_changed", ob("https://www.sclero.org/scleroderma/treatments.html",
         title="Gift Shop | Scleroderma Merchandise and Apparel"), DRIFTED, "content_changed",
         title="Biologic Agents", previous=UrlState(
             url="https://www.sclero.org/scleroderma/treatments.html", status=LinkStatus.OK,
             last_ok_title="Biologic Agents for Scleroderma | ISN")),
    # -- near misses: must not fire ------------------------------------------------------------
    Case("near_404_article_own_title", ob("https://example.org/blog/404-pages",
         title="404 Errors in Web Design: How to Build a Helpful Error Page",
         text="A 404 error tells the visitor: page not found. We can't find the page you want "
              "is the worst message."), OK, "ok"),
    Case("near_404_article_cited", ob("https://example.org/blog/404-pages",
         title="404 Errors in Web Design: How to Build a Helpful Error Page",
         text="Page not found pages and the 404 error."), OK, "ok",
         title="404 Errors in Web Design: How to Build a Helpful Error Page"),
    Case("near_for_sale_in_article", ob(GNW, title=CORBUS + " | GlobeNewswire",
         text="Corbus said rights to lenabasum in Japan were for sale to partners; the domain of "
              "autoimmune disease is large. Related searches are shown below."), OK, "ok",
         title=CORBUS),
    Case("near_drug_no_longer_available", ob(OUP, meta_title=IL18,
         text="The drug has been removed from the market and is no longer available."),
         OK, "ok", title=IL18),
    Case("near_captcha_article", ob("https://example.org/security/captcha-study",
         title="Usability of CAPTCHA challenges for older adults with disabilities",
         text="We studied captcha tasks and access denied screens."), OK, "ok"),
    Case("near_pubmed_suffix", ob(meta_title="", title="The use of rituximab in the management of "
         "refractory dermatomyositis - PubMed"), OK, "ok", title=RTX_DM),
    Case("near_en_dash_vs_hyphen", ob(OUP, title="Case Report: Intravenous Immune Globulin in "
         "Amyopathic Dermatomyositis (ADM) - Report of Two Cases and Review of the Literature"),
         OK, "ok", title=ADM),
    Case("near_truncated_title", ob(title="Successful Treatment With Intravenous High-Dose "
         "Immunoglobulin For Cardiomyopathy In Dermatomyo..."), OK, "ok", title=ATS),
    Case("near_entities_and_case", ob(title="INFLAMMATORY MYOPATHIES (IM) AFTER ALLOGENEIC STEM "
         "CELL TRANSPLANTATION (SCT) - Muscle &amp; Nerve - Wiley Online Library"), OK, "ok",
         title=SCT),
    Case("near_expired_mark_in_cited", ob(title="Dermatomyositis and polymyositis associated with "
         "malignancy: a 21-year retrospective study | The Journal of Rheumatology"),
         OK, "ok", title=MALIGNANCY),
    Case("near_home_page_same_as_probe", ob("https://www.sclero.org/", content_hash="h"), OK, "ok",
         probe=ob("https://www.sclero.org/zq81kx", content_hash="h")),
    Case("near_probe_404", ob(GNW, content_hash="h", title=CORBUS), OK, "ok", title=CORBUS,
         probe=ob("https://www.globenewswire.com/zq81kx", 404, content_hash="h")),
    Case("near_probe_different_content", ob(OUP, content_hash="h1", title="Oxford Academic",
         text="Interleukin-18 and muscle tissue " * 20), OK, "ok",
         probe=ob("https://academic.oup.com/zq81kx", content_hash="h2", title="Oxford Academic",
                  text="We could not locate the requested resource. " * 20)),
    Case("near_slug_with_errors", ob("https://example.org/n/1", redirects=[
        hop("https://example.org/n/1", 302, "https://example.org/news/medication-errors-2018")]),
         OK, "temporary_redirect"),
    Case("near_same_depth_redirect_not_home", ob("https://example.org/a/b", redirects=[
        hop("https://example.org/a/b", 302, "https://example.org/c/d")]), OK, "temporary_redirect"),
    Case("near_short_seen_title_not_drift", ob(title="Dermatomyositis"), OK, "ok", title=RTX_ILD),
    Case("near_login_query_is_not_login_page", ob(OUP, redirects=[hop(OUP, 302,
         OUP + "?login=false")], meta_title=IL18), OK, "temporary_redirect", title=IL18),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_classify(case: Case) -> None:
    verdict = case.run()
    assert (verdict.status, verdict.reason) == (case.status, case.reason), verdict.detail
    assert verdict.url == case.obs.url
    assert verdict.detail and len(verdict.detail) < 400
    if case.suggested is not None:
        assert verdict.suggested_url == case.suggested
    if case.status is not LinkStatus.MOVED:
        assert verdict.suggested_url is None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_classify_unprobed_is_classify_or_asks_for_the_probe(case: Case) -> None:
    # A verdict given without the probe is the one any probe gives; None
    # only where the probe's rule would be reached.
    unprobed = classify_unprobed(case.obs, title=case.title, previous=case.previous)
    if unprobed is None:
        assert case.obs.http_status is not None and 200 <= case.obs.http_status < 300
    else:
        assert unprobed == case.run()
        assert unprobed == classify(case.obs, title=case.title, previous=case.previous)
    if case.reason == "soft_404" and case.probe is not None:
        assert unprobed is None, "a soft 404 found by its probe is asked for it"


def test_a_page_showing_its_cited_item_needs_no_probe() -> None:
    present = ob(OUP, title="Oxford Academic", meta_title=IL18)
    assert classify_unprobed(present, title=IL18) == classify(present, title=IL18)
    assert classify_unprobed(ob(OUP, title="Oxford Academic"), title=IL18) is None
    assert classify_unprobed(ob("https://www.sclero.org/"), title=IL18) is not None  # a home page
    assert classify_unprobed(ob(OUP, 404), title=IL18) is not None


def test_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_status_is_covered() -> None:
    covered = {c.status for c in CASES}
    assert covered == set(LinkStatus) - {LinkStatus.SKIPPED}


@pytest.mark.parametrize("reason", [
    "ok", "temporary_redirect", "permanent_redirect", "known_move", "http_404", "http_410",
    "soft_404", "redirect_to_home", "expired_notice", "parked_domain", "http_500", "http_503",
    "timeout", "dns", "connection_refused", "connection_reset", "tls", "redirect_loop",
    "too_many_redirects", "bad_response", "unsupported_scheme", "invalid_url", "http_401",
    "http_403", "bot_challenge", "login_required", "rate_limited", "http_999",
    "private_address", "robots_disallowed", "title_mismatch", "content_changed",
])
def test_every_reason_of_the_brief_has_a_case(reason: str) -> None:
    assert any(c.reason == reason for c in CASES)


# -- details ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("error_detail", "said"), [
    ("[Errno 111] Connect call failed ('192.0.2.7', 443)",
     "The server refused the connection (at 192.0.2.7, port 443)."),
    ("[Errno 111] Connect call failed ('2001:db8::1', 443, 0, 0)",
     "The server refused the connection (at 2001:db8::1, port 443)."),
    ("Connection refused by a firewall", "The server refused the connection (Connection refused by a firewall)."),
])
def test_detail_of_a_refused_connection_in_plain_words(error_detail: str, said: str) -> None:
    v = classify(ob(status=None, error_kind=ErrorKind.CONNECTION_REFUSED, error_detail=error_detail))
    assert v.detail == said


@pytest.mark.parametrize(("error_detail", "said"), [
    # aiohttp names the host with its port, then the resolver names it again:
    # clipped at 100 characters, the reason was cut after "(RFC 6761),"
    ("www.raynauds-association.invalid:80: www.raynauds-association.invalid: special-use name (RFC 6761), "
     "not looked up",
     "The host name does not resolve (DNS failure) (www.raynauds-association.invalid: special-use name "
     "(RFC 6761), not looked up)."),
    ("a.example.org:443: [Errno -2] Name or service not known",
     "The host name does not resolve (DNS failure) (a.example.org:443: [Errno -2] Name or service not known)."),
])
def test_detail_of_a_dns_failure_names_its_host_once(error_detail: str, said: str) -> None:
    v = classify(ob(status=None, error_kind=ErrorKind.DNS, error_detail=error_detail))
    assert v.detail == said


@pytest.mark.parametrize(("retry_after", "said"), [
    (30.0, "(it asked to wait 30 s)"), (120.0, "(it asked to wait 2 minutes)"),
    (5400.0, "(it asked to wait 90 minutes)"), (36_000.0, "(it asked to wait 10 hours)"),
    (float("inf"), "(it asked to wait more than a day)"), (1e23, "(it asked to wait more than a day)"),
    (251_607_000_000.0, "(it asked to wait more than a day)"),
])
def test_a_retry_after_is_said_in_words(retry_after: float, said: str) -> None:
    v = classify(ob(status=429, retry_after=retry_after, attempts=3))
    assert said in v.detail, v.detail


@pytest.mark.parametrize(("attempts", "said"), [(1, "after 1 attempt."), (3, "after 3 attempts.")])
def test_detail_of_a_rate_limit_counts_its_attempts_in_words(attempts: int, said: str) -> None:
    v = classify(ob(status=429, attempts=attempts))
    assert v.detail.endswith(said), v.detail


def test_detail_names_the_home_page() -> None:
    v = classify(ob(GNW, redirects=[hop(GNW, 301, "https://www.globenewswire.com/")]))
    assert v.detail == "Redirects to https://www.globenewswire.com/, the site's home page."


def test_detail_of_a_move_never_shows_a_user_part() -> None:
    """The detail says where the link moved: the real host, not the disguise."""
    v = classify(ob("http://example.org/x/1", redirects=[
        hop("http://example.org/x/1", 301, "http://pubmed.ncbi.nlm.nih.gov@evil.example.net/1")]))
    assert "@" not in v.detail and "evil.example.net/1" in v.detail, v.detail


def test_a_redirect_that_only_adds_a_user_part_is_no_move() -> None:
    v = classify(ob("http://example.org/x/1", redirects=[
        hop("http://example.org/x/1", 301, "http://www.example.org@example.org/x/1")]))
    assert v.status is LinkStatus.OK and v.suggested_url is None, v


def test_detail_of_drift_quotes_both_titles() -> None:
    v = classify(ob(OUP, meta_title="Interleukin-6 in systemic sclerosis: a review"), title=IL18)
    assert "'Interleukin-6 in systemic sclerosis: a review'" in v.detail
    assert "not the cited 'Expression of interleukin-18" in v.detail


def test_detail_never_echoes_long_web_text() -> None:
    junk = "Sorry, the page you are looking for could not be found " + "x" * 5000
    v = classify(ob(GNW, title="Corbus news " + "y" * 5000, text=junk), title=CORBUS)
    assert v.status is LinkStatus.EXPIRED
    assert len(v.detail) < 200


def test_detail_names_the_bot_wall_vendor() -> None:
    v = classify(ob(OUP, 503, server="cloudflare", title="Just a moment..."))
    assert v.detail.startswith("A bot check (Cloudflare) answered 503 instead of the page")


def test_detail_of_known_move_says_why() -> None:
    v = classify(ob(OLD_PUBMED, 503))
    assert "PubMed moved" in v.detail and PUBMED in v.detail


# -- titles ----------------------------------------------------------------------------------

MATCHES = [
    ("pubmed_suffix", RTX_DM, "The use of rituximab in the management of refractory dermatomyositis - PubMed"),
    ("oup_suffix", IL18, IL18 + " | Rheumatology | Oxford Academic"),
    ("sciencedirect_suffix", IVIG_SSC, IVIG_SSC + " - ScienceDirect"),
    ("wiley_suffix", SCT, "Inflammatory myopathies (IM) after allogeneic stem cell transplantation "
                          "(SCT) - Wiley Online Library"),
    ("site_prefix", ATS, "American Thoracic Society | " + ATS),
    ("en_dash_vs_hyphen", RTX_ILD, RTX_ILD.replace("–", "-")),
    ("em_dash_vs_hyphen", ADM, ADM.replace("–", "—")),
    ("case_and_punctuation", PHYSIO, "PHYSICAL THERAPY IN ADULT INFLAMMATORY MYOPATHY PATIENTS. A SYSTEMATIC REVIEW."),
    ("html_entities", SCT, "Inflammatory myopathies (IM) after allogeneic stem cell transplantation &#40;SCT&#41;"),
    ("double_escaped", "Muscle & nerve damage in polymyositis patients", "Muscle &amp;amp; nerve damage in polymyositis patients"),
    ("truncated_seen", RTX_ILD, "Rituximab for refractory rapidly progressive interstitial lung disease (RP-ILD) related to anti-MDA5 antibody-pos..."),
    ("truncated_seen_unicode_ellipsis_then_site", RTX_ILD, "Rituximab for refractory rapidly progressive interstitial lung disease (RP-ILD) related to anti-MDA5 antibody-pos… | Clinical Rheumatology"),
    ("truncated_cited", "Successful Treatment With Intravenous High-Dose Immunoglobulin For Cardiomyopathy...", ATS),
    ("case_report_prefix_dropped", ADM, "Intravenous Immune Globulin in Amyopathic Dermatomyositis – Report of Two Cases and Review of the Literature"),
    ("expired_mark", MALIGNANCY, "Dermatomyositis and polymyositis associated with malignancy: a 21-year retrospective study"),
    ("accents", "Sjögren's syndrome and dermatomyositis overlap", "Sjogrens Syndrome and Dermatomyositis Overlap"),
    ("spelling_variant", "Tumour-associated myositis in older adults", "Tumor-associated myositis in older adults"),
    ("plural", "Treatments for dermatomyositis in children", "Treatment for dermatomyositis in children"),
]

MISMATCHES = [
    ("other_rituximab_paper", RTX_DM, "Rituximab in the treatment of refractory myasthenia gravis"),
    ("other_oup_paper", IL18, "Interleukin-6 in systemic sclerosis: a review | Rheumatology | Oxford Academic"),
    ("other_review", PHYSIO, "Exercise training in systemic sclerosis: a systematic review - Clinical Rheumatology"),
    ("other_sciencedirect_paper", IVIG_SSC, "Efficacy of tocilizumab in systemic sclerosis-associated interstitial lung disease - ScienceDirect"),
    ("other_press_release", CORBUS, "Corbus Pharmaceuticals Announces Topline Results from Phase 3 RESOLVE-1 Study of Lenabasum in Systemic Sclerosis"),
    ("disease_overview", RTX_ILD, "Dermatomyositis | The Myositis Association"),
    ("systemic_is_not_systematic", "Systemic treatment of myositis in adults", "Systematic reviews of physiotherapy for adults"),
]


@pytest.mark.parametrize("cited,seen", [m[1:] for m in MATCHES], ids=[m[0] for m in MATCHES])
def test_titles_that_match(cited: str, seen: str) -> None:
    assert titles_match(cited, seen) >= PRESENT_THRESHOLD


@pytest.mark.parametrize("cited,seen", [m[1:] for m in MISMATCHES], ids=[m[0] for m in MISMATCHES])
def test_titles_that_name_another_item(cited: str, seen: str) -> None:
    assert titles_match(cited, seen) < DRIFT_THRESHOLD


@pytest.mark.parametrize("cited,seen", [("", "Anything"), (RTX_DM, ""), ("the of and", "the of and")])
def test_titles_match_empty_is_zero(cited: str, seen: str) -> None:
    assert titles_match(cited, seen) == 0.0


@pytest.mark.parametrize("title,specific", [
    ("Home", False), ("ScienceDirect", False), ("Rheumatology | Oxford Academic", False),
    ("Article", False), ("Page Not Found | Oxford Academic", False), ("Sign in", False),
    ("Dermatomyositis", False), ("Wiley Online Library", False),
    (RTX_DM, True), ("Dermatomyositis | The Myositis Association", True),
    (IL18 + " | Rheumatology | Oxford Academic", True),
])
def test_specific_titles(title: str, specific: bool) -> None:
    assert is_specific_title(title) is specific


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=120), st.text(max_size=120))
def test_titles_match_is_a_bounded_score(cited: str, seen: str) -> None:
    assert 0.0 <= titles_match(cited, seen) <= 1.0


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([RTX_ILD, RTX_DM, CORBUS, IL18, IVIG_SSC, ADM, ATS, SCT, PHYSIO]))
def test_a_title_matches_itself_with_any_site_suffix(title: str) -> None:
    for suffix in (" - PubMed", " | Oxford Academic", " - ScienceDirect", ""):
        assert titles_match(title, title + suffix) == 1.0


_TITLE_PIECES = st.sampled_from([
    "Rituximab", "rituximab", "in", "the", "systemic", "sclerosis", "tumour", "tumor", "trials",
    "Sjögren's", "a", "b", "3", "|", "-", " - ", " | ", ":", "...", "\u2026", " · ", "PubMed",
    "Oxford Academic", "(Expired Article)", "&amp;", "Home", "x",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_TITLE_PIECES, max_size=14).map(" ".join))
def test_a_title_seen_as_cited_scores_as_the_general_case(title: str) -> None:
    """The shortcut for a page showing the cited title is exact."""
    text = classify_module._clean(title)
    assert classify_module._self_score(text) == classify_module._best_score(text, text)


_TEXT = st.text(st.sampled_from(" \t\n\x0b\x1cab-`'"), max_size=30) | st.text(
    st.characters(codec="utf-8") | st.sampled_from(
        " \t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000`\u2019\u2014\ufb01\u00bd"), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_text_normalisation_is_the_regex_and_nfkc_it_replaces(text: str) -> None:
    import re
    import unicodedata
    assert classify_module._one_space(text) == re.sub(r"\s+", " ", text)
    assert classify_module._unified(text) == unicodedata.normalize("NFKC", text).translate(
        classify_module._DASHES).translate(classify_module._QUOTES)


@settings(max_examples=200, deadline=None)
@given(
    status=st.one_of(st.none(), st.integers(100, 999)),
    title=st.text(max_size=80), text=st.text(max_size=300), cited=st.text(max_size=80),
    location=st.sampled_from(["/", "/x", "https://other.example/", "ftp://x", "::bad", "",
                              "http://[::1", "/login", "https://www.sedo.com/"]),
    redirect=st.sampled_from([None, 301, 302, 307, 308]),
)
def test_classify_never_raises(status: int | None, title: str, text: str, cited: str,
                               location: str, redirect: int | None) -> None:
    redirects = [hop("https://example.org/a/b", redirect, location)] if redirect else []
    v = classify(ob("https://example.org/a/b", status, title=title, text=text,
                    redirects=redirects), title=cited)
    assert v.status in set(LinkStatus) and v.reason and v.detail


# -- quirks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("url,expected", [
    (OLD_PUBMED, PUBMED),
    ("http://www.ncbi.nlm.nih.gov/pubmed/29713898/?otool=x", PUBMED),
    ("https://ncbi.nlm.nih.gov/pubmed/?term=rituximab+dermatomyositis",
     "https://pubmed.ncbi.nlm.nih.gov/?term=rituximab+dermatomyositis"),
    ("http://www.ncbi.nlm.nih.gov/entrez/query.fcgi?cmd=Retrieve&db=PubMed&list_uids=12345&dopt=Abstract",
     "https://pubmed.ncbi.nlm.nih.gov/12345/"),
    ("https://www.ncbi.nlm.nih.gov/pmc/articles/PMC6123456/",
     "https://pmc.ncbi.nlm.nih.gov/articles/PMC6123456/"),
    ("http://dx.doi.org/10.1002/mus.26182", "https://doi.org/10.1002/mus.26182"),
    ("http://doi.org/10.1002/mus.26182", "https://doi.org/10.1002/mus.26182"),
    ("https://clinicaltrials.gov/ct2/show/NCT01234567", "https://clinicaltrials.gov/study/NCT01234567"),
    ("http://academic.oup.com/rheumatology/article/57/12/2114/5068311", OUP),
    ("http://www.ncbi.nlm.nih.gov/entrez/query.fcgi?db=nuccore&list_uids=1",
     "https://www.ncbi.nlm.nih.gov/entrez/query.fcgi?db=nuccore&list_uids=1"),
    # "\u00b9\u00b2" is a digit string to str.isdigit: "pubmed.ncbi.nlm.nih.gov/\u00b9\u00b2/" was suggested
    ("http://www.ncbi.nlm.nih.gov/entrez/query.fcgi?cmd=Retrieve&db=PubMed&list_uids=\u00b9\u00b2",
     "https://www.ncbi.nlm.nih.gov/entrez/query.fcgi?cmd=Retrieve&db=PubMed&list_uids=\u00b9\u00b2"),
    ("http://www.ncbi.nlm.nih.gov/entrez/query.fcgi?cmd=Retrieve&db=PubMed&list_uids=\u0661\u0662",
     "https://www.ncbi.nlm.nih.gov/entrez/query.fcgi?cmd=Retrieve&db=PubMed&list_uids=\u0661\u0662"),
    # "Related articles" of a record (Entrez link names are db_db...) is a list of
    # other papers, not the record: no rewrite.
    ("https://www.ncbi.nlm.nih.gov/entrez/query.fcgi?db=pubmed&cmd=Link&dopt=pubmed_pubmed&list_uids=123",
     None),
    ("https://www.ncbi.nlm.nih.gov/entrez/query.fcgi?cmd=Retrieve&db=PubMed&list_uids=123&dopt=pubmed_pmc_refs",
     None),
    ("https://www.ncbi.nlm.nih.gov/sites/entrez?db=pubmed&cmd=Link&LinkName=pubmed_pubmed&uid=123", None),
    ("http://www.ncbi.nlm.nih.gov/entrez/query.fcgi?db=pubmed&cmd=Retrieve&dopt=AbstractPlus&list_uids=17890345",
     "https://pubmed.ncbi.nlm.nih.gov/17890345/"),
    (PUBMED, None), ("https://doi.org/10.1002/mus.26182", None), ("http://unknown.example/x", None),
])
def test_quirk_rewrites(url: str, expected: str | None) -> None:
    found = quirks.rewrite(url)
    assert (found.url if found else None) == expected


def test_persistent_resolvers() -> None:
    assert quirks.is_persistent_resolver("https://doi.org/10.1/x")
    assert quirks.is_persistent_resolver("https://hdl.handle.net/1/2")
    assert not quirks.is_persistent_resolver(PUBMED)
    assert not quirks.is_persistent_resolver("http://[::1")


# -- state between runs --------------------------------------------------------------------------

URL = GNW


def verdict(status: LinkStatus, reason: str = "") -> Verdict:
    return Verdict(url=URL, status=status, reason=reason or str(status))


def observe(states: list[tuple[LinkStatus, dt.datetime]], **kw: Any) -> UrlState:
    state: UrlState | None = None
    for status, when in states:
        state = next_state(state, verdict(status), ob(URL, checked_at=when, **kw))
    assert state is not None
    return state


def hours(n: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


@pytest.mark.parametrize(
    ("statuses", "since"),
    [
        ([LinkStatus.MOVED], 0),
        ([LinkStatus.MOVED, LinkStatus.MOVED, LinkStatus.MOVED], 0),
        ([LinkStatus.OK, LinkStatus.MOVED, LinkStatus.MOVED], 1),
        ([LinkStatus.MOVED, LinkStatus.OK, LinkStatus.MOVED], 2),  # worked between: a new wait
        ([LinkStatus.MOVED, LinkStatus.DRIFTED], 1),
        ([LinkStatus.DRIFTED, LinkStatus.SKIPPED], 0),  # a skip is no observation
        ([LinkStatus.DRIFTED, LinkStatus.SKIPPED, LinkStatus.DRIFTED], 2),  # excluded a while: from its return
        ([LinkStatus.ERROR, LinkStatus.EXPIRED], 1),
    ],
)
def test_status_since_is_the_first_check_of_the_current_status(
        statuses: list[LinkStatus], since: int) -> None:
    state = observe([(status, hours(24 * 7 * n)) for n, status in enumerate(statuses)])
    assert state.status_since == hours(24 * 7 * since)


@pytest.mark.parametrize(
    ("statuses", "checks", "failures", "since"),
    [
        ([LinkStatus.OK], 1, 0, 0),
        ([LinkStatus.ERROR, LinkStatus.OK, LinkStatus.OK, LinkStatus.ERROR], 4, 2, 0),
        ([LinkStatus.SKIPPED, LinkStatus.OK, LinkStatus.BLOCKED], 2, 1, 1),  # a skip is no check
        ([LinkStatus.MOVED, LinkStatus.DRIFTED, LinkStatus.EXPIRED, LinkStatus.SKIPPED], 3, 1, 0),
    ],
)
def test_checks_and_failures_are_counted_with_the_state(
        statuses: list[LinkStatus], checks: int, failures: int, since: int) -> None:
    """What "failed 18 of the last 52 checks" is read from (walkthrough 11
    #1), without reading a year of observations."""
    state = observe([(status, hours(24 * 7 * n)) for n, status in enumerate(statuses)])
    assert (state.checks, state.failures, state.counted_since) == (checks, failures, hours(24 * 7 * since))


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # counters holding more than `recent`: they are the tally
        (UrlState(URL, ERROR, recent=("ok", "error", "ok", "ok", "error", "ok", "ok", "error"), checks=52,
                  failures=18, counted_since=T0), (52, 18, T0)),
        # a database made before the counters (none yet): the recent statuses
        (UrlState(URL, ERROR, recent=("ok", "error", "ok", "ok", "error", "skipped", "ok", "error")),
         (7, 3, None)),
        # counters begun since the upgrade, fewer than `recent` holds: still `recent`
        (UrlState(URL, ERROR, recent=("error", "ok", "ok", "error", "ok", "ok", "error"), checks=2, failures=1,
                  counted_since=T0), (7, 3, None)),
    ],
)
def test_a_fail_tally_comes_from_the_counters_once_they_hold_more_than_recent(
        state: UrlState, expected: tuple[int, int, dt.datetime | None]) -> None:
    tally = state.fail_tally()
    assert (tally.checks, tally.failed, tally.since) == expected


def test_first_failure_starts_a_streak() -> None:
    state = observe([(ERROR, hours(0))])
    assert (state.strikes, state.failing_since, state.first_seen_at) == (1, hours(0), hours(0))
    assert state.last_ok_at is None and state.status is ERROR


def test_streak_keeps_its_start_across_kinds_of_failure() -> None:
    state = observe([(OK, hours(0)), (ERROR, hours(1)), (BLOCKED, hours(25)), (EXPIRED, hours(49))])
    assert (state.strikes, state.failing_since, state.last_ok_at) == (3, hours(1), hours(0))
    assert state.first_seen_at == hours(0) and state.last_checked_at == hours(49)


@pytest.mark.parametrize("status", [OK, MOVED, DRIFTED])
def test_answering_resets_the_streak(status: LinkStatus) -> None:
    state = observe([(ERROR, hours(0)), (ERROR, hours(1)), (status, hours(2))])
    assert (state.strikes, state.failing_since, state.last_ok_at) == (0, None, hours(2))


def test_a_new_streak_starts_afresh() -> None:
    state = observe([(ERROR, hours(0)), (OK, hours(1)), (ERROR, hours(2))])
    assert (state.strikes, state.failing_since) == (1, hours(2))


def test_skipped_keeps_the_streak() -> None:
    state = observe([(ERROR, hours(0)), (LinkStatus.SKIPPED, hours(1)), (ERROR, hours(2))])
    assert (state.strikes, state.failing_since) == (2, hours(0))


def test_recent_keeps_the_last_window_newest_last() -> None:
    statuses = [OK] * RECENT_WINDOW + [ERROR]
    state = observe([(s, hours(i)) for i, s in enumerate(statuses)])
    assert len(state.recent) == RECENT_WINDOW and state.recent[-1] == "error"
    assert state.recent[0] == "ok"


@pytest.mark.parametrize("sequence,flapping", [
    ([OK, ERROR, OK, ERROR], True),
    ([ERROR, OK, BLOCKED, MOVED], True),
    ([OK, ERROR, OK], False),
    ([OK, OK, ERROR, ERROR, ERROR], False),
    ([ERROR, OK, ERROR, OK] + [OK] * (RECENT_WINDOW - 1), False),  # flaps scrolled out
    ([OK, ERROR, LinkStatus.SKIPPED, OK, ERROR], True),
])
def test_flapping(sequence: list[LinkStatus], flapping: bool) -> None:
    state = observe([(s, hours(i)) for i, s in enumerate(sequence)])
    assert state.flapping is flapping


def test_last_ok_title_prefers_the_scholarly_title() -> None:
    state = next_state(None, verdict(OK), ob(URL, title="Corbus | GNW", meta_title=CORBUS))
    assert state.last_ok_title == CORBUS


@pytest.mark.parametrize("status,reason,kept", [
    (OK, "ok", False), (MOVED, "permanent_redirect", False), (DRIFTED, "content_changed", False),
    (DRIFTED, "title_mismatch", True), (ERROR, "http_500", True), (EXPIRED, "soft_404", True),
])
def test_last_ok_title_baseline(status: LinkStatus, reason: str, kept: bool) -> None:
    before = UrlState(url=URL, status=OK, last_ok_title="Old title of the page")
    state = next_state(before, verdict(status, reason), ob(URL, title="New title of the page"))
    assert state.last_ok_title == ("Old title of the page" if kept else "New title of the page")


def test_an_empty_title_never_erases_the_baseline() -> None:
    before = UrlState(url=URL, status=OK, last_ok_title="Old title of the page")
    assert next_state(before, verdict(OK), ob(URL, title="")).last_ok_title == "Old title of the page"


def test_next_state_feeds_classify_drift_baseline() -> None:
    nav = "https://www.sclero.org/scleroderma/treatments.html"
    first = ob(nav, title="Scleroderma Treatments | International Scleroderma Network")
    state = next_state(None, classify(first, title="Treatments"), first)
    later = ob(nav, checked_at=hours(168), title="Gift Shop | International Scleroderma Network")
    v = classify(later, title="Treatments", previous=state)
    assert (v.status, v.reason) == (DRIFTED, "content_changed")
    again = next_state(state, v, later)
    assert classify(later, title="Treatments", previous=again).status is OK  # told once


@pytest.mark.parametrize("strikes,since,now,confirmed", [
    (2, hours(0), hours(24), True),
    (3, hours(0), hours(30), True),
    (1, hours(0), hours(72), False),     # one failure is only suspected
    (3, hours(0), hours(2), False),      # several quick failures: not yet a day
    (2, None, hours(48), False),
])
def test_is_confirmed(strikes: int, since: dt.datetime | None, now: dt.datetime, confirmed: bool) -> None:
    state = UrlState(url=URL, status=ERROR, strikes=strikes, failing_since=since)
    assert is_confirmed(state, now, CONFIRM_AFTER) is confirmed


def test_is_confirmed_needs_a_failing_status() -> None:
    state = UrlState(url=URL, status=OK, strikes=5, failing_since=hours(0))
    assert not is_confirmed(state, hours(100), CONFIRM_AFTER)


def test_is_confirmed_honours_the_configured_delay() -> None:
    state = observe([(EXPIRED, hours(0)), (EXPIRED, hours(3))])
    assert not is_confirmed(state, hours(3), dt.timedelta(hours=4))
    assert is_confirmed(state, hours(4), dt.timedelta(hours=4))


def test_is_confirmed_accepts_naive_now_as_utc() -> None:
    state = observe([(ERROR, hours(0)), (ERROR, hours(30))])
    assert is_confirmed(state, hours(30).replace(tzinfo=None), CONFIRM_AFTER)


# -- stand_in: what answered 200 in a watched page's place -------------------------------

from monitor.classify import stand_in  # noqa: E402

PAGE = "https://www.sclero.org/scleroderma/autoimmune/dermatomyositis/treatments.html"
PAGE_TITLE = "Treatments for Dermatomyositis (DM) and Polymyositis (PM)"


@pytest.mark.parametrize(("kw", "title", "expected"), [
    # Parking: by its words (even behind a title that is only the domain), by its host.
    (dict(title="sclero.org", text="This domain may be for sale! Related searches: lupus"),
     PAGE_TITLE, ("parked_domain", "it says 'this domain may be for sale'")),
    (dict(title="sclero.org is for sale", text="Buy it now"), PAGE_TITLE,
     ("parked_domain", "it says 'is for sale'")),
    (dict(final_url="https://sedoparking.com/sclero.org", title="sclero.org",
          redirects=(Hop(PAGE, 302, "https://sedoparking.com/sclero.org"),)),
     PAGE_TITLE, ("parked_domain", "it redirects to sedoparking.com, a domain-parking or domain-sale service")),
    # An error page served 200: its title, its words, an error address.
    (dict(title="Page Not Found | International Scleroderma Network"), PAGE_TITLE,
     ("soft_404", "its title is 'Page Not Found | International Scleroderma Network'")),
    (dict(title="International Scleroderma Network", text="Sorry, the page you requested could not be found."),
     PAGE_TITLE, ("soft_404", "it says 'the page you requested could not be found'")),
    (dict(final_url="https://www.sclero.org/404.html", title="International Scleroderma Network",
          redirects=(Hop(PAGE, 302, "/404.html"),)),
     PAGE_TITLE, ("soft_404", "it redirects to https://www.sclero.org/404.html")),
    # A sign-in page, a bot wall.
    (dict(title="Sign in"), PAGE_TITLE, ("login_required", "its title is 'Sign in'")),
    (dict(title="Just a moment...", text="Checking your browser before accessing sclero.org"), PAGE_TITLE,
     ("bot_challenge", "Cloudflare")),
    # The page itself: its title as last read, whatever its text quotes.
    (dict(title=PAGE_TITLE, text="An article on domain parking: 'this domain may be for sale'. "
          "Related searches. Page not found."), PAGE_TITLE, None),
    (dict(title=PAGE_TITLE + " | sclero.org", text="Sorry, the page you requested could not be found."),
     PAGE_TITLE, None),
    (dict(title="Dermatomyositis Treatments", text="Rituximab in refractory disease."), PAGE_TITLE, None),
    # Not a 2xx: said by its status, not here.
    (dict(http_status=404, title="Page Not Found"), PAGE_TITLE, None),
    (dict(http_status=503, title="Just a moment...", text="Checking your browser"), PAGE_TITLE, None),
])
def test_stand_in(kw: dict[str, Any], title: str, expected: tuple[str, str] | None) -> None:
    seen = stand_in(Observation(**{"url": PAGE, "checked_at": T0, "http_status": 200, **kw}), title=title)
    assert (None if seen is None else (seen.reason, seen.evidence)) == expected


RESTRUCTURED = "Home About the ISN The treatments are now listed on two pages: A to M and N to Z."


@pytest.mark.parametrize(("kw", "extra", "expected"), [
    # The site's own page, restructured and retitled, whose footer names an
    # error: the page (review 10 #2), whatever its title.
    *[(dict(title=title, text=f"{RESTRUCTURED} {footer}"), {}, None)
      for title in ("Raynaud's Treatments", "Index", "A to Z")
      for footer in ("Link not working? Report a page not found to the webmaster.",
                     "Found a link that is not found? Tell us.", "Page not found? Use the search box.",
                     "Error 404 on a link? Tell us.")],
    # A heading saying the page moved is an editor's note on the page.
    (dict(title="Treatments", text=RESTRUCTURED), dict(headings=("Sorry, this page has moved",)), None),
    # An error page says so in its title or a heading, whatever its length...
    (dict(title="International Scleroderma Network", text="Page not found. Home Types"),
     dict(headings=("Page not found",)), ("soft_404", "its heading is 'Page not found'")),
    (dict(title="International Scleroderma Network", text="x " * 500),
     dict(headings=("Sorry, we can't find that page",), own_words=500),
     ("soft_404", "its heading is 'Sorry, we can't find that page'")),
    # ... or in a sentence, when it has a few dozen words of its own (its menu aside).
    (dict(title="Index", text="Home Types " * 100 + "Sorry, the page you requested could not be found."),
     dict(own_words=8), ("soft_404", "it says 'the page you requested could not be found'")),
    (dict(title="Index", text="Entry " * 100 + "Sorry, the page you requested could not be found."),
     dict(own_words=108), None),
])
def test_stand_in_of_the_sites_own_page(kw: dict[str, Any], extra: dict[str, Any],
                                        expected: tuple[str, str] | None) -> None:
    """A cited article's bare "not found" is evidence; the site's own page,
    whose short title is normal, is an error page by its title, heading or
    a short page's sentence only."""
    obs = Observation(**{"url": PAGE, "checked_at": T0, "http_status": 200, **kw})
    seen = stand_in(obs, title="Raynaud's Treatments A to Z", **extra)
    assert (None if seen is None else (seen.reason, seen.evidence)) == expected


@pytest.mark.parametrize("kw", [
    dict(title="sclero.org", text="This domain may be for sale! Related searches"),
    dict(title="Page Not Found"),
    dict(title="Sign in"),
    dict(title="Just a moment...", text="Checking your browser before accessing sclero.org"),
    dict(final_url="https://sedoparking.com/x", redirects=(Hop(PAGE, 302, "https://sedoparking.com/x"),)),
])
def test_stand_in_is_what_a_cited_link_is_judged(kw: dict[str, Any]) -> None:
    """One piece: the reason a cited link gets for the same answer."""
    obs = Observation(**{"url": PAGE, "checked_at": T0, "http_status": 200, **kw})
    seen = stand_in(obs, title=PAGE_TITLE)
    assert seen is not None and seen.reason == classify(obs, title=PAGE_TITLE).reason


@pytest.mark.parametrize(("location", "suggested"), [
    ("https://e.org/new?" + "a" * 500_000, None),
    ("https://e.org/new?" + "a" * (2048 - 18), "https://e.org/new?" + "a" * (2048 - 18)),
])
def test_an_address_longer_than_any_link_is_not_suggested(location: str, suggested: str | None) -> None:
    """A 301 to a 30 KB Location was offered as "New address" and kept in
    every week's row; the link is still said moved, the detail shortened."""
    url = "https://e.org/old"
    verdict = classify(Observation(url=url, checked_at=T0, http_status=200, final_url=location,
                                   redirects=(Hop(url, 301, location),)))
    assert (verdict.status, verdict.reason, verdict.suggested_url) == (LinkStatus.MOVED, "permanent_redirect", suggested)
    assert len(verdict.detail) < 250
