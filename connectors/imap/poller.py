"""The IMAP poller: takes each new message of one mailbox, stores it, then marks it read.

Per message, in this order: its ``RFC822.SIZE``, then fetch with ``BODY.PEEK[]`` (nothing
is marked read yet; a message over ``max_message_bytes`` is not fetched: its header
alone is quarantined), ``Intake.accept`` (returns once stored, quarantined or recorded),
``\\Seen``, then the cursor ``<uidvalidity>:<uid>`` in the ledger (shared by every router
process). A crash between two steps takes the message again, and the store answers it as
a duplicate.

Which messages are new: those above the cursor's UID. With no cursor, or when the
mailbox's UIDVALIDITY changed (it was rebuilt: its UIDs now name other messages), the
unread ones (with ``since_days``, only those that arrived within that many days: older
unread mail is left as it is, unread); the cursor then starts at the mailbox's end.
Between rounds the poller waits with IDLE when the server has it (re-issued every
``idle_renew_s``), else sleeps ``poll_s``. A lost connection or a store outage is
retried with backoff, and a message is never marked read unless it was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, timedelta

import aioimaplib
import structlog

from connectors.base import Intake, Parsed
from connectors.email import parse_email
from connectors.imap.parse import Cursor, backoff_s, oversized
from connectors.imap.session import ImapSession
from connectors.imap.settings import ImapSettings
from router.clock import Clock
from router.errors import ConfigError, OmnirouteError

log = structlog.get_logger("connectors.imap")

CONNECTOR = "imap"

_EXPECTED = (OSError, TimeoutError, OmnirouteError, aioimaplib.AioImapException)
"""What a server or store outage raises (logged without a traceback)."""


class ImapPoller:
    """The ``Service``: connects at start (a refusal stops start-up), then runs until
    ``stop``, which lets the message in hand finish."""

    def __init__(self, settings: ImapSettings, clock: Clock) -> None:
        self._settings = settings
        self._options = settings.options
        self._clock = clock
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0

    async def start(self, intake: Intake) -> None:
        settings = self._settings
        if not settings.tls and settings.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("imap.cleartext", host=settings.host)
        try:
            session = await ImapSession.open(settings)
        except _EXPECTED as exc:
            where = f"{settings.host}:{settings.port}/{settings.mailbox}"
            problem = f"connectors.imap: cannot read {where}: {_reason(exc)}"
            raise ConfigError([problem]) from exc
        log.info(
            "imap.connected", host=settings.host, mailbox=settings.mailbox, idle=session.can_idle
        )
        self._task = asyncio.create_task(self._run(intake, session), name="omniroute-imap")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        done, _ = await asyncio.wait({task}, timeout=self._settings.timeout_s)
        if not done:
            log.warning("imap.stop_deadline", deadline_s=self._settings.timeout_s)
            task.cancel()
            await asyncio.wait({task})
        log.info("imap.stopped")

    async def _run(self, intake: Intake, session: ImapSession | None) -> None:
        """Serve until stopped; after any failure, close, pause, reconnect."""
        while not self._stop.is_set():
            try:
                session = session or await ImapSession.open(self._settings)
                await self._serve(intake, session)
            except Exception as exc:  # the poller outlives any one failure: logged, retried
                self._failures += 1
                log.warning(
                    "imap.retry",
                    reason=_reason(exc),
                    failures=self._failures,
                    exc_info=not isinstance(exc, _EXPECTED),
                )
            finally:
                if session is not None:
                    await session.close()
                session = None
            await self._rest()

    async def _rest(self) -> None:
        settings = self._settings
        pause_s = backoff_s(self._failures, settings.reconnect_min_s, settings.reconnect_max_s)
        if pause_s and not self._stop.is_set():
            log.info("imap.reconnect_pause", pause_s=pause_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause_s)

    async def _serve(self, intake: Intake, session: ImapSession) -> None:
        """Rounds of taking new mail, waiting between them; returns once stopped."""
        while not self._stop.is_set():
            # again until a round finds nothing: the server may have told this session of
            # mail that came meanwhile (aioimaplib drops that), and would not say it twice
            while await self._take_new(intake, session):
                pass
            self._failures = 0
            if self._stop.is_set():
                return
            if self._settings.idle and session.can_idle:
                await session.wait_for_mail(self._stop)
                log.debug("imap.idle_ended")
            else:
                await session.pause(self._settings.poll_s, self._stop)

    async def _take_new(self, intake: Intake, session: ImapSession) -> bool:
        """Take the new messages; True when there were some (and not stopped)."""
        key, validity = self._settings.cursor_key, session.uidvalidity
        cursor = Cursor.decode(await intake.get_cursor(key))
        if cursor is not None and cursor.uidvalidity == validity:
            uids, fresh = await session.after(cursor.last_uid), False
        else:
            if cursor is not None:
                log.info("imap.uidvalidity_changed", mailbox=self._settings.mailbox)
            uids, fresh = await session.unseen(self._since()), True
        for uid in uids:
            if self._stop.is_set():
                return False
            await self._take(intake, session, uid)
            await intake.set_cursor(key, Cursor(validity, uid).encode())
        if fresh:
            end = max([*uids, (session.uidnext or 1) - 1])
            await intake.set_cursor(key, Cursor(validity, end).encode())
        return bool(uids)

    def _since(self) -> date | None:
        """The first day a first run takes unread mail from; None: every unread one."""
        days = self._settings.since_days
        return (self._clock.now() - timedelta(days=days)).date() if days else None

    async def _take(self, intake: Intake, session: ImapSession, uid: int) -> None:
        size = await session.size(uid)
        parsed = await self._read(session, uid, size) if size is not None else None
        if parsed is None:
            log.info("imap.gone", uid=uid)
            return
        accepted = await intake.accept(CONNECTOR, parsed)
        seen = await session.mark_seen(uid)
        log.info(
            "imap.stored",
            uid=uid,
            size=size,
            seen=seen,
            accepted=accepted.accepted,
            duplicates=accepted.duplicates,
            recorded=accepted.recorded,
            quarantined=accepted.quarantined,
            ignored=accepted.ignored,
        )

    async def _read(self, session: ImapSession, uid: int, size: int) -> Parsed | None:
        """The message parsed, or only its header quarantined when it is over the size
        limit; None when it is gone."""
        limit = self._settings.max_message_bytes
        if size > limit:
            header = await session.fetch_header(uid)
            log.warning("imap.too_large", uid=uid, size=size, max_message_bytes=limit)
            return None if header is None else oversized(header, size, limit)
        raw = await session.fetch(uid)
        if raw is None:
            return None
        return await asyncio.to_thread(  # a large mail must not hold up the event loop
            parse_email, raw, options=self._options, received_at=self._clock.now(), via=CONNECTOR
        )


def _reason(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, OmnirouteError) else str(exc)
    return f"{type(exc).__name__}: {text}"[:300]
