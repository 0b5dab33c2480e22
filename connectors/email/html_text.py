"""Readable text from an HTML email body (stdlib ``html.parser``)."""

from __future__ import annotations


def html_to_text(html: str) -> str:
    """Script, style and head dropped; block elements and ``<br>`` as line breaks;
    entities decoded; ``<blockquote>`` lines prefixed ``> `` so quote stripping sees them."""
    raise NotImplementedError
