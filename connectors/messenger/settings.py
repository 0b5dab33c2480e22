"""``[connectors.messenger]`` (``OMNIROUTE_CONNECTORS_MESSENGER_*``)."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.meta import MetaSettings


@dataclass(frozen=True)
class MessengerSettings(MetaSettings):
    page_ids: tuple[str, ...] = ()
    """Facebook Page ids to take messages for; empty: every Page the app's webhook receives."""
