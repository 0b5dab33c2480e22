"""Whom the listener takes mail for: the configured domains and addresses, nothing else
(no open relay). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.smtp.settings import SmtpSettings


@dataclass(frozen=True)
class Recipients:
    domains: frozenset[str]
    addresses: frozenset[str]
    """Lower case, without a plus tag."""

    @classmethod
    def of(cls, settings: SmtpSettings) -> Recipients:
        addresses = (*settings.recipients, *settings.own_addresses)
        return cls(
            domains=frozenset(_domain(d) for d in settings.accept_domains),
            addresses=frozenset(a for a in map(_base, addresses) if a is not None),
        )

    def __bool__(self) -> bool:
        return bool(self.domains or self.addresses)

    def accepts(self, address: str) -> bool:
        """``support+con_1@Acme.Example`` is accepted when ``acme.example`` is a domain
        or ``support@acme.example`` an address."""
        base = _base(address)
        if base is None:
            return False
        return base.rpartition("@")[2] in self.domains or base in self.addresses


def _domain(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _base(address: str) -> str | None:
    """``Local+Tag@Domain.`` -> ``local@domain``; None when it is not ``local@domain``."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    local = local.split("+", 1)[0]
    if not at or not local or not _domain(domain):
        return None
    return f"{local.lower()}@{_domain(domain)}"
