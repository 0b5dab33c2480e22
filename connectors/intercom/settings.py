"""``[connectors.intercom]`` (or ``OMNIROUTE_CONNECTORS_INTERCOM_<KEY>``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from connectors.checks import body_limit
from router.settings import Secret


@dataclass(frozen=True)
class IntercomSettings:
    client_secret: Secret
    """The app's client secret (Developer Hub > Basic information): the key of
    ``X-Hub-Signature``."""
    max_body_bytes: int = 0
    """0: ``http.max_body_bytes``."""

    # Not annotated: ``router.settings.build_table`` reads every annotation as a key.
    checks = MappingProxyType({"max_body_bytes": body_limit})
