"""A sender's edit of a stored message (``Store.edit_message``), as both stores apply
it to the record they read: pure, so the two cannot disagree on what an edit does."""

from __future__ import annotations

from datetime import datetime

from router.models import Revision, StoredMessage


def apply_edit(message: StoredMessage, text: str, edited_at: datetime) -> bool:
    """Give ``message`` the new ``text``, keeping the old one as a revision; False (and
    nothing changed) when ``text`` is already its text, as for a re-delivered edit, or the
    edit is older than the last one applied (a late retry must not revert the text)."""
    if message.text == text:
        return False
    if message.edited_at is not None and edited_at < message.edited_at:
        return False
    message.revisions = [*message.revisions, Revision(text=message.text, replaced_at=edited_at)]
    message.text = text
    message.edited_at = edited_at
    return True
