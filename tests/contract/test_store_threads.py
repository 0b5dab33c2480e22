"""The ``Store`` contract on a shared thread (``router/ports.py``, ``ingest`` step 2): the
conversation, and so the customer, a thread key gives a message with no verified
identity when several customers have conversations on it, as texts to one business
number or a group chat do. Runs on every implementation through the ``store`` fixture;
times are fixed datetimes and nothing sleeps. ``contexts`` names the same customer
(``ingest_as_contexts_said``).

Readings of the protocol this suite pins down (both backends agree):

- The thread's conversation is the newest open or pending one (``created_at``, then the
  greatest id), whoever's it is: an open conversation wins over a newer resolved one,
  even one the message could reopen.
- With none open, it is the one resolved last (``resolved_at``, then the greatest id),
  not the newest: the message reopens it within the window, adopts it when
  ``recorded_only``, and otherwise makes a new customer; an older recorded-only
  conversation behind it is not adopted. A message routed nowhere takes its customer
  whatever the window.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest

from router.models import IdentityIn, IngestRequest, IngestResult, ItemChange
from router.ports import Store

from .test_store import JOSE_PHONE, MARIA_PHONE, MINUTE, T0, ingest_one, request, typed, verified
from .test_store_connectors import noise
from .test_store_routing import ingest_as_contexts_said, routed, update

BUSINESS_NUMBER = "+15005550006"
MARIA = verified("phone", MARIA_PHONE)
JOSE = verified("phone", JOSE_PHONE)
ANONYMOUS = typed("email", "someone@example.com")  # no verified identity at all


def texted(
    external_id: str,
    identity: IdentityIn,
    *,
    at: datetime,
    conversation_id: str | None = None,
    reopen_window_s: float = 0.0,
) -> IngestRequest:
    """A text to the business number at ``at`` (received a second later); every sender's
    has the same thread key. ``conversation_id`` fixes ``new_conversation_id``."""
    req = routed(
        request(
            external_id,
            identity,
            source="twilio",
            channel="sms",
            thread=BUSINESS_NUMBER,
            sent_at=at,
        ),
        reopen_window_s=reopen_window_s,
    )
    if conversation_id is None:
        return req
    return msgspec.structs.replace(req, new_conversation_id=conversation_id)


async def resolve(store: Store, conversation_id: str, *, at: datetime) -> None:
    await update(
        store,
        conversation_id,
        state="resolved",
        resolved_at=at,
        item=ItemChange(withdraw=True),
        at=at,
    )


def placed(result: IngestResult) -> tuple[str, str, bool]:
    return (result.customer_id, result.conversation_id, result.new_customer)


# --- an open conversation on the thread ---------------------------------------------------


@pytest.mark.parametrize("window_s", [0.0, 3600.0])
async def test_an_open_conversation_wins_over_a_newer_resolved_one(
    store: Store, window_s: float
) -> None:
    maria = await ingest_one(store, texted("s1", MARIA, at=T0))
    jose = await ingest_one(store, texted("s2", JOSE, at=T0 + MINUTE))
    await resolve(store, jose.conversation_id, at=T0 + 2 * MINUTE)
    anonymous = texted("s3", ANONYMOUS, at=T0 + 3 * MINUTE, reopen_window_s=window_s)

    result = await ingest_as_contexts_said(store, anonymous)

    assert placed(result) == (maria.customer_id, maria.conversation_id, False)
    assert (result.reopened, result.previous_state) == (False, "open")
    still = await store.get_conversation(jose.conversation_id)
    assert still is not None
    assert (still.state, still.message_count) == ("resolved", 1)


async def test_of_several_open_conversations_the_newest(store: Store) -> None:
    # the ids run against the creation times: created_at decides before the id
    await ingest_one(store, texted("s1", MARIA, at=T0, conversation_id="cnv_z"))
    jose = await ingest_one(store, texted("s2", JOSE, at=T0 + MINUTE, conversation_id="cnv_a"))

    result = await ingest_as_contexts_said(store, texted("s3", ANONYMOUS, at=T0 + 2 * MINUTE))

    assert placed(result) == (jose.customer_id, "cnv_a", False)


async def test_open_conversations_created_together_go_to_the_greatest_id(store: Store) -> None:
    maria = await ingest_one(store, texted("s1", MARIA, at=T0, conversation_id="cnv_b"))
    await ingest_one(store, texted("s2", JOSE, at=T0, conversation_id="cnv_a"))

    result = await ingest_as_contexts_said(store, texted("s3", ANONYMOUS, at=T0 + MINUTE))

    assert placed(result) == (maria.customer_id, "cnv_b", False)


async def test_a_pending_conversation_is_open_on_its_thread(store: Store) -> None:
    maria = await ingest_one(store, texted("s1", MARIA, at=T0))
    await update(store, maria.conversation_id, state="pending")
    jose = await ingest_one(store, texted("s2", JOSE, at=T0 + MINUTE))
    await resolve(store, jose.conversation_id, at=T0 + 2 * MINUTE)

    result = await ingest_as_contexts_said(store, texted("s3", ANONYMOUS, at=T0 + 3 * MINUTE))

    assert placed(result) == (maria.customer_id, maria.conversation_id, False)
    assert result.previous_state == "pending"


# --- none open: the one resolved last -----------------------------------------------------


async def test_with_none_open_the_one_resolved_last_is_reopened(store: Store) -> None:
    maria = await ingest_one(store, texted("s1", MARIA, at=T0))
    jose = await ingest_one(store, texted("s2", JOSE, at=T0 + MINUTE))  # the newer one
    await resolve(store, jose.conversation_id, at=T0 + 10 * MINUTE)
    await resolve(store, maria.conversation_id, at=T0 + 20 * MINUTE)
    anonymous = texted("s3", ANONYMOUS, at=T0 + 30 * MINUTE, reopen_window_s=3600)

    result = await ingest_as_contexts_said(store, anonymous)

    assert placed(result) == (maria.customer_id, maria.conversation_id, False)
    assert (result.reopened, result.previous_state) == (True, "resolved")


async def test_the_one_resolved_last_out_of_the_window_makes_a_new_customer(
    store: Store,
) -> None:
    # Jose's auto-reply made a recorded-only conversation; Maria's resolved after it
    recorded = await ingest_one(store, noise(texted("s1", JOSE, at=T0)))
    maria = await ingest_one(store, texted("s2", MARIA, at=T0 + MINUTE))
    await resolve(store, maria.conversation_id, at=T0 + 10 * MINUTE)
    late = texted("s3", ANONYMOUS, at=T0 + 60 * MINUTE, reopen_window_s=600)

    result = await ingest_as_contexts_said(store, late)

    assert result.new_customer
    assert result.customer_id == late.new_customer_id
    assert result.conversation_id == late.new_conversation_id
    assert result.conversation_id not in (recorded.conversation_id, maria.conversation_id)


async def test_a_recorded_only_conversation_resolved_last_is_adopted(store: Store) -> None:
    maria = await ingest_one(store, texted("s1", MARIA, at=T0))
    await resolve(store, maria.conversation_id, at=T0 + 10 * MINUTE)
    recorded = await ingest_one(store, noise(texted("s2", JOSE, at=T0 + 20 * MINUTE)))
    late = texted("s3", ANONYMOUS, at=T0 + 60 * MINUTE, reopen_window_s=600)

    result = await ingest_as_contexts_said(store, late)

    assert placed(result) == (recorded.customer_id, recorded.conversation_id, False)
    assert result.conversation_created


async def test_routed_nowhere_takes_the_one_resolved_last_in_any_case(store: Store) -> None:
    maria = await ingest_one(store, texted("s1", MARIA, at=T0))
    jose = await ingest_one(store, texted("s2", JOSE, at=T0 + MINUTE))
    await resolve(store, jose.conversation_id, at=T0 + 10 * MINUTE)
    await resolve(store, maria.conversation_id, at=T0 + 20 * MINUTE)
    bounce = noise(texted("s3", ANONYMOUS, at=T0 + 600 * MINUTE), "bounce")

    result = await ingest_as_contexts_said(store, bounce)

    assert placed(result) == (maria.customer_id, maria.conversation_id, False)
    assert (result.routed, result.reopened, result.previous_state) == (False, False, "resolved")
