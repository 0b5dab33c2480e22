"""What every email way in shares: the options, and one email split into fields.

``parse_email`` splits a raw RFC 5322 message into ``EmailFields``; a webhook connector
whose provider already split it (Postmark's JSON, Mailgun's and SendGrid's parsed posts)
builds ``EmailFields`` from the provider's fields instead. Either way ``email_message``
turns the fields into the canonical message, so threading, noise, quoted-reply stripping
and attachments behave the same whichever way the mail came in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from connectors.email.auth import Check, TrustFrom

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class EmailOptions:
    own_addresses: tuple[str, ...] = ()
    """The support addresses omniroute receives at (``support@acme.example``). Mail whose
    From is one of them (or a plus-address of one) is ignored as our own, a loop; a
    plus-address of one in To / Cc / Delivered-To carries a conversation token
    (``support+con_<id>@acme.example``)."""
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    """A larger attachment is kept as metadata only (``attributes["attachments_dropped"]``)."""
    trust_from: TrustFrom = "always"
    """``authenticated``: the From address is a verified identity only when the mail
    carries a passing verdict for its domain (DMARC pass, or an aligned DKIM pass: see
    ``connectors.email.auth``), else an unverified one (a suggestion, never a merge).
    ``always``: the From is taken as verified (mail that only arrives through a gateway
    that already refused unauthenticated mail). Either way ``attributes["email_auth"]``
    records what was found."""
    authserv_ids: tuple[str, ...] = ()
    """The authserv-ids (RFC 8601) of the receiving servers whose
    ``Authentication-Results`` headers are read (``mx.acme.example``); any other such
    header is ignored, since a sender can write one."""


@dataclass(frozen=True)
class EmailAttachment:
    """One attachment or inline image, as the MIME part or the provider gave it."""

    name: str | None
    """The file name (None: derived from the content type)."""
    content_type: str = "application/octet-stream"
    content: bytes | None = None
    """The decoded content; None when the provider gave only metadata (``url``)."""
    size: int | None = None
    """The size in bytes when ``content`` is None (the provider's figure)."""
    content_id: str | None = None
    """The Content-ID without ``<>``: the HTML names an inline image ``cid:<content_id>``."""
    inline: bool = False
    """``Content-Disposition: inline`` (an image shown in the HTML body)."""
    url: str | None = None
    """Where the provider serves the content, when it does."""


@dataclass(frozen=True)
class EmailFields:
    """One email, split: headers, the text and HTML bodies, attachments.

    Every message property is read from ``headers``: From, To, Cc, Subject, Date,
    Message-ID, In-Reply-To, References, Delivered-To, Auto-Submitted, Precedence,
    Content-Type (``multipart/report; report-type=delivery-status``) ... A provider that
    gives From or Subject as separate fields passes them as headers too
    (``("From", "Maria <maria@example.com>")``); decoded values and RFC 2047 encoded
    words are both fine.
    """

    headers: tuple[tuple[str, str], ...]
    """(name, value) in the message's order; names compare case-insensitively."""
    text: str | None = None
    """The text/plain body (parts joined), decoded."""
    html: str | None = None
    """The text/html body, decoded: the text is derived from it when ``text`` is None."""
    attachments: tuple[EmailAttachment, ...] = ()
    """Attachments and inline images; a bounce's ``message/delivery-status`` and
    ``message/rfc822`` (or ``text/rfc822-headers``) parts are attachments too."""
    recipients: tuple[str, ...] = ()
    """Envelope recipients besides the headers' (SMTP ``RCPT TO``, a provider's
    ``OriginalRecipient``): searched for plus-address tokens."""
    raw: bytes | None = None
    """The original bytes when known: the deterministic id of a mail without a
    Message-ID is their SHA-256, and a quarantined mail keeps them."""
    defects: tuple[str, ...] = ()
    """MIME defects the parser tolerated (recorded in ``attributes["mime_defects"]``)."""
    checks: tuple[Check, ...] = ()
    """Authentication verdicts the way in got besides the mail's own headers (SendGrid's
    ``dkim`` and ``SPF`` fields; what Mailgun or Postmark found): trusted as the
    receiver's, so only a way in that proved who posted may give them."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), None when absent."""
        return next(self.header_all(name), None)

    def header_all(self, name: str) -> Iterator[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        wanted = name.lower()
        return (value for key, value in self.headers if key.lower() == wanted)
