"""Stores what a connector parsed: the one door from every connector (webhooks, the raw
email endpoint, SMTP, IMAP, web chat) into the daemon.

In order: attachment contents (files, before any message names them), quarantined raw
messages, messages (through the ingest pipeline, concurrently so they share a store
batch), edits, delivery reports. ``accept`` returns only once all of it is durable, so
the connector's 2xx (or SMTP 250, or IMAP ``\\Seen``) means stored. A message that does
not fit the canonical model is quarantined with the reason instead of failing the
others; a backend outage raises ``BackendUnavailable`` and the provider retries (what was
stored is then answered as a duplicate).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

import msgspec
import structlog

from connectors.base import Accepted, Edit, Parsed, Quarantined
from router.blobs import Blobs
from router.clock import Clock
from router.errors import InputError, InvalidMessage
from router.ledger import DeliveryReport, Ledger, QuarantineEntry
from router.models import InboundMessage, IngestResult
from router.pipeline import Ingestor
from router.ports import Store

log = structlog.get_logger("router.intake")

EventPublisher = Callable[[str, bytes], Awaitable[None]]

_encoder = msgspec.json.Encoder()


def quarantine_id(connector: str, blob: str) -> str:
    """The same raw content from the same connector is one entry, however often it comes."""
    return "qua_" + hashlib.sha256(f"{connector}\0{blob}".encode()).hexdigest()[:24]


class Intake:
    def __init__(
        self,
        *,
        ingestor: Ingestor,
        store: Store,
        ledger: Ledger,
        blobs: Blobs,
        clock: Clock,
        publish_event: EventPublisher | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._store = store
        self._ledger = ledger
        self._blobs = blobs
        self._clock = clock
        self._publish_event = publish_event

    async def accept(self, connector: str, parsed: Parsed) -> Accepted:
        out = Accepted(ignored=len(parsed.ignored))
        await self._blobs.put_all(parsed.blobs)
        for item in parsed.quarantined:
            await self._quarantine(connector, item, out)
        results = await asyncio.gather(
            *(self._ingest(m) for m in parsed.messages), return_exceptions=True
        )
        for message, result in zip(parsed.messages, results, strict=True):
            await self._settle(connector, message, result, out)
        for edit in parsed.edits:
            await self._edit(connector, edit, out)
        for report in parsed.deliveries:
            await self._deliver(report, out)
        if parsed.ignored:
            log.debug("connector.ignored", connector=connector, what=parsed.ignored)
        return out

    async def _ingest(self, message: InboundMessage) -> IngestResult:
        return await self._ingestor.ingest(checked(message))

    async def get_cursor(self, key: str) -> str | None:
        return await self._ledger.get_cursor(key)

    async def set_cursor(self, key: str, value: str) -> None:
        await self._ledger.set_cursor(key, value)

    async def _settle(
        self,
        connector: str,
        message: InboundMessage,
        result: IngestResult | BaseException,
        out: Accepted,
    ) -> None:
        """Count a stored message; quarantine one the model refused (as its JSON)."""
        if isinstance(result, InputError):
            reason = f"{result.code}: {result.message}"
            raw = _encoder.encode(message)
            item = Quarantined(reason=reason, raw=raw, content_type="application/json")
            await self._quarantine(connector, item, out)
            return
        if isinstance(result, BaseException):
            raise result
        _count(result, out)

    async def _edit(self, connector: str, edit: Edit, out: Accepted) -> None:
        message = edit.message
        stored = await self._store.edit_message(
            message.source, message.external_id, text=message.text, edited_at=edit.edited_at
        )
        if stored is not None:
            out.edited += 1
            out.message_ids.append(stored.message_id)
            log.info("message.edited", connector=connector, message_id=stored.message_id)
            return
        try:
            result: IngestResult | BaseException = await self._ingest(message)
        except InputError as exc:
            result = exc
        await self._settle(connector, message, result, out)

    async def _deliver(self, report: DeliveryReport, out: Accepted) -> None:
        if not await self._ledger.record_delivery(report):
            return
        out.deliveries += 1
        log.info("message.delivery", source=report.source, status=report.status)
        if self._publish_event is not None:
            await self._publish_event("message.delivery", _encoder.encode(report))

    async def _quarantine(self, connector: str, item: Quarantined, out: Accepted) -> None:
        blob = await self._blobs.put(item.raw)
        entry = QuarantineEntry(
            quarantine_id=quarantine_id(connector, blob),
            connector=connector,
            reason=item.reason[:1000],
            received_at=self._clock.now(),
            size=len(item.raw),
            blob=blob,
            content_type=item.content_type,
            summary={k: v[:300] for k, v in item.summary.items()},
        )
        await self._ledger.quarantine(entry)
        out.quarantined += 1
        log.warning(
            "message.quarantined",
            connector=connector,
            quarantine_id=entry.quarantine_id,
            reason=entry.reason[:200],
        )


_decoder = msgspec.json.Decoder(InboundMessage)


def checked(message: InboundMessage) -> InboundMessage:
    """The message as ``POST /v1/messages`` would take it: a connector builds structs in
    Python, which skips the model's limits (lengths, patterns) that decoding enforces."""
    try:
        return _decoder.decode(_encoder.encode(message))
    except msgspec.ValidationError as exc:
        raise InvalidMessage(f"message does not fit the canonical model: {exc}") from None


def _count(result: IngestResult, out: Accepted) -> None:
    if result.duplicate:
        out.duplicates += 1
    elif not result.routed:
        out.recorded += 1
    else:
        out.accepted += 1
    out.message_ids.append(result.message_id)
    if result.conversation_id not in out.conversation_ids:
        out.conversation_ids.append(result.conversation_id)
