"""Bytes of an HTML document -> str, the way browsers guess.

Old citation sites serve Windows-1252 pages with no charset anywhere;
aiohttp's `text()` assumes UTF-8 and raises on them. The order here is the
WHATWG one, simplified: BOM, HTTP charset, <meta> charset in the first
kilobytes, strict UTF-8, then Windows-1252 (which decodes any byte string).
"""

from __future__ import annotations

import codecs
import re

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.IGNORECASE
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9_:.\-]+)""", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Labels browsers map elsewhere: latin-1 pages really are windows-1252.
_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
            "us-ascii": "cp1252", "ascii": "cp1252", "iso8859-1": "cp1252"}


# Python text codecs no browser decodes a page with: transformations of
# Unicode rather than charsets (UTF-7 is also a classic XSS vector).
_NOT_PAGE_ENCODINGS = frozenset({
    "utf-7", "idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape",
})


def _codec(label: str | bytes | None) -> str | None:
    """The Python codec for a charset label, or None when browsers would not use it."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    label = label.strip().lower()
    label = _ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    # "base64", "rot13", "zlib" are codecs but not text encodings: bytes.decode
    # refuses them by this very flag.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return None if info.name in _NOT_PAGE_ENCODINGS else info.name


def _c1_controls(error: UnicodeError) -> tuple[str, int]:
    """Bytes cp1252 leaves undefined (0x81, 0x8D, ...) become U+0081... as in browsers."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error("monitor-c1-controls", _c1_controls)


def _decode(body: bytes, codec: str) -> str:
    errors = "monitor-c1-controls" if codec == "cp1252" else "replace"
    return body.decode(codec, errors=errors)


def _declared(body: bytes, codec: str) -> str | None:
    """`body` in its declared codec; None to fall through to the next guess."""
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        # A page that declares UTF-8 but is not is common; fall through.
        if codec == "utf-8":
            return None
        try:
            return _decode(body, codec)
        except (UnicodeError, LookupError, ValueError):
            return None
    except (UnicodeError, LookupError, ValueError):
        return None  # a codec that refuses these bytes outright


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return _codec(match.group(1)) if match else None


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Decode an HTML body; never raises, whatever the bytes."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(name, errors="replace")
    for codec in (charset_from_content_type(content_type), _meta_codec(body)):
        text = _declared(body, codec) if codec else None
        if text is not None:
            return text
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A bounded prefix may end inside a multi-byte character. When all
        # before it is ASCII the cut proves nothing: "...caf\xe9" is cp1252.
        if (
            exc.start >= len(body) - 3
            and exc.reason == "unexpected end of data"
            and not body[: exc.start].isascii()
        ):
            return body[: exc.start].decode("utf-8")
    return _decode(body, "cp1252")


def _meta_codec(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    codec = _codec(match.group(1)) if match else None
    # A page in UTF-16 cannot declare itself in ASCII bytes; ignore such claims.
    return None if codec and codec.startswith("utf-16") else codec
