"""``[connectors.instagram]`` (``OMNIROUTE_CONNECTORS_INSTAGRAM_*``)."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.meta import MetaSettings


@dataclass(frozen=True)
class InstagramSettings(MetaSettings):
    account_ids: tuple[str, ...] = ()
    """Instagram professional account ids to take messages for; empty: every account the
    app's webhook receives."""
