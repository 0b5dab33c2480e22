"""Text out of mail bytes whatever they claim: declared charsets (with the aliases mail
clients get wrong), undeclared 8-bit text (UTF-8, else Windows-1252 / Latin-1), and the
lone surrogates the stdlib parser leaves for 8-bit bytes in headers."""

from __future__ import annotations

import codecs
import re

_LATIN_1 = frozenset({"iso8859_1", "latin_1", "ascii"})
"""Labels decoded as Windows-1252, as browsers do: mail labelled ISO-8859-1 or US-ASCII
is mostly Windows-1252 (curly quotes, the euro sign in 0x80-0x9f)."""
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_bytes(payload: bytes, charset: str | None) -> str:
    """``payload`` as text: the declared ``charset`` when Python knows it, else UTF-8 when
    it is valid UTF-8, else Windows-1252 (Latin-1 for its five unassigned bytes)."""
    codec = _codec(charset)
    if codec is not None and codec not in _LATIN_1:
        return payload.decode(codec, errors="replace")
    if codec is None or not payload.isascii():
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return _windows_1252(payload)


def clean(value: str) -> str:
    """``value`` without lone surrogates (the stdlib's escapes for undecodable 8-bit
    header bytes, decoded here as UTF-8 or Windows-1252) and control characters."""
    if _SURROGATES.search(value):
        try:
            value = decode_bytes(value.encode("utf-8", "surrogateescape"), None)
        except UnicodeEncodeError:  # surrogates outside the escape range: not bytes
            value = _SURROGATES.sub("\ufffd", value)
    return _CONTROLS.sub("", value)


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset.strip().strip('"').lower()).name.replace("-", "_")
    except (LookupError, ValueError):
        return None


def _windows_1252(payload: bytes) -> str:
    try:
        return payload.decode("cp1252")
    except UnicodeDecodeError:
        return payload.decode("latin-1")
