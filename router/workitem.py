"""Build the work item agent tools receive from what the store claimed."""

from __future__ import annotations

from datetime import datetime

import msgspec

from router.models import (
    ClaimedItem,
    CustomerSummary,
    HistoryEntry,
    StoredMessage,
    WorkItem,
    WorkMessage,
    WorkSender,
)

_encoder = msgspec.json.Encoder()


def build(claimed: ClaimedItem, *, released_at: datetime) -> WorkItem:
    item, message, customer = claimed.item, claimed.message, claimed.customer
    conversation = claimed.conversation
    return WorkItem(
        item_id=item.item_id,
        conversation_id=item.conversation_id,
        customer_id=customer.customer_id,
        queue=item.queue,
        priority=item.priority,
        deadline=item.deadline,
        channel=message.channel,
        message=WorkMessage(
            message_id=message.message_id,
            channel=message.channel,
            source=message.source,
            subject=message.subject,
            text=message.text,
            sender=WorkSender(name=message.sender_name, identities=message.identities),
            sent_at=message.sent_at,
            attachments=message.attachments,
            attributes=message.attributes,
        ),
        customer=CustomerSummary(
            name=customer.name, identities=customer.identities, attributes=customer.attributes
        ),
        history=[_entry(m) for m in claimed.history],
        reasons=item.reasons,
        created_at=item.created_at,
        released_at=released_at,
        clocks=conversation.sla.clocks if conversation.sla is not None else [],
        skills=conversation.skills,
        tags=conversation.tags,
    )


def _entry(message: StoredMessage) -> HistoryEntry:
    return HistoryEntry(
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        channel=message.channel,
        source=message.source,
        subject=message.subject,
        text=message.text,
        sent_at=message.sent_at,
        kind=message.kind,
    )


def encode(item: WorkItem) -> bytes:
    return _encoder.encode(item)
