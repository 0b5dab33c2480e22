"""Attachments and inline images -> the model's ``Attachment`` with the content kept
as a blob (a file named by its SHA-256), or as metadata only over the size limit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from connectors.email.fields import EmailAttachment, EmailOptions
from connectors.email.threads import MAX_ID_CHARS
from router.models import Attachment

NAME_CHARS = 512
URL_CHARS = 4096
CONTENT_TYPE_CHARS = 255
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "image/gif": ".gif",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "message/delivery-status": ".txt",
    "message/global": ".eml",
    "message/rfc822": ".eml",
    "text/calendar": ".ics",
    "text/html": ".html",
    "text/plain": ".txt",
    "text/rfc822-headers": ".txt",
}


def attachments(
    given: Sequence[EmailAttachment], options: EmailOptions, keep: Callable[[bytes], str]
) -> tuple[list[Attachment], dict[str, Any]]:
    """The attachments, each content passed to ``keep`` (which returns its blob key),
    and the attributes to note: ``attachments_dropped`` (over
    ``max_attachment_bytes``: name, size, reason) and ``inline_images`` (Content-ID ->
    blob, to resolve the HTML's ``cid:`` links)."""
    found: list[Attachment] = []
    dropped: list[dict[str, Any]] = []
    inline: dict[str, str] = {}
    for number, part in enumerate(given, start=1):
        size = len(part.content) if part.content is not None else part.size
        name = (part.name or "").strip()[:NAME_CHARS] or _default_name(part, number)
        blob = None
        if part.content is not None and len(part.content) > options.max_attachment_bytes:
            dropped.append({"name": name, "size": size, "reason": "over max_attachment_bytes"})
        elif part.content is not None:
            blob = keep(part.content)
            if part.content_id:
                inline[part.content_id[:MAX_ID_CHARS]] = blob
        found.append(
            Attachment(
                name=name,
                content_type=part.content_type.lower()[:CONTENT_TYPE_CHARS],
                size=size,
                url=part.url if part.url and len(part.url) <= URL_CHARS else None,
                blob=blob,
                inline=part.inline,
            )
        )
    noted: dict[str, Any] = {}
    if dropped:
        noted["attachments_dropped"] = dropped
    if inline:
        noted["inline_images"] = inline
    return found, noted


def _default_name(attachment: EmailAttachment, number: int) -> str:
    extension = _EXTENSIONS.get(attachment.content_type.lower(), ".bin")
    return f"attachment-{number}{extension}"
