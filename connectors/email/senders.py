"""Who sent a mail: the From address (verified when authenticated, see
``connectors.email.auth``), our own addresses, and
the unverified addresses a mail also names (Reply-To, a bounce's lost recipient)."""

from __future__ import annotations

from collections.abc import Iterable

from connectors.email.fields import EmailFields
from connectors.email.headers import mailboxes
from connectors.email.threads import MAX_ID_CHARS
from router.errors import InvalidIdentity
from router.identity import normalize
from router.models import IdentityIn


def sender_of(fields: EmailFields) -> tuple[str | None, str] | None:
    """The From display name and its normalized address, None when there is no usable one."""
    found = mailboxes(fields.header_all("From"))
    address = normalized(found[0][1]) if found else None
    return None if address is None else ((found[0][0] or None), address)


def no_sender_reason(fields: EmailFields) -> str:
    if fields.header("From") is None:
        return "missing From header"
    return "From header has no usable address"


def normalized(address: str) -> str | None:
    """The address as the ``email`` identity spells it, None when it is not one."""
    try:
        return normalize(IdentityIn(kind="email", value=address[:MAX_ID_CHARS])).value
    except InvalidIdentity:
        return None


def is_own(address: str, own: Iterable[str]) -> bool:
    """``address`` is one of ``own`` or a plus-address of one."""
    return without_tag(address) in {o.strip().lower() for o in own}


def without_tag(address: str) -> str:
    """``support+con_1@acme.example`` -> ``support@acme.example``."""
    local, _, domain = address.rpartition("@")
    return f"{local.partition('+')[0]}@{domain}"


def unverified(candidates: Iterable[str | None], skip: Iterable[str]) -> list[IdentityIn]:
    """The first usable address of ``candidates`` that is not (a plus-address of) one in
    ``skip``, as an unverified email: a suggestion for an agent, never a merge."""
    skipped = tuple(skip)
    for candidate in candidates:
        address = normalized(candidate) if candidate else None
        if address is not None and not is_own(address, skipped):
            return [IdentityIn(kind="email", value=address, verified=False)]
    return []
