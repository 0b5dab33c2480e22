"""One error tree for the whole daemon.

Everything the core raises on purpose is an ``OmnirouteError``; the HTTP middleware
turns it into ``{"error": {"code", "message"}}`` with the class's status. Backends
translate their libraries' exceptions into these at the boundary, so the core never
catches ``redis.*`` or ``aiormq.*``::

    OmnirouteError
    ├── ConfigError                 invalid settings (start-up refused, every problem listed)
    ├── InputError            400   bad request body or parameter
    │   ├── InvalidMessage    422   a message that does not fit the canonical model
    │   ├── InvalidIdentity   422   an identifier that does not parse (email, phone, kind)
    │   └── InvalidAgentId    422   an agent id outside ``router.queue_spec.valid_agent_id``
    ├── Unauthorized          401   missing, wrong or expired token, bad webhook signature
    ├── Forbidden             403   a valid agent token used outside what an agent tool needs
    ├── NotFound              404   unknown customer, conversation, queue
    ├── Conflict              409   a state change that is impossible now (merge into self ...)
    ├── PayloadTooLarge       413   body over the configured limit
    ├── RateLimited           429   a public client (a web chat visitor) asking too often
    └── BackendUnavailable    503   Redis, RabbitMQ or SQLite not reachable: nothing was stored
"""

from __future__ import annotations

from typing import ClassVar


class OmnirouteError(Exception):
    """Base of every error the daemon raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(OmnirouteError):
    """The configuration is invalid; ``problems`` lists every bad key."""

    code = "invalid_config"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class InputError(OmnirouteError):
    status = 400
    code = "bad_request"


class InvalidMessage(InputError):
    status = 422
    code = "invalid_message"


class InvalidIdentity(InputError):
    status = 422
    code = "invalid_identity"


class InvalidAgentId(InputError):
    status = 422
    code = "invalid_agent_id"


class Unauthorized(OmnirouteError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, challenge: str | None = None) -> None:
        super().__init__(message)
        self.challenge = challenge
        """The ``WWW-Authenticate`` value asking for credentials (HTTP basic auth)."""


class Forbidden(OmnirouteError):
    status = 403
    code = "forbidden"


class NotFound(OmnirouteError):
    status = 404
    code = "not_found"


class Conflict(OmnirouteError):
    status = 409
    code = "conflict"


class PayloadTooLarge(OmnirouteError):
    status = 413
    code = "payload_too_large"


class RateLimited(OmnirouteError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BackendUnavailable(OmnirouteError):
    status = 503
    code = "backend_unavailable"
