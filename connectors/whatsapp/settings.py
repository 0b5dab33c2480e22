"""``[connectors.whatsapp]`` (``OMNIROUTE_CONNECTORS_WHATSAPP_*``)."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.meta import MetaSettings


@dataclass(frozen=True)
class WhatsAppSettings(MetaSettings):
    phone_number_ids: tuple[str, ...] = ()
    """Business phone number ids to take messages for; empty: every number the app's
    webhook receives."""
