"""``[connectors.slack]``: the app's signing secret, and whose messages to leave out."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from router.settings import Secret


def _users(value: Any) -> str | None:
    bad = [item for item in value if not _is_member(item)]
    if bad:
        return f"not <team id>:<user id> or <team id>:*: {', '.join(map(repr, bad))}"
    return None


def _is_member(item: str) -> bool:
    team, colon, user = item.partition(":")
    return bool(colon and team and user) and ":" not in user and item == item.strip()


@dataclass(frozen=True)
class SlackSettings:
    signing_secret: Secret
    """The app's Signing Secret (Basic Information → App Credentials)."""
    ignore_users: tuple[str, ...] = ()
    """Your own staff: ``<team id>:<user id>`` (``T0123ABCD:U0456EFGH``, as their
    ``slack`` identity reads), or ``<team id>:*`` for everyone in a workspace (your own,
    when customers reach you over Slack Connect). Their messages and edits are
    acknowledged and ignored: a colleague answering in a customer's thread is not a
    customer."""

    # Not annotated: ``router.settings.build_table`` reads every annotation as a key.
    checks = MappingProxyType({"ignore_users": _users})
