"""``[connectors.intercom]`` (or ``OMNIROUTE_CONNECTORS_INTERCOM_<KEY>``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from router.settings import Secret


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 (http.max_body_bytes) or more"


@dataclass(frozen=True)
class IntercomSettings:
    client_secret: Secret
    """The app's client secret (Developer Hub > Basic information): the key of
    ``X-Hub-Signature``."""
    max_body_bytes: int = 0
    """0: ``http.max_body_bytes``."""

    # Not annotated: ``router.settings.build_table`` reads every annotation as a key.
    checks = MappingProxyType({"max_body_bytes": _not_negative})
