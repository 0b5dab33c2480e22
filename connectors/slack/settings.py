"""``[connectors.slack]``: the app's signing secret."""

from __future__ import annotations

from dataclasses import dataclass

from router.settings import Secret


@dataclass(frozen=True)
class SlackSettings:
    signing_secret: Secret
    """The app's Signing Secret (Basic Information → App Credentials)."""
