"""Header values: unfolding, RFC 2047 encoded words, address lists (stdlib ``email``
header registry, with its parsing failures turned into "nothing found")."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email import policy
from email.parser import Parser
from email.utils import getaddresses

from connectors.email.charset import clean

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_BREAKS = re.compile(r"[\r\n]+")


def split_headers(block: str | bytes) -> tuple[tuple[str, str], ...]:
    """A raw header block (SendGrid's ``headers`` field, a DSN's status fields) ->
    (name, value) pairs in order, unfolded; parsing stops at the first empty line."""
    text = block.decode("utf-8", "surrogateescape") if isinstance(block, bytes) else block
    parsed = Parser(policy=policy.compat32).parsestr(text.lstrip("\r\n"), headersonly=True)
    return tuple((clean(name), unfold(clean(str(value)))) for name, value in parsed.raw_items())


def unfold(value: str) -> str:
    """One line: folding line breaks removed (RFC 5322 2.2.3), stray ones made spaces."""
    return _BREAKS.sub(" ", _FOLD.sub("", value)).strip()


def decoded(value: str | None) -> str | None:
    """The text of an unstructured header (Subject), encoded words decoded."""
    if value is None:
        return None
    try:
        text = str(policy.default.header_factory("subject", value))
    except Exception:  # the header registry fails in odd ways on odd input
        text = value
    return clean(unfold(text))


def mailboxes(values: Iterable[str]) -> list[tuple[str, str]]:
    """(display name, address) of every mailbox in address-list header values."""
    found: list[tuple[str, str]] = []
    for value in values:
        found += _mailboxes(value)
    return found


def addresses(values: Iterable[str]) -> list[str]:
    """The addresses (lowercased) of every mailbox in address-list header values."""
    return [address.lower() for _, address in mailboxes(values)]


def _mailboxes(value: str) -> list[tuple[str, str]]:
    try:
        header = policy.default.header_factory("to", value)
        pairs = [(a.display_name, a.addr_spec) for a in header.addresses]
    except Exception:  # the header registry fails in odd ways on odd input
        pairs = getaddresses([value])
    return [(clean(name).strip(), clean(address).strip()) for name, address in pairs if address]
