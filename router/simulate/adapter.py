"""The one place the simulator meets the real routing code: the policy that decides
(rules, SLA clocks, urgency score with the aging bound) and the lifecycle that moves
clocks and fires escalations. The engine sees only ``SimRouter``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import msgspec

from router import lifecycle
from router.lifecycle import AgentEvent
from router.models import (
    Conversation,
    ConversationUpdate,
    Decision,
    NormalizedMessage,
    RoutingContext,
    Timer,
)
from router.policy import RoutingPolicy, load_policy
from router.settings import Settings, load


class SimRouter(Protocol):
    max_wait_s: tuple[float, ...]
    """The aging bound per priority 1..5 (``routing.max_wait_s``)."""
    default_region: str | None

    def decide(
        self,
        message: NormalizedMessage,
        context: RoutingContext,
        *,
        conversation_id: str,
        item_id: str,
        now: datetime,
    ) -> Decision: ...

    def on_timer(
        self, conv: Conversation, timer: Timer, now: datetime
    ) -> ConversationUpdate | None:
        """The lifecycle's answer to a due timer (escalation, overflow)."""
        ...

    def on_agent(
        self, conv: Conversation, event: str, agent_id: str, now: datetime
    ) -> ConversationUpdate | None:
        """The lifecycle's answer to an agent event (``replied``, ``resolved``)."""
        ...


@dataclass
class RealRouter:
    """``router.policy`` and ``router.lifecycle`` over one configuration."""

    policy: RoutingPolicy
    max_wait_s: tuple[float, ...]
    default_region: str | None

    def decide(
        self,
        message: NormalizedMessage,
        context: RoutingContext,
        *,
        conversation_id: str,
        item_id: str,
        now: datetime,
    ) -> Decision:
        del now  # the policy reads the time from message.received_at
        return self.policy.decide(
            message, context, conversation_id=conversation_id, item_id=item_id
        )

    def on_timer(
        self, conv: Conversation, timer: Timer, now: datetime
    ) -> ConversationUpdate | None:
        return lifecycle.on_timer(conv, timer, self.policy.lifecycle, now).update

    def on_agent(
        self, conv: Conversation, event: str, agent_id: str, now: datetime
    ) -> ConversationUpdate | None:
        agent_event = msgspec.convert({"type": event, "agent_id": agent_id}, AgentEvent)
        new_item_id = f"{conv.conversation_id}-next"
        return lifecycle.on_event(
            conv, agent_event, self.policy.lifecycle, now, new_item_id=new_item_id
        ).update


def load_router(path: Path) -> SimRouter:
    """The real policy of an omniroute configuration file (``ConfigError`` if invalid).
    The environment is ignored: a simulation depends on its files only."""
    return router_for(load(path, env={}))


def router_for(settings: Settings) -> SimRouter:
    return RealRouter(
        policy=load_policy(settings),
        max_wait_s=settings.routing.max_wait_s,
        default_region=settings.identity.default_region or None,
    )
