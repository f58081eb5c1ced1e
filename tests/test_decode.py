"""decode_html: bytes -> str the way browsers guess, and never an exception."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.decode import charset_from_content_type, decode_html

CP1252_TEXT = "Sjögren’s “naïve” café – €5 … Zürich"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        pytest.param(CP1252_TEXT.encode("cp1252"), None, CP1252_TEXT, id="cp1252-no-charset"),
        pytest.param(CP1252_TEXT.encode("utf-8"), None, CP1252_TEXT, id="utf8-no-charset"),
        pytest.param(
            codecs.BOM_UTF8 + "café".encode(), "text/html; charset=iso-8859-1", "café",
            id="bom-beats-header",
        ),
        pytest.param(codecs.BOM_UTF16_LE + "café".encode("utf-16-le"), None, "café",
                     id="bom-utf16le"),
        pytest.param(codecs.BOM_UTF16_BE + "café".encode("utf-16-be"), None, "café",
                     id="bom-utf16be"),
        pytest.param(
            b'<meta charset="utf-8">caf\xe9', "text/html; charset=ISO-8859-1",
            '<meta charset="utf-8">café', id="header-beats-meta",
        ),
        pytest.param(
            b'<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">\x96',
            None,
            '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">–',
            id="latin1-label-is-windows-1252",
        ),
        pytest.param(
            b"<meta charset='koi8-r'>\xf0\xd2\xc9\xd7\xc5\xd4", None,
            "<meta charset='koi8-r'>Привет", id="meta-koi8-r",
        ),
        pytest.param(
            b'<meta charset="utf-8"><p>steroid\x96sparing', None,
            '<meta charset="utf-8"><p>steroid–sparing', id="utf8-claim-on-cp1252-bytes",
        ),
        pytest.param(b"x", 'text/html; charset="UTF-8"', "x", id="quoted-header-charset"),
        pytest.param("Zürich café".encode()[:-1], None, "Zürich caf",
                     id="utf8-cut-inside-a-character"),
        pytest.param(b"caf\xc3", None, "caf\u00c3", id="ascii-then-lone-lead-byte-is-cp1252"),
        pytest.param(b"a\x81b\x8dc", None, "a\x81b\x8dc", id="cp1252-undefined-bytes-as-c1"),
        pytest.param(b"+ADw-script+AD4-", "text/html; charset=utf-7", "+ADw-script+AD4-",
                     id="utf7-ignored"),
        pytest.param(b"YWJj", "text/html; charset=base64", "YWJj", id="base64-not-a-charset"),
        pytest.param(b"a\xe9", "text/html; charset=idna", "aé", id="idna-not-a-charset"),
        pytest.param(b"\\x41\xe9", "text/html; charset=unicode_escape", "\\x41é",
                     id="unicode-escape-not-a-charset"),
        pytest.param(b"a\xe9", "text/html; charset=no-such-thing", "aé", id="unknown-label"),
        pytest.param(b'<meta charset="utf-16">\xe9', None, '<meta charset="utf-16">é',
                     id="ascii-page-claiming-utf16"),
    ],
)
def test_decode_html(body: bytes, content_type: str | None, expected: str) -> None:
    assert decode_html(body, content_type) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, None),
        ("", None),
        ("text/html", None),
        ("text/html; charset=UTF-8", "utf-8"),
        ("text/html;charset='windows-1252'", "cp1252"),
        ("text/html; charset=latin1", "cp1252"),
        ("text/html; charset=us-ascii", "cp1252"),
        ("text/html; charset=rot13", None),
        ("text/html; charset=utf-7", None),
        ("text/html; charset=bogus", None),
    ],
)
def test_charset_from_content_type(content_type: str | None, expected: str | None) -> None:
    assert charset_from_content_type(content_type) == expected


_LABELS = st.sampled_from([
    "utf-8", "utf-16", "utf-32", "iso-8859-1", "windows-1252", "koi8-r", "shift_jis",
    "gb2312", "big5", "euc-jp", "idna", "punycode", "undefined", "base64", "zlib",
    "utf-7", "unicode_escape", "raw_unicode_escape", "hex", "bogus", "",
])


@given(body=st.binary(max_size=300), label=_LABELS, in_meta=st.booleans())
def test_decode_never_raises(body: bytes, label: str, in_meta: bool) -> None:
    if in_meta:
        result = decode_html(b'<meta charset="' + label.encode() + b'">' + body)
    else:
        result = decode_html(body, f"text/html; charset={label}")
    assert isinstance(result, str)
