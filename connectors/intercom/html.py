"""Intercom message bodies (HTML such as ``<p>Hi</p><p>the <b>order</b></p>``) as plain
text, keeping the line breaks, with the images the customer pasted in.

Webhooks of API version 2.15 and later send plain text instead: a body with no tag is
returned as it is.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

BLOCKS = frozenset({"p", "div", "li", "ul", "ol", "blockquote", "pre", "tr", "h1", "h2", "h3"})
_TAG = re.compile(r"</?[a-zA-Z][^>]*>|<!--")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.images: list[str] = []
        self._links: list[tuple[str | None, int]] = []
        """Each open ``<a>``: its ``href`` and where its text starts in ``chunks``."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "br":
            self.chunks.append("\n")
        elif tag in BLOCKS:
            self._end_line()
        elif tag == "img" and found.get("src"):
            self.images.append(str(found["src"]))
        elif tag == "a":
            self._links.append((found.get("href"), len(self.chunks)))

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCKS:
            self._end_line()
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            if _shows_other_address(href, "".join(self.chunks[start:])):
                self.chunks.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        self.chunks.append(data.replace("\n", " "))

    def _end_line(self) -> None:
        """A block starts or ends on its own line; ``<p></p>`` adds no blank line (the
        Messenger writes each line as a ``<p>``, a blank one as ``<p><br></p>``)."""
        last = next((c for c in reversed(self.chunks) if c.strip(" \t")), "\n")
        if not last.rstrip(" \t").endswith("\n"):
            self.chunks.append("\n")


def _shows_other_address(href: str | None, text: str) -> bool:
    """A web link whose text is not its address (``<a href="https://x">here</a>``)."""
    if href is None or not href.startswith(("http://", "https://")):
        return False
    return text.strip() not in (href, href.rstrip("/"))


def to_text(body: str) -> tuple[str, list[str]]:
    """The body as text, and the ``src`` of each image in it."""
    if not _TAG.search(body):
        return body.strip(), []
    parser = _Text()
    parser.feed(body)
    parser.close()
    lines = [_SPACES.sub(" ", line).strip() for line in "".join(parser.chunks).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip(), parser.images
