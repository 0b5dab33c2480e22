"""Readable text from an HTML email body (stdlib ``html.parser``)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_DROPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr",
        "ul",
    }
)  # fmt: skip
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._dropped = 0
        self._quoted = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self._dropped += 1
        elif tag == "br":
            self._break()
        elif tag in _BLOCKS:
            self._block()
            self._quoted += tag == "blockquote"
            self._pre += tag == "pre"
        elif tag in {"td", "th"}:
            self._line.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._line.append(f"[{alt}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _DROPPED:  # <br/>, <img/>, <hr/>: no content, no end tag to wait for
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self._dropped = max(0, self._dropped - 1)
        elif tag in _BLOCKS:
            self._block()
            if tag == "blockquote":
                self._quoted = max(0, self._quoted - 1)
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._dropped:
            return
        if self._pre:
            first, *rest = data.split("\n")
            self._line.append(first)
            for line in rest:
                self._break()
                self._line.append(line)
            return
        self._line.append(_SPACES.sub(" ", data.replace("\xa0", " ")))

    def _block(self) -> None:
        if "".join(self._line).strip():
            self._break()

    def _break(self) -> None:
        text = "".join(self._line)
        text = text.rstrip() if self._pre else text.strip()
        prefix = "> " * self._quoted
        self.lines.append(prefix + text if text else prefix.rstrip())
        self._line = []

    def text(self) -> str:
        self._break()
        joined = "\n".join(line.rstrip() for line in self.lines)
        return _BLANK_RUNS.sub("\n\n", joined).strip("\n")


def html_to_text(html: str) -> str:
    """Script, style and head dropped; block elements and ``<br>`` as line breaks;
    entities decoded; ``<blockquote>`` lines prefixed ``> `` so quote stripping sees them."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.text()
