"""The new content of a reply: quoted text and signatures stripped, for the history view."""

from __future__ import annotations


def strip_reply(text: str) -> str:
    """``text`` without what it quotes and its signature: cut at an ``On ... wrote:``
    attribution (and its translations), an Outlook ``-----Original Message-----`` or
    ``From: ... Sent: ...`` block, a ``-- `` signature separator or a mobile signature
    (``Sent from my iPhone``); lines quoted with ``>`` dropped. The whole text when
    stripping would leave nothing."""
    raise NotImplementedError
