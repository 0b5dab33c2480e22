"""Checks of single connector settings: each takes a key's value (already of its type)
and returns what is wrong with it, or None. A settings class names them in its
``checks`` mapping; ``router.settings.build_table`` runs them and reports every problem
under the key's name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], str | None]


def not_empty(value: Any) -> str | None:
    return None if value else "must not be empty"


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be above 0"


def not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def body_limit(value: Any) -> str | None:
    """A connector's own ``max_body_bytes``: 0 leaves the daemon's limit."""
    return None if value >= 0 else "must be 0 (http.max_body_bytes) or more"


def tcp_port(value: Any) -> str | None:
    return None if 1 <= value <= 65535 else "must be a TCP port, 1 to 65535"


def addresses(value: Any) -> str | None:
    """Every item looks like ``local@domain`` (no more is checked)."""
    bad = [a for a in value if a.count("@") != 1 or a.startswith("@") or a.endswith("@")]
    return f"not addresses (local@domain): {', '.join(map(repr, bad))}" if bad else None
