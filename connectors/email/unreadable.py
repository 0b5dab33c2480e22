"""A mail kept for an operator (the quarantine), and the id of a mail without one."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from connectors.base import Quarantined, blob_key
from connectors.email.fields import EmailFields
from connectors.email.headers import decoded

_encoder = msgspec.json.Encoder()


def quarantine(fields: EmailFields, reason: str) -> Quarantined:
    """The mail kept for an operator: its raw bytes (else its fields as JSON) and what
    could be read of it."""
    summary = {
        key: value
        for key, value in (
            ("from", fields.header("From")),
            ("subject", decoded(fields.header("Subject"))),
            ("message_id", fields.header("Message-ID")),
        )
        if value
    }
    if fields.raw is not None:
        return Quarantined(reason, fields.raw, "message/rfc822", summary)
    return Quarantined(reason, _encoder.encode(_as_json(fields)), "application/json", summary)


def content_id(fields: EmailFields) -> str:
    """A deterministic id for a mail without a Message-ID: ``sha256:<hex>`` of its raw
    bytes, else of its fields."""
    content = fields.raw if fields.raw is not None else _encoder.encode(_as_json(fields))
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _as_json(fields: EmailFields) -> dict[str, Any]:
    return {
        "headers": [list(pair) for pair in fields.headers],
        "text": fields.text,
        "html": fields.html,
        "attachments": [
            {
                "name": a.name,
                "content_type": a.content_type,
                "sha256": blob_key(a.content) if a.content is not None else None,
                "size": len(a.content) if a.content is not None else a.size,
            }
            for a in fields.attachments
        ],
        "recipients": list(fields.recipients),
    }
