"""``[connectors.telegram]``: the secret token given to ``setWebhook``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from router.settings import Secret

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _token(value: Any) -> str | None:
    """Telegram accepts 1-256 characters of ``A-Z a-z 0-9 _ -`` as a secret token."""
    if isinstance(value, Secret) and _TOKEN.match(value.get()):
        return None
    return "must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's secret_token)"


@dataclass(frozen=True)
class TelegramSettings:
    secret_token: Secret
    """The ``secret_token`` passed to ``setWebhook``; Telegram sends it back in
    ``X-Telegram-Bot-Api-Secret-Token`` on every update."""

    checks = MappingProxyType({"secret_token": _token})
