"""``[connectors.twitter]``: the app's consumer secret and what to take in."""

from __future__ import annotations

from dataclasses import dataclass

from router.settings import Secret


@dataclass(frozen=True)
class TwitterSettings:
    consumer_secret: Secret
    """The app's API Key Secret (consumer secret): it answers the CRC check and signs
    every delivery."""
    mentions: bool = True
    """Take public posts that mention or reply to the account as messages too
    (``visibility: public``); False: direct messages only."""
