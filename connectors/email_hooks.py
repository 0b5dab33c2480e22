"""What the inbound-email webhooks (``postmark``, ``mailgun``, ``sendgrid``) share: the
settings each has, HTTP basic auth, timestamp freshness, the numbered files of a form
(Mailgun, SendGrid), and the provider's own ids on the message the email core
(``connectors.email``) made.

The mail itself is never interpreted here: each connector hands the provider's fields
to ``email_message`` (or the raw MIME to ``parse_email``), so threading, auto-replies,
bounces, quoted-reply stripping and attachments follow the same rules as SMTP and IMAP,
and a mail that reaches omniroute two ways dedupes on its Message-ID.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Any

import msgspec

from connectors.base import Parsed, WebhookRequest
from connectors.checks import Check, addresses, positive
from connectors.email import EmailAttachment, EmailOptions
from connectors.email.fields import DEFAULT_MAX_ATTACHMENT_BYTES
from connectors.email.trust import authserv_ids_check, email_options, trust_from_check
from connectors.forms import Form, FormPart
from router.errors import InputError, Unauthorized
from router.settings import Secret

DEFAULT_MAX_BODY_BYTES = 30 * 1024 * 1024
"""Inbound mail with attachments is large: providers post up to 30 MB or so."""
MAX_ATTACHMENTS = 500
"""The most files a form may say it carries (Mailgun's and SendGrid's counts)."""

CHECKS: Mapping[str, Check] = {
    "own_addresses": addresses,
    "max_attachment_bytes": positive,
    "max_body_bytes": positive,
    "trust_from": trust_from_check(auto=False),
    "authserv_ids": authserv_ids_check,
}
"""Checks of the keys in ``EmailHookSettings``; each connector adds its own."""


@dataclass(frozen=True, kw_only=True)
class EmailHookSettings:
    """The keys every inbound-email webhook has."""

    own_addresses: tuple[str, ...] = ()
    """The support addresses mail arrives at (see ``EmailOptions``): mail from them is
    ignored as a loop, plus-addresses of them carry a conversation token."""
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    """A larger attachment is kept as metadata only."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """The largest request the webhook takes (413 above)."""
    trust_from: str = "authenticated"
    """``authenticated``: the From is a verified identity only with a passing DMARC or
    aligned DKIM verdict (the provider's own, or a trusted ``Authentication-Results``);
    ``always``: every From is taken as verified (see ``EmailOptions``)."""
    authserv_ids: tuple[str, ...] = ()
    """Authserv-ids whose ``Authentication-Results`` headers are trusted besides the
    provider's own verdict fields (rarely needed)."""

    @property
    def options(self) -> EmailOptions:
        return email_options(
            self.own_addresses, self.max_attachment_bytes, self.trust_from, self.authserv_ids
        )


class BasicAuthRequired(Unauthorized):
    """401 for missing or wrong HTTP basic auth credentials; ``challenge`` is the
    ``WWW-Authenticate`` value that asks for them."""

    def __init__(self, message: str, realm: str) -> None:
        super().__init__(message, challenge=f'Basic realm="{realm}", charset="UTF-8"')


def check_basic_auth(request: WebhookRequest, username: str, password: Secret, realm: str) -> None:
    """``Authorization: Basic`` must carry exactly ``username:password`` (UTF-8,
    compared in constant time); ``BasicAuthRequired`` else."""
    header = request.header("Authorization")
    if not header:
        raise BasicAuthRequired(
            "missing HTTP basic auth: put the credentials in the webhook URL "
            "(https://<username>:<password>@<host>/...)",
            realm,
        )
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":  # never echoed: without a space it is a credential
        raise BasicAuthRequired(
            "the Authorization header is not HTTP basic auth (the only scheme taken)", realm
        )
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BasicAuthRequired("malformed HTTP basic auth credentials", realm) from None
    expected = f"{username}:{password.get()}".encode()
    if not hmac.compare_digest(given, expected):
        raise BasicAuthRequired("wrong HTTP basic auth username or password", realm)


def check_fresh(timestamp: str | None, received_at: datetime, max_age_s: int, what: str) -> None:
    """``timestamp`` (Unix seconds) within ``max_age_s`` of ``received_at``, either way;
    ``Unauthorized`` else."""
    if timestamp is None or not timestamp.strip().isdigit():
        raise Unauthorized(f"missing or malformed {what}")
    seconds = int(timestamp.strip())
    age_s = received_at.timestamp() - seconds
    if abs(age_s) > max_age_s:
        raise Unauthorized(
            f"{what} is {age_s:.0f} s from the time received, more than the {max_age_s} s "
            "allowed: a stale or replayed request (or a clock far off)"
        )


def address(name: str | None, email: str) -> str:
    """A header value for one mailbox: ``Maria López <maria@example.com>`` (the name
    quoted when it needs to be), or the address alone (no name, or no valid address:
    the email core then says what is wrong with it)."""
    if not name:
        return email
    try:
        return str(Address(display_name=name, addr_spec=email))
    except (ValueError, IndexError, HeaderParseError):
        return email


def shown_inline(content_id: str | None, html: str | None) -> bool:
    """Whether the HTML body shows the part with this Content-ID (``cid:<id>``)."""
    return bool(content_id and html and f"cid:{content_id}".lower() in html.lower())


def numbered_files(form: Form, count_field: str, prefix: str) -> list[tuple[str, FormPart]]:
    """The file parts ``<prefix>1`` .. ``<prefix><n>`` with their names, ``n`` being the
    form's ``count_field`` (Mailgun's ``attachment-count``, SendGrid's ``attachments``);
    ``InputError`` when the count is not a number up to ``MAX_ATTACHMENTS`` or a part
    it counts is missing."""
    count = form.text(count_field) or "0"
    if not count.isdigit() or int(count) > MAX_ATTACHMENTS:
        raise InputError(f"{count_field} must be an integer from 0 to {MAX_ATTACHMENTS}")
    found = []
    for index in range(1, int(count) + 1):
        name = f"{prefix}{index}"
        part = form.get(name)
        if part is None:
            raise InputError(f"{count_field} is {count} but {name} is missing")
        found.append((name, part))
    return found


def content_ids(form: Form, map_field: str) -> dict[str, str]:
    """The form's JSON ``map_field`` (``<content-id>`` -> file field: Mailgun's
    ``content-id-map``, SendGrid's ``content-ids``) turned around: file field -> its
    Content-ID, without ``<>``."""
    given: dict[str, str] = json_field(form.text(map_field), dict[str, str], map_field) or {}
    return {field: cid.strip().strip("<>") for cid, field in given.items()}


def file_attachment(
    part: FormPart,
    html: str | None,
    content_id: str | None,
    *,
    name: str | None = None,
    content_type: str | None = None,
) -> EmailAttachment:
    """A posted file as an attachment: ``name`` and ``content_type`` (what the provider
    says of it elsewhere) before the part's own; inline when the HTML shows it."""
    return EmailAttachment(
        name=name or part.filename or None,
        content_type=content_type or part.content_type or "application/octet-stream",
        content=part.value,
        content_id=content_id,
        inline=shown_inline(content_id, html),
    )


def base64_content(content: str, what: str) -> bytes:
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{what} is not valid base64") from None


def with_attributes(parsed: Parsed, extra: Mapping[str, Any]) -> Parsed:
    """``parsed`` with ``extra`` (the provider's ids) added to each message's attributes;
    the core's own attributes win over a clash."""
    kept = {k: v for k, v in extra.items() if v not in (None, "", [], {})}
    if not kept or not parsed.messages:
        return parsed
    messages = [
        msgspec.structs.replace(m, attributes={**kept, **m.attributes}) for m in parsed.messages
    ]
    return dataclasses.replace(parsed, messages=messages)


def json_field(value: str | None, kind: type[Any], what: str) -> Any:
    """A JSON document carried in a form field (Mailgun's ``message-headers``, SendGrid's
    ``envelope``), decoded to ``kind``; None when the field is absent or empty."""
    if not value:
        return None
    try:
        return msgspec.json.decode(value, type=kind)
    except msgspec.ValidationError as exc:
        raise InputError(f"{what} does not have the expected shape: {exc}") from None
    except msgspec.DecodeError:
        raise InputError(f"{what} is not valid JSON") from None
