"""target.py: what a bounded HTML prefix says, table-driven."""

from __future__ import annotations

import hashlib

import pytest

from monitor.target import MAX_TEXT_CHARS, TargetInfo, is_html, read_target


def html(head: str = "", body: str = "") -> bytes:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>".encode()


@pytest.mark.parametrize(
    ("body", "content_type", "title", "meta_title", "text"),
    [
        (html("<title> Rituximab\n in  DM </title>", "<p>Hello</p>"), "text/html", "Rituximab in DM", "", "Hello"),
        # meta title order: citation_title, then dc.title, then og:title
        (html("<meta property='og:title' content='OG'><meta name='DC.Title' content='DC'>"
              "<meta name='citation_title' content='Cited'>"), "text/html", "", "Cited", ""),
        (html("<meta property='og:title' content='OG'><meta name='dc.title' content='DC'>"),
         "text/html", "", "DC", ""),
        (html("<meta property='og:title' content='OG'>"), "text/html", "", "OG", ""),
        (html("<meta name='citation_title' content=''><meta property='og:title' content='OG'>"),
         "text/html", "", "OG", ""),
        # invisible content is not text
        (html("<style>p{}</style>", "<script>var x='secret'</script><p>Shown</p><noscript>ns</noscript>"
              "<template>tpl</template>"), "text/html", "", "", "Shown"),
        (html("", "<p>a</p>\n\n<p>b&nbsp;&amp;\tc</p>"), "text/html", "", "", "a b & c"),
        # an <svg><title> is a tooltip, not the page title
        (html("", "<svg><title>icon</title></svg><title>Real</title>"), "text/html", "Real", "", ""),
        # windows-1252 with no charset anywhere
        ("<title>Sjögren’s café</title>".encode("cp1252"), "text/html", "Sjögren’s café", "", ""),
        # charset from the header
        ("<title>Ärzte</title>".encode("iso-8859-15"), "text/html; charset=iso-8859-15", "Ärzte", "", ""),
        (html("<title>X</title>"), "application/xhtml+xml", "X", "", ""),
        # sniffed when the type says nothing
        (b"  <html><title>Sniffed</title>", "", "Sniffed", "", ""),
        (b"<!DOCTYPE html><title>Sniffed</title>", "application/octet-stream", "Sniffed", "", ""),
        # a prefix cut in the middle of a tag
        (b"<html><head><title>Cut</title></head><body><p>Some text <a hr", "text/html", "Cut", "", "Some text"),
        # not HTML: nothing read from it
        (b"%PDF-1.4 <title>no</title>", "application/pdf", "", "", ""),
        (b"<title>plain</title>", "text/plain", "", "", ""),
        (b'{"title": "json"}', "application/json", "", "", ""),
    ],
)
def test_read_target(body: bytes, content_type: str, title: str, meta_title: str, text: str) -> None:
    info = read_target(body, content_type)
    assert (info.title, info.meta_title, info.text) == (title, meta_title, text)


def test_text_is_bounded_at_a_word() -> None:
    words = " ".join(f"word{i}" for i in range(2000))
    info = read_target(html("", f"<p>{words}</p>"), "text/html")
    assert len(info.text) <= MAX_TEXT_CHARS
    assert len(info.text) > MAX_TEXT_CHARS - 20
    assert words.startswith(info.text + " ")


def test_hash_ignores_case_and_spacing_but_not_words() -> None:
    a = read_target(html("<title>A</title>", "<p>Page  not\nfound</p>"), "text/html")
    b = read_target(html("<title>B</title>", "<div>page NOT found</div>"), "text/html")
    c = read_target(html("", "<p>Page found</p>"), "text/html")
    assert a.content_hash == b.content_hash
    assert a.content_hash != c.content_hash
    assert len(a.content_hash) == 40


def test_hash_covers_text_beyond_the_excerpt() -> None:
    filler = "lorem " * 500
    a = read_target(html("", f"<p>{filler} ending one</p>"), "text/html")
    b = read_target(html("", f"<p>{filler} ending two</p>"), "text/html")
    assert a.text == b.text
    assert a.content_hash != b.content_hash


def test_empty_text_has_no_hash() -> None:
    # Two different JavaScript shells must not look like the same page.
    assert read_target(html("<title>App</title>", "<div id=root></div>"), "text/html").content_hash == ""
    assert read_target(b"", "text/html") == TargetInfo()


def test_other_types_hash_their_bytes() -> None:
    body = b"%PDF-1.4 something"
    assert read_target(body, "application/pdf").content_hash == hashlib.sha1(body).hexdigest()


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"", "text/html; charset=utf-8", True),
        (b"", "TEXT/HTML", True),
        (b"\xef\xbb\xbf<html>", "", True),
        (b"<!-- c --><html>", "", True),
        (b"%PDF", "", False),
        (b"<html>", "image/png", False),
        (b"hello <html>", "", False),
    ],
)
def test_is_html(body: bytes, content_type: str, expected: bool) -> None:
    assert is_html(body, content_type) is expected
