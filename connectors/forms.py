"""HTML form bodies as providers post them: ``multipart/form-data`` (RFC 7578) and
``application/x-www-form-urlencoded``. Pure (no aiohttp), strict about structure.

Every value is kept as the bytes that were sent, so a connector decodes each field with
the charset the provider names for it (SendGrid's ``charsets``) and keeps file parts
byte for byte. A body that is not a well-formed form raises ``InputError``.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.utils import collapse_rfc2231_value
from urllib.parse import unquote_to_bytes

from router.errors import InputError

MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
MAX_PARTS = 1000
"""More parts than any provider sends: a body with more is refused as soon as the parser
reaches part ``MAX_PARTS + 1``, before building it."""

_CRLF = b"\r\n"


@dataclass(frozen=True)
class FormPart:
    """One field or file of a form."""

    name: str
    value: bytes
    filename: str | None = None
    """Set for a file part (``Content-Disposition: form-data; filename=...``)."""
    content_type: str | None = None
    """The part's media type without parameters (``image/png``), when it has one."""
    charset: str | None = None
    """The part's own ``charset`` parameter, when it declares one."""

    def text(self, charset: str | None = None) -> str:
        """The value as text: in ``charset`` (a provider's per-field charset), else the
        part's own, else UTF-8; undecodable bytes become U+FFFD, an unknown charset
        falls back to UTF-8 (and to Latin-1 for bytes that are not UTF-8)."""
        return decode(self.value, charset or self.charset)


@dataclass(frozen=True)
class Form:
    parts: tuple[FormPart, ...] = field(default=())

    def get(self, name: str) -> FormPart | None:
        """The first part named ``name``."""
        return next((p for p in self.parts if p.name == name), None)

    def text(self, name: str, charset: str | None = None) -> str | None:
        """The first value named ``name`` as text (see ``FormPart.text``), None if absent."""
        part = self.get(name)
        return None if part is None else part.text(charset)

    def all(self, name: str) -> Iterator[FormPart]:
        return (p for p in self.parts if p.name == name)

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self.parts)


def decode(value: bytes, charset: str | None) -> str:
    """``value`` in ``charset`` (errors replaced); unknown or no charset: UTF-8, and
    Latin-1 when the bytes are not UTF-8."""
    codec = _codec(charset)
    if codec is not None:
        return value.decode(codec, errors="replace")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset.strip().strip('"')).name
    except LookupError:
        return None


def media_type(content_type: str | None) -> str:
    """``multipart/form-data`` from ``multipart/form-data; boundary=x`` (lower case)."""
    return (content_type or "").partition(";")[0].strip().lower()


def parse_form(body: bytes, content_type: str | None) -> Form:
    """A form body by its ``Content-Type``: multipart or urlencoded; anything else is an
    ``InputError``."""
    kind = media_type(content_type)
    if kind == MULTIPART:
        return parse_multipart(body, _boundary(content_type or ""))
    if kind == URLENCODED:
        return parse_urlencoded(body)
    raise InputError(f"expected {MULTIPART} or {URLENCODED}, got {kind or 'no Content-Type'}")


def parse_urlencoded(body: bytes) -> Form:
    """``a=1&b=%C3%A9`` -> parts with percent-decoded bytes (``+`` is a space). A body of
    more than ``MAX_PARTS`` fields is refused at the first field over the limit, before it
    is decoded: this runs before any signature is checked."""
    if not body.isascii():
        raise InputError(f"{URLENCODED} body has bytes outside ASCII")
    parts: list[FormPart] = []
    for pair in _pairs(body):
        _room_for_one_more(parts)
        raw_name, _, raw_value = pair.partition(b"=")
        name = decode(_unquote(raw_name), "utf-8")
        parts.append(FormPart(name=name, value=_unquote(raw_value)))
    return Form(tuple(parts))


def _pairs(body: bytes) -> Iterator[bytes]:
    """The non-empty ``&``-separated pieces, one at a time (never all at once: a hostile
    body of millions of ``&`` must cost no more than the fields it is allowed)."""
    start = 0
    while start <= len(body):
        end = body.find(b"&", start)
        end = len(body) if end < 0 else end
        if end > start:
            yield body[start:end]
        start = end + 1


def _unquote(raw: bytes) -> bytes:
    return unquote_to_bytes(raw.replace(b"+", b" "))


def _boundary(content_type: str) -> str:
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise InputError(f"{MULTIPART} without a boundary parameter")
    if len(boundary) > 70:
        raise InputError("multipart boundary is longer than 70 characters (RFC 2046)")
    return boundary


def parse_multipart(body: bytes, boundary: str) -> Form:
    """The parts between ``--boundary`` delimiter lines, up to the closing
    ``--boundary--`` (preamble and epilogue ignored). Lines end in CRLF."""
    delimiter = _CRLF + b"--" + boundary.encode("ascii", "strict")
    text = _CRLF + body
    start = text.find(delimiter)
    if start < 0:
        raise InputError("multipart body does not contain its boundary")
    parts: list[FormPart] = []
    position = start + len(delimiter)
    while True:
        if text.startswith(b"--", position):
            return Form(tuple(parts))
        line_end = text.find(_CRLF, position)
        if line_end < 0 or text[position:line_end].strip(b" \t"):
            raise InputError("multipart delimiter line is malformed")
        following = text.find(delimiter, line_end)
        if following < 0:
            raise InputError("multipart body is not closed by its final boundary")
        _room_for_one_more(parts)
        parts.append(_part(text[line_end + 2 : following]))
        position = following + len(delimiter)


def _room_for_one_more(parts: list[FormPart]) -> None:
    """Checked before each part is built: a form never costs more than ``MAX_PARTS``."""
    if len(parts) >= MAX_PARTS:
        raise InputError(f"form has more than {MAX_PARTS} parts")


def _part(chunk: bytes) -> FormPart:
    if chunk.startswith(_CRLF):
        head, content = b"", chunk[2:]
    else:
        head, separator, content = chunk.partition(_CRLF + _CRLF)
        if not separator:
            raise InputError("multipart part has no blank line after its headers")
    headers = _headers(head)
    disposition = headers.get("Content-Disposition")
    if disposition is None or headers.get_content_disposition() != "form-data":
        raise InputError("multipart part is not Content-Disposition: form-data")
    raw_name = headers.get_param("name", header="Content-Disposition")
    if not raw_name:
        raise InputError("multipart part has no name")
    name = collapse_rfc2231_value(raw_name)
    has_type = headers.get("Content-Type") is not None
    return FormPart(
        name=name,
        value=content,
        filename=headers.get_filename(),
        content_type=headers.get_content_type() if has_type else None,
        charset=headers.get_content_charset(),
    )


def _headers(head: bytes) -> Message:
    """A part's header lines (folded lines joined); names and values as sent, values
    decoded as UTF-8 (what browsers and providers send), else Latin-1."""
    headers = Message()
    lines: list[str] = []
    for raw in head.split(_CRLF) if head else []:
        line = decode(raw, None)
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.strip():
            raise InputError("multipart part has a malformed header line")
        headers[name] = value.strip()
    return headers
