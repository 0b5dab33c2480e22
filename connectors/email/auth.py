"""Sender authentication: whether a mail's From address is proved, from what the
receiving side found (SPF, DKIM, DMARC). Pure; nothing here looks anything up.

Anyone can write any From. A From is *verified* (an identity the pipeline merges on)
only when the mail carries a passing verdict for the From's domain:

- DMARC ``pass`` for exactly that domain (``header.from``); or
- DKIM ``pass`` with a signing domain (``d=``) *aligned* with it: the From's domain or a
  parent of it (``d=example.com`` for ``maria@mail.example.com``), never a bare TLD; or a
  receiver's own finding that a valid signature is the author domain's (SpamAssassin's
  ``DKIM_VALID_AU``, ``Check.author``).

A DMARC ``fail`` for the From's domain beats any pass (it means something was forged).
SPF is recorded, never enough: it proves the envelope sender, not the From.

The verdicts are ``Check``s, read from ``Authentication-Results`` headers (RFC 8601)
whose authserv-id is one the operator trusts (``authentication_results``), or given by
a webhook provider from its own fields (SendGrid's ``dkim``, Mailgun's
``X-Mailgun-Dkim-Check-Result``, Postmark's ``X-Spam-Tests``). An authserv-id is only
worth trusting when that receiver removes the ``Authentication-Results`` headers a
sender wrote with its id (RFC 8601 section 5).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

TrustFrom = Literal["authenticated", "always"]
TRUST_FROM: tuple[TrustFrom, ...] = ("authenticated", "always")

MAX_HEADERS = 20
"""At most this many ``Authentication-Results`` headers are read, and this many
results of each."""
MAX_RECORDED = 20
"""At most this many checks are kept in ``attributes["email_auth"]``."""
_DOMAIN_CHARS = 253
_PAIR = re.compile(r'([A-Za-z0-9_.\-/]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s";]+)')


@dataclass(frozen=True)
class Check:
    """One verdict on one mail: ``dkim=pass`` for ``example.com``, by whom."""

    method: str
    """``dmarc``, ``dkim`` or ``spf`` (other methods are kept, never counted)."""
    result: str
    """``pass``, ``fail``, ``none``, ``softfail``, ``neutral``, ``temperror`` ..."""
    domain: str | None = None
    """DMARC: the From domain judged; DKIM: the signing domain (``d=``); SPF: the
    envelope sender's domain. None when the verdict does not say."""
    by: str = ""
    """Who found it: an authserv-id, or the provider (``sendgrid``, ``mailgun`` ...)."""
    author: bool = False
    """DKIM only: the receiver itself found the signature to be the author domain's."""

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"method": self.method, "result": self.result}
        if self.domain:
            found["domain"] = self.domain
        if self.author:
            found["author"] = True
        if self.by:
            found["by"] = self.by
        return found


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str
    """``dmarc=pass``, ``dkim=pass d=example.com``, ``no DMARC pass or aligned DKIM pass``."""


def verdict(from_domain: str, checks: Iterable[Check]) -> Verdict:
    """Whether ``checks`` prove ``from_domain`` (see the module docstring)."""
    domain = clean_domain(from_domain)
    found = list(checks)
    dmarc = [c for c in found if c.method == "dmarc" and c.domain == domain]
    if any(c.result == "fail" for c in dmarc):
        return Verdict(False, "dmarc=fail")
    if any(c.result == "pass" for c in dmarc):
        return Verdict(True, "dmarc=pass")
    for check in found:
        if check.method != "dkim" or check.result != "pass":
            continue
        if check.domain and aligned(check.domain, domain):
            return Verdict(True, f"dkim=pass d={check.domain}")
        if check.author:
            return Verdict(True, f"dkim=pass author domain ({check.by})")
    return Verdict(False, "no DMARC pass or aligned DKIM pass")


