"""One IMAP connection (aioimaplib): log in, select the mailbox, find new UIDs, fetch
without marking read, flag ``\\Seen``, wait with IDLE.

Every call races the connection: when the server goes away, the call in progress (an
IDLE wait included) raises ``ConnectionError`` at once instead of waiting out a timeout.
A refused command (``NO`` / ``BAD``) raises ``ConnectionError`` naming the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable
from datetime import date
from typing import Any, TypeVar

import aioimaplib

from connectors.imap.parse import (
    fetched_body,
    fetched_header,
    fetched_size,
    imap_date,
    search_uids,
    uidnext,
    uidvalidity,
)
from connectors.imap.settings import ImapSettings

T = TypeVar("T")


class ImapSession:
    def __init__(self, settings: ImapSettings) -> None:
        self._settings = settings
        self._lost = asyncio.Event()
        context = ssl.create_default_context() if settings.tls else None
        self._client = aioimaplib.IMAP4(
            host=settings.host,
            port=settings.port,
            timeout=settings.timeout_s,
            conn_lost_cb=self._on_lost,
            ssl_context=context,
        )
        self.uidvalidity = 0
        self.uidnext: int | None = None
        """``UIDNEXT`` when the mailbox was selected: every older message was there then."""

    @classmethod
    async def open(cls, settings: ImapSettings) -> ImapSession:
        """Connected, logged in, the mailbox selected; closed again if any step fails."""
        session = cls(settings)
        try:
            await session._begin()
        except BaseException:
            await session.close()
            raise
        return session

    @property
    def can_idle(self) -> bool:
        return bool(self._client.has_capability("IDLE"))

    async def _begin(self) -> None:
        settings = self._settings
        await self._call(self._client.wait_hello_from_server())
        user, password = aioimaplib.quoted(settings.user), settings.password.get()
        _ok(await self._call(self._client.login(user, password)), "LOGIN")
        selected = await self._call(self._client.select(aioimaplib.quoted(settings.mailbox)))
        _ok(selected, f"SELECT {settings.mailbox}")
        validity = uidvalidity(selected.lines)
        if validity is None:
            raise ConnectionError(f"SELECT {settings.mailbox}: the server gave no UIDVALIDITY")
        self.uidvalidity, self.uidnext = validity, uidnext(selected.lines)

    async def unseen(self, since: date | None = None) -> list[int]:
        """UIDs of the unread messages; with ``since``, of those that arrived on or after
        that day (``SINCE``: the server's internal date, by day)."""
        if since is None:
            return await self._search("UNSEEN")
        return await self._search("UNSEEN", "SINCE", imap_date(since))

    async def after(self, uid: int) -> list[int]:
        """UIDs above ``uid`` (``UID n:*`` also names the newest message when every UID
        is below n: it is left out)."""
        return [u for u in await self._search("UID", f"{uid + 1}:*") if u > uid]

    async def _search(self, *criteria: str) -> list[int]:
        found = _ok(await self._call(self._client.uid_search(*criteria, charset=None)), "SEARCH")
        return search_uids(found.lines)

    async def size(self, uid: int) -> int | None:
        """The message's ``RFC822.SIZE`` in bytes; None when it is gone."""
        fetched = await self._call(self._client.uid("FETCH", str(uid), "(RFC822.SIZE)"))
        return fetched_size(_ok(fetched, "FETCH").lines)

    async def fetch(self, uid: int) -> bytes | None:
        """The whole message, without setting ``\\Seen`` (``BODY.PEEK[]``); None when it
        is gone (expunged by another client)."""
        fetched = await self._call(self._client.uid("FETCH", str(uid), "(BODY.PEEK[])"))
        return fetched_body(_ok(fetched, "FETCH").lines)

    async def fetch_header(self, uid: int) -> bytes | None:
        """The message's header alone, without setting ``\\Seen``; None when it is gone."""
        fetched = await self._call(self._client.uid("FETCH", str(uid), "(BODY.PEEK[HEADER])"))
        return fetched_header(_ok(fetched, "FETCH").lines)

    async def mark_seen(self, uid: int) -> bool:
        """False when the server refuses (a read-only mailbox): the cursor still moves on."""
        stored = await self._call(self._client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)"))
        return bool(stored.result == "OK")

    async def wait_for_mail(self, stop: asyncio.Event) -> None:
        """Return when the server reports a change to the mailbox (IDLE), when
        ``idle_renew_s`` has passed (IDLE is then ended, to be re-issued), or when
        ``stop`` is set."""
        renew_s = self._settings.idle_renew_s
        idling = await self._call(self._client.idle_start(timeout=2 * renew_s))
        try:
            await self._first(renew_s, self._client.wait_server_push(timeout=None), stop.wait())
        finally:
            if not self._lost.is_set():
                self._client.idle_done()
                _ok(await self._call(asyncio.wait_for(idling, self._settings.timeout_s)), "IDLE")

    async def pause(self, seconds: float, stop: asyncio.Event) -> None:
        """Wait ``seconds`` (polling without IDLE), less when ``stop`` is set."""
        await self._first(seconds, stop.wait())

    async def close(self) -> None:
        """Log out politely when the server is still there, then drop the connection."""
        if not self._lost.is_set() and self._client.get_state() in ("AUTH", "SELECTED"):
            # going away anyway: the server drops a session that just disappears
            with contextlib.suppress(OSError, TimeoutError, aioimaplib.AioImapException):
                await asyncio.wait_for(self._client.logout(), self._settings.timeout_s)
        transport = self._client.protocol.transport
        if transport is not None:
            transport.close()

    def _on_lost(self, exc: Exception | None) -> None:
        self._lost.set()

    async def _call(self, step: Awaitable[T]) -> T:
        """``step``, unless the connection drops first (``ConnectionError``)."""
        if self._lost.is_set():
            _discard(step)
            raise ConnectionError("IMAP connection lost")
        task = asyncio.ensure_future(step)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled():
            raise ConnectionError("IMAP connection lost")
        return task.result()

    async def _first(self, limit_s: float, *steps: Awaitable[Any]) -> None:
        """Until one of ``steps`` completes or ``limit_s`` passes; ``ConnectionError``
        when the connection drops first."""
        waits = [asyncio.ensure_future(step) for step in steps]
        try:
            first = asyncio.FIRST_COMPLETED
            await self._call(asyncio.wait(waits, timeout=limit_s, return_when=first))
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)


def _ok(response: Any, command: str) -> Any:
    if response.result != "OK":
        text = b" ".join(bytes(line) for line in response.lines[-1:]).decode(errors="replace")
        raise ConnectionError(f"IMAP {command} refused: {response.result} {text}".strip())
    return response


def _discard(step: Awaitable[Any]) -> None:
    """Close a coroutine that will not run (no 'never awaited' warning)."""
    close = getattr(step, "close", None)
    if close is not None:
        close()
