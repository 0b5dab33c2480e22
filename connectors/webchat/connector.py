"""The web chat connector: a website's chat widget talks to omniroute directly.

No provider and no webhook: ``router.http.chat`` serves ``POST /v1/chat/sessions`` (a
signed visitor token) and the visitor's socket ``GET /v1/chat/ws``, and asks this class
what a token, an origin or a frame means. Everything here is pure: the time is given.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from connectors.base import ConnectorContext, Manifest, NoWebhook, Parsed
from connectors.webchat import parse, tokens
from connectors.webchat.frames import IdentifyFrame, MessageFrame
from connectors.webchat.settings import WebChatSettings, normalize_origin
from connectors.webchat.tokens import Claims
from router.errors import RateLimited, Unauthorized
from router.ids import new_id
from router.ratelimit import RateLimiter


class WebChatConnector(NoWebhook):
    manifest: ClassVar[Manifest] = Manifest(
        name="webchat",
        channel="chat",
        title="Web chat (a website's chat widget over a WebSocket)",
        settings=WebChatSettings,
        webhook=False,
        docs="connectors/README.md#webchat",
    )
    instead = "visitors connect to /v1/chat/ws"

    def __init__(self, settings: WebChatSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self._key = tokens.derive_key(settings.secret.get())
        self._origins = settings.origins
        self._limits = parse.Limits(
            max_message_chars=settings.max_message_chars,
            max_attachment_bytes=settings.max_attachment_bytes,
        )
        self._sessions = _limiter(settings.sessions_per_minute, context)
        self._messages = _limiter(settings.messages_per_minute, context)

    def check_session(self, address: str) -> None:
        """``RateLimited`` when this client address starts sessions too often."""
        _take(self._sessions, address, "too many chat sessions from this address")

    def check_message(self, visitor_id: str) -> None:
        """``RateLimited`` when this visitor sends too often (the message is not stored)."""
        _take(self._messages, visitor_id, "too many messages: wait before sending more")

    @property
    def max_frame_bytes(self) -> int:
        """The largest socket frame worth reading: the text limit in UTF-8, the
        attachment limit in base64, and room for the JSON around them."""
        content = (self._limits.max_attachment_bytes + 2) // 3 * 4
        return 4 * self._limits.max_message_chars + content + 64 * 1024

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether a browser on ``origin`` (the ``Origin`` header) may use the chat."""
        if not self._origins:
            return True
        return origin is not None and normalize_origin(origin) in self._origins

    def session(
        self,
        *,
        now: datetime,
        resume: str | None = None,
        name: str | None = None,
        email: str | None = None,
    ) -> tuple[str, Claims]:
        """A token for a new visitor, or a renewed one for the visitor ``resume`` (their
        current token) names, keeping their id and what they gave before."""
        if resume is None:
            return self._mint(new_id("vis"), now, name, email)
        known = tokens.verify(self._key, resume, now=now)
        return self._mint(known.visitor_id, now, name or known.name, email or known.email)

    def visitor(self, token: str | None, *, now: datetime) -> Claims:
        """Who the socket's token says it is; ``Unauthorized`` when it does not."""
        if not token:
            raise Unauthorized("missing visitor token: connect to /v1/chat/ws?token=<token>")
        return tokens.verify(self._key, token, now=now)

    def identify(
        self, visitor: Claims, frame: IdentifyFrame, *, now: datetime
    ) -> tuple[str, Claims]:
        """A renewed token remembering the name and email the visitor typed."""
        name = frame.name or visitor.name
        return self._mint(visitor.visitor_id, now, name, frame.email or visitor.email)

    def message(self, visitor: Claims, frame: MessageFrame, *, now: datetime) -> Parsed:
        return parse.message(visitor, frame, now, self._limits)

    def _mint(
        self, visitor_id: str, now: datetime, name: str | None, email: str | None
    ) -> tuple[str, Claims]:
        if email is not None:
            email = parse.check_email(email)
        signed = tokens.claims(
            visitor_id, now=now, ttl_s=self.settings.token_ttl_s, name=name, email=email
        )
        return tokens.mint(self._key, signed), signed


def _limiter(per_minute: int, context: ConnectorContext) -> RateLimiter | None:
    if per_minute == 0:
        return None
    return RateLimiter(per_minute, burst=per_minute, clock=context.clock)


def _take(limiter: RateLimiter | None, key: str, message: str) -> None:
    wait_s = 0.0 if limiter is None else limiter.take(key)
    if wait_s > 0:
        raise RateLimited(message, retry_after_s=wait_s)