def aligned(signer: str, from_domain: str) -> bool:
    """``signer`` is ``from_domain`` or a parent of it, with at least two labels."""
    signer, from_domain = clean_domain(signer), clean_domain(from_domain)
    if "." not in signer or not from_domain:
        return False
    return from_domain == signer or from_domain.endswith("." + signer)


def clean_domain(value: str) -> str:
    """``@Example.COM.`` -> ``example.com``: the part after the last ``@``, lower case."""
    return value.rpartition("@")[2].strip().strip("<>").rstrip(".").lower()[:_DOMAIN_CHARS]


def authentication_results(
    headers: Iterable[tuple[str, str]], authserv_ids: Sequence[str]
) -> list[Check]:
    """The results of every ``Authentication-Results`` header whose authserv-id is one
    of ``authserv_ids`` (case-insensitive); the others are ignored: anyone can write one."""
    trusted = {i.strip().lower() for i in authserv_ids if i.strip()}
    if not trusted:
        return []
    found: list[Check] = []
    values = (v for k, v in headers if k.lower() == "authentication-results")
    for _, value in zip(range(MAX_HEADERS), values, strict=False):
        server, results = parse_results(value)
        if server in trusted:
            found += results
    return found


def parse_results(value: str) -> tuple[str, list[Check]]:
    """One ``Authentication-Results`` value -> its authserv-id and its results
    (``dkim=pass header.d=example.com``; comments dropped, ``none`` -> no results)."""
    segments = _split(_without_comments(value))
    head = segments[0].split()
    server = _unquote(head[0]).lower() if head else ""
    checks = [check for s in segments[1:MAX_HEADERS] if (check := _result(s, server))]
    return server, checks


def dkim_domains(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The ``d=`` of every ``DKIM-Signature`` header, in order."""
    found = []
    for name, value in headers:
        if name.lower() != "dkim-signature":
            continue
        tags = dict(_tags(value))
        if tags.get("d"):
            found.append(clean_domain(tags["d"]))
    return found


def only(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The value of header ``name`` when the mail has exactly one: a verdict header a
    sender wrote besides the receiver's is no verdict at all."""
    values = [v for k, v in headers if k.lower() == name.lower()]
    return values[0].strip() if len(values) == 1 else None


def first_word(value: str | None) -> str | None:
    """``Pass (sender SPF authorized) ...`` -> ``pass``."""
    words = (value or "").split()
    return words[0].lower().strip(";:,") if words else None


def _result(segment: str, server: str) -> Check | None:
    pairs = _PAIR.findall(segment)
    if not pairs:
        return None
    (method, result), props = pairs[0], {k.lower(): _unquote(v) for k, v in pairs[1:]}
    method = method.partition("/")[0].lower()
    if method == "dmarc":
        domain = props.get("header.from")
    elif method == "dkim":
        domain = props.get("header.d") or props.get("header.i")
    elif method == "spf":
        domain = props.get("smtp.mailfrom")
    else:
        domain = None
    return Check(method, result.lower(), clean_domain(domain) if domain else None, server)


def _tags(value: str) -> Iterator[tuple[str, str]]:
    """A DKIM tag list (``v=1; a=rsa-sha256; d=example.com; ...``), whitespace removed."""
    for item in value.split(";"):
        name, eq, tag = item.partition("=")
        if eq:
            yield name.strip().lower(), "".join(tag.split())


def _without_comments(value: str) -> str:
    """``value`` with its (nested) ``(comments)`` replaced by a space; quoted strings and
    backslash escapes kept."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
            if not depth:
                out.append(char)
        elif char == "\\" and (quoted or depth):
            escaped = True
            if not depth:
                out.append(char)
        elif quoted:
            quoted = char != '"'
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if not depth:
                out.append(" ")
        elif not depth:
            quoted = char == '"'
            out.append(char)
    return "".join(out)


def _split(value: str) -> list[str]:
    """``value`` split at the ``;`` outside quoted strings."""
    segments: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            segments.append("".join(current))
            current = []
            continue
        current.append(char)
    segments.append("".join(current))
    return segments


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
