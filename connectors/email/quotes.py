"""The new content of a reply: quoted text and signatures stripped, for the history view.

Heuristics, as mail clients write replies: Gmail and Apple Mail put an ``On <date>,
<name> wrote:`` line (Gmail wraps it over two lines when long) above a ``>`` quote, and
an answer may follow the quote or sit between its lines; Outlook
puts ``-----Original Message-----`` or a ``From: / Sent: / To: / Subject:`` block (after a
line of underscores); phones add ``Sent from my iPhone``; a ``-- `` line starts a
signature. A forwarded message (``---------- Forwarded message ---------``) is content,
not a quote, and is kept.
"""

from __future__ import annotations

import re

_VERBS = (
    r"wrote|writes|schrieb|a écrit|escribió|ha scritto|schreef|escreveu|napisał|skrev|kirjoitti"
)
_WROTE = re.compile(rf"({_VERBS})\s*:\s*$", re.IGNORECASE)
_WROTE_BEFORE_NAME = re.compile(rf"\b({_VERBS})\b.*:\s*$", re.IGNORECASE)
_ON = re.compile(r"^\s*(on|am|le|el|il|op|em|w dniu|den|på)\s", re.IGNORECASE)
_FORWARDED = re.compile(r"^\s*-{2,}\s*(forwarded message|original message follows)", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|mensagem original)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_FROM = re.compile(r"^\s*\*?(from|de|von|da|van|från|fra)\s*:\*?\s*\S", re.IGNORECASE)
_SENT = re.compile(
    r"^\s*\*?(sent|date|envoyé|gesendet|datum|enviado|fecha|inviato|data|verzonden|skickat|sendt)"
    r"\s*:",
    re.IGNORECASE,
)
_RULE = re.compile(r"^\s*_{8,}\s*$")
_SIGNATURE = re.compile(r"^--\s?$")
_MOBILE = re.compile(
    r"^\s*(sent from my \S.*|sent from (outlook|mail|yahoo mail|samsung|proton mail)\b.*|"
    r"sent via \S.*|get outlook for (ios|android)\b.*|enviado desde mi \S.*|"
    r"von meinem \S.* gesendet\.?|envoyé de mon \S.*|inviato da(l mio)? \S.*|"
    r"verstuurd vanaf mijn \S.*)$",
    re.IGNORECASE,
)
_MOBILE_MAX_CHARS = 80
_ATTRIBUTION_MAX_CHARS = 500
_QUOTED = re.compile(r"^\s*>")


def strip_reply(text: str) -> str:
    """``text`` without what it quotes and its signature: cut at an Outlook
    ``-----Original Message-----`` or ``From: ... Sent: ...`` block, a ``-- `` signature
    separator or a mobile signature (``Sent from my iPhone``); ``On ... wrote:``
    attributions (and their translations) right above a quote and lines quoted with
    ``>`` dropped, so an answer written below or between the quotes stays. The whole
    text when stripping would leave nothing."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = lines[: _cut(lines)]
    kept: list[str] = []
    index = 0
    while index < len(lines):
        attribution = _attribution(lines, index)
        if attribution:
            index += attribution
            continue
        if not _QUOTED.match(lines[index]):
            kept.append(lines[index].rstrip())
        index += 1
    new = "\n".join(kept).strip("\n")
    return new if new.strip() else text.strip()


def _cut(lines: list[str]) -> int:
    """The index of the first line of the quote or signature (``len(lines)``: none);
    nothing after a forwarded message's marker, which is content."""
    for index, line in enumerate(lines):
        if _FORWARDED.match(line):
            break
        if _starts_tail(lines, index):
            return index
    return len(lines)


def _starts_tail(lines: list[str], index: int) -> bool:
    line = lines[index]
    return (
        bool(_ORIGINAL.match(line))
        or _outlook_header(lines, index)
        or (bool(_RULE.match(line)) and _outlook_header(lines, _next_filled(lines, index + 1)))
        or bool(_SIGNATURE.match(line))
        or (len(line) <= _MOBILE_MAX_CHARS and bool(_MOBILE.match(line)))
    )


def _attribution(lines: list[str], index: int) -> int:
    """How many lines an attribution right above a quote takes at ``index`` (0: none):
    ``On <date>, <name> wrote:`` over up to three lines (``Am ... schrieb <name>:``), or
    ``<name> wrote:``."""
    on = bool(_ON.match(lines[index]))
    for count in range(1, 4 if on else 2):
        joined = " ".join(line.strip() for line in lines[index : index + count])
        if len(joined) > _ATTRIBUTION_MAX_CHARS:
            return 0
        said = _WROTE.search(joined) or (on and _WROTE_BEFORE_NAME.search(joined))
        if said and _quote_follows(lines, index + count):
            return count
    return 0


def _quote_follows(lines: list[str], index: int) -> bool:
    following = _next_filled(lines, index)
    return following == len(lines) or bool(_QUOTED.match(lines[following]))


def _outlook_header(lines: list[str], index: int) -> bool:
    """``From: ...`` followed within four lines by ``Sent:`` (or ``Date:``)."""
    if index >= len(lines) or not _FROM.match(lines[index]):
        return False
    return any(_SENT.match(line) for line in lines[index + 1 : index + 5])


def _next_filled(lines: list[str], index: int) -> int:
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index
