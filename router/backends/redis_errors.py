"""The boundary every Redis backend shares: the client's "server not there" errors
become ``BackendUnavailable``, so the core never catches ``redis.*`` (one list, so the
store and presence agree on what an outage is)."""

from __future__ import annotations

from types import TracebackType
from typing import Final

from redis import exceptions as rexc

from router.errors import BackendUnavailable

UNAVAILABLE: Final = (
    rexc.ConnectionError,  # also BusyLoadingError, AuthenticationError
    rexc.TimeoutError,
    rexc.ReadOnlyError,
    rexc.OutOfMemoryError,
    rexc.MasterDownError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.NoPermissionError,  # an ACL that shuts the router out: nothing can be stored
    OSError,
)


class _Translated:
    """Turns the Redis client's "server not there" errors into ``BackendUnavailable``."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and isinstance(exc, UNAVAILABLE):
            raise BackendUnavailable(f"redis unavailable: {type(exc).__name__}") from exc


translated: Final = _Translated()
"""``with translated: ...`` around every Redis call (reusable: it holds no state)."""
