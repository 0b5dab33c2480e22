"""The SMTP listener: aiosmtpd's protocol served on the daemon's own event loop.

``RCPT TO`` outside the configured domains and addresses gets 550 (never an open relay);
a message over ``max_message_bytes`` gets 552. ``DATA`` is answered 250 only once the
message is stored (or quarantined, or recorded as our own); when the store is down the
answer is 451, so the sending MTA keeps the message and retries. Bad input never takes
the listener down: aiosmtpd answers each bad command, and anything a handler raises
becomes a 451 for that session alone.
"""

from __future__ import annotations

import asyncio
import socket
import weakref

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from connectors.base import Intake
from connectors.email import parse_email
from connectors.smtp.recipients import Recipients
from connectors.smtp.settings import SmtpSettings
from router.clock import Clock
from router.errors import BackendUnavailable, ConfigError

log = structlog.get_logger("connectors.smtp")

CONNECTOR = "smtp"
STOP_DEADLINE_S = 30.0
"""How long ``stop`` lets messages already being stored finish."""
TRY_LATER = "451 4.3.0 try again later"


class Handler:
    """aiosmtpd's hooks (``handle_<COMMAND>``): whom to accept, and storing each message."""

    def __init__(self, settings: SmtpSettings, recipients: Recipients, clock: Clock) -> None:
        self._options = settings.options
        self._recipients = recipients
        self._clock = clock
        self.intake: Intake | None = None
        self.closing = False
        self._in_hand = 0
        self.idle = asyncio.Event()
        """Set while no message is being stored (``stop`` lets those in hand finish)."""
        self.idle.set()

    async def handle_RCPT(  # noqa: N802 — aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self._recipients.accepts(address):
            log.info("smtp.recipient_refused", domain=address.rpartition("@")[2].lower())
            return "550 5.7.1 relaying denied: no such recipient here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 — aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.closing or self.intake is None:
            return "421 4.3.2 shutting down, try again later"
        self._in_hand += 1
        self.idle.clear()
        try:
            return await self._store(self.intake, envelope)
        finally:
            self._in_hand -= 1
            if not self._in_hand:
                self.idle.set()

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp.error", error=repr(error), exc_info=error)
        return TRY_LATER

    async def _store(self, intake: Intake, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        # in a worker thread: a large mail must not hold up the event loop. The envelope's
        # recipients count too: a Bcc'd plus-address carries its conversation token
        parsed = await asyncio.to_thread(
            parse_email,
            raw,
            options=self._options,
            received_at=self._clock.now(),
            via=CONNECTOR,
            recipients=tuple(envelope.rcpt_tos),
        )
        try:
            accepted = await intake.accept(CONNECTOR, parsed)
        except BackendUnavailable as exc:
            log.warning("smtp.deferred", reason=exc.message)
            return TRY_LATER
        log.info(
            "smtp.stored",
            size=len(raw),
            accepted=accepted.accepted,
            duplicates=accepted.duplicates,
            recorded=accepted.recorded,
            quarantined=accepted.quarantined,
            ignored=accepted.ignored,
        )
        stored = f" stored as {accepted.message_ids[0]}" if accepted.message_ids else ""
        return f"250 2.0.0 OK{stored}"


class SmtpListener:
    """The ``Service``: binds at start, stops taking mail at shutdown."""

    def __init__(self, settings: SmtpSettings, clock: Clock) -> None:
        recipients = Recipients.of(settings)
        if not recipients:
            raise ValueError(
                "set accept_domains, recipients or own_addresses: "
                "the listener takes mail only for those (it is never an open relay)"
            )
        self._settings = settings
        self._handler = Handler(settings, recipients, clock)
        self._hostname = settings.hostname or socket.gethostname()
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    async def start(self, intake: Intake) -> None:
        self._handler.intake = intake
        host, port = self._settings.host, self._settings.port
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._session, host, port)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            problem = f"connectors.smtp: cannot listen on {host}:{port}: {reason}"
            raise ConfigError([problem]) from exc
        log.info("smtp.listening", host=host, port=port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        self._handler.closing = True
        try:
            await asyncio.wait_for(self._handler.idle.wait(), STOP_DEADLINE_S)
        except TimeoutError:
            log.warning("smtp.stop_deadline", deadline_s=STOP_DEADLINE_S)
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await server.wait_closed()
        log.info("smtp.stopped")

    def _session(self) -> SMTP:
        session = SMTP(
            self._handler,
            data_size_limit=self._settings.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=self._hostname,
            ident="omniroute ESMTP",
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(session)
        return session
