"""The one small interface every connector implements.

A connector is a folder ``connectors/<name>/`` whose ``__init__.py`` exposes a class
registered in the ``omniroute.connectors`` entry point group (``pyproject.toml``; a
third party registers theirs the same way in its own package). The class has:

- ``manifest``: a frozen ``Manifest`` (name, channel, title, settings class);
- ``__init__(settings, context)``: its settings (an instance of ``manifest.settings``,
  a frozen dataclass built from ``[connectors.<name>]`` and ``OMNIROUTE_CONNECTORS_<NAME>_*``)
  and a ``ConnectorContext`` (the shared HTTP client session, the clock);
- for webhooks (``GET|POST /v1/connectors/{name}/webhook``):
  ``handshake(request)`` answers the provider's GET (subscription check, CRC),
  ``verify(request)`` proves a POST came from the provider (raise ``Unauthorized``) before
  anything is parsed, and ``parse(request)`` turns it into a ``Parsed``;
- for listeners and pollers (SMTP, IMAP): ``service()`` returns a ``Service`` the daemon
  starts with an ``Intake`` and stops at shutdown.

Connectors never store anything themselves: they return what they found and the daemon
stores it (``router.intake``), so a 2xx means stored. Parsing is pure (no I/O); it
raises ``router.errors.InputError`` for a body that does not fit the provider's format.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import parse_qsl

import msgspec

from router.clock import Clock
from router.errors import NotFound, Unauthorized
from router.ledger import DeliveryReport
from router.models import Channel, InboundMessage

if TYPE_CHECKING:
    import aiohttp


@dataclass(frozen=True)
class Manifest:
    name: str
    """The URL segment and the ``[connectors.<name>]`` table."""
    channel: Channel
    title: str
    settings: type[Any]
    """A frozen dataclass; fields without a default are required. ``router.settings``
    types: ``str``, ``int``, ``float``, ``bool``, ``Secret``, ``tuple[str, ...]``."""
    webhook: bool = True
    """Served at ``/v1/connectors/{name}/webhook``; False for listeners and pollers."""
    docs: str = ""
    """The provider's documentation of the format."""


WEBHOOK_PATH = "/v1/connectors/{name}/webhook"


def webhook_url(manifest: Manifest, public_url: str) -> str | None:
    """Where the provider posts: ``http.public_url`` + the path (the path alone when no
    public URL is set); None for a connector without a webhook."""
    if not manifest.webhook:
        return None
    return public_url.rstrip("/") + WEBHOOK_PATH.format(name=manifest.name)


@dataclass(frozen=True)
class ConnectorContext:
    clock: Clock
    http: aiohttp.ClientSession | None = None
    """One shared client session for connectors that call their provider."""
    public_url: str = ""
    """``http.public_url``: the daemon's address as providers see it (no trailing '/')."""


@dataclass(frozen=True)
class WebhookRequest:
    """One provider request, as received: nothing parsed yet."""

    method: str
    url: str
    """The URL the provider called: ``http.public_url`` + path + query when set, else
    what the daemon saw (a connector may prefer its own setting, as Twilio's
    ``webhook_url``)."""
    headers: Mapping[str, str]
    """Case-insensitive (aiohttp's ``CIMultiDictProxy``, or a dict with lower-case keys)."""
    body: bytes
    received_at: datetime
    query: Sequence[tuple[str, str]] = ()

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if value is not None else self.headers.get(name.lower())

    def query_value(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def form(self) -> list[tuple[str, str]]:
        """The body as ``application/x-www-form-urlencoded`` pairs, in order; empty when
        it is not text or has more than 1000 fields, more than any provider posts (counted
        before any is built: this runs before the signature is checked, which then fails)."""
        try:
            return parse_qsl(
                self.body.decode(),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=1000,
            )
        except ValueError:  # UnicodeDecodeError, or too many fields
            return []


@dataclass(frozen=True)
class Verified:
    """What ``verify`` proved. ``nonce``: a one-time value the signature covers but the
    body does not (Mailgun's token); the daemon refuses it when seen with another body."""

    nonce: str | None = None
    nonce_ttl_s: float = 24 * 3600.0
    fingerprint: str | None = None
    """What the request carries, for the nonce check: the nonce seen again with the same
    fingerprint is the provider retrying, with another a replay. None: the SHA-256 of
    the raw body. A connector whose provider may frame a retry differently (Mailgun's
    multipart boundary) gives a digest of the content instead."""


@dataclass(frozen=True)
class Reply:
    """What to answer the provider (a handshake, a Slack challenge, Twilio's TwiML)."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/plain"


@dataclass(frozen=True)
class Edit:
    """The sender edited a message already sent: ``message`` carries the new text under
    the original ``external_id``. Stored as an edit when the original is stored, else as
    a new message."""

    message: InboundMessage
    edited_at: datetime


@dataclass(frozen=True)
class Quarantined:
    """An inbound message that could not be parsed: kept raw for an operator."""

    reason: str
    raw: bytes
    content_type: str = "application/octet-stream"
    summary: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parsed:
    """Everything one request (or one email) carried, for the daemon to store."""

    messages: list[InboundMessage] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    deliveries: list[DeliveryReport] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)
    """Attachment contents by SHA-256 (``blob_key``), written before any message that
    names them (``Attachment.blob``) is stored."""
    ignored: list[str] = field(default_factory=list)
    """What was acknowledged and ignored (``echo``, ``read``, ``bot_message``, unknown
    event types): logged at debug and counted."""
    reply: Reply | None = None
    """The answer on success; None: ``200 {"accepted": n, "duplicates": n, ...}``."""


class Accepted(msgspec.Struct, kw_only=True):
    """What the daemon did with a ``Parsed`` (the default webhook answer)."""

    accepted: int = 0
    duplicates: int = 0
    recorded: int = 0
    """Auto-replies and bounces: in history, not routed."""
    edited: int = 0
    deliveries: int = 0
    quarantined: int = 0
    ignored: int = 0
    message_ids: list[str] = []
    conversation_ids: list[str] = []


class Intake(Protocol):
    """Stores what a connector parsed (``router.intake``); returns once it is durable."""

    async def accept(self, connector: str, parsed: Parsed) -> Accepted: ...

    async def get_cursor(self, key: str) -> str | None:
        """A poller's saved position (``imap:<user>@<host>/<mailbox>``), shared by every
        router process; None when never set."""
        ...

    async def set_cursor(self, key: str, value: str) -> None: ...


class Service(Protocol):
    """A listener or poller (SMTP, IMAP) the daemon runs while it serves."""

    async def start(self, intake: Intake) -> None:
        """Bind or connect and begin; returns once serving (raise to refuse start-up)."""
        ...

    async def stop(self) -> None:
        """Stop taking new messages and finish the one in hand."""
        ...


class Connector(Protocol):
    manifest: ClassVar[Manifest]

    def handshake(self, request: WebhookRequest) -> Reply:
        """Answer the provider's GET (``NotFound`` when the connector has none,
        ``Unauthorized`` for a wrong verify token)."""
        ...

    def verify(self, request: WebhookRequest) -> Verified:
        """Prove the POST came from the provider, before parsing; ``Unauthorized`` else."""
        ...

    async def parse(self, request: WebhookRequest) -> Parsed:
        """The messages, edits and delivery reports in a verified request."""
        ...

    def service(self) -> Service | None:
        """A listener or poller to run, if this connector has one."""
        ...


class ConnectorClass(Protocol):
    """What the entry point names: a class with a manifest, built from its settings."""

    manifest: Manifest

    def __call__(self, settings: Any, context: ConnectorContext) -> Connector: ...


# --- helpers every connector uses ----------------------------------------------------


def blob_key(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def hmac_hex(key: bytes, data: bytes, digest: str = "sha256") -> str:
    return hmac.new(key, data, digest).hexdigest()


def require_equal(given: str | None, expected: str, what: str) -> None:
    """Constant-time comparison; ``Unauthorized`` naming ``what`` when they differ."""
    if given is None:
        raise Unauthorized(f"missing {what}")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized(f"invalid {what}")


class WebhookOnly:
    """Defaults for a connector with a webhook and no service or handshake."""

    manifest: ClassVar[Manifest]

    def handshake(self, request: WebhookRequest) -> Reply:
        raise NotFound(f"connector {self.manifest.name!r} has no GET handshake")

    def service(self) -> Service | None:
        return None


class NoWebhook:
    """Defaults for a connector with no webhook (``manifest.webhook`` False: a listener,
    a poller, the web chat). The webhook route refuses it before calling any of these;
    called anyway, they raise ``NotFound`` saying where its messages come from."""

    manifest: ClassVar[Manifest]
    instead: ClassVar[str]
    """Where the messages come from instead: ``it reads its mailbox itself``."""

    def handshake(self, request: WebhookRequest) -> Reply:
        raise self._no_webhook()

    def verify(self, request: WebhookRequest) -> Verified:
        raise self._no_webhook()

    async def parse(self, request: WebhookRequest) -> Parsed:
        raise self._no_webhook()

    def service(self) -> Service | None:
        return None

    def _no_webhook(self) -> NotFound:
        return NotFound(f"the {self.manifest.name} connector has no webhook: {self.instead}")
