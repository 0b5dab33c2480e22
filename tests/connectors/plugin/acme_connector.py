"""A third-party connector, as a separate package would ship it: registered through the
``omniroute.connectors`` entry point group by ``test_registry.py`` (a dist-info written
to a temporary directory on ``sys.path``), never imported by omniroute itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from connectors.base import (
    ConnectorContext,
    Manifest,
    Parsed,
    Verified,
    WebhookOnly,
    WebhookRequest,
    require_equal,
)
from router.errors import InputError
from router.models import IdentityIn, InboundMessage, Sender
from router.settings import Secret


@dataclass(frozen=True)
class AcmeSettings:
    token: Secret
    source: str = "acme"


class AcmeConnector(WebhookOnly):
    manifest: ClassVar[Manifest] = Manifest(
        name="acme", channel="chat", title="Acme chat (test plugin)", settings=AcmeSettings
    )

    def __init__(self, settings: AcmeSettings, context: ConnectorContext) -> None:
        self.settings = settings

    def verify(self, request: WebhookRequest) -> Verified:
        require_equal(request.header("X-Acme-Token"), self.settings.token.get(), "X-Acme-Token")
        return Verified(nonce=request.header("X-Acme-Nonce"))

    async def parse(self, request: WebhookRequest) -> Parsed:
        try:
            body = json.loads(request.body)
            return Parsed(
                messages=[
                    InboundMessage(
                        channel="chat",
                        source=self.settings.source,
                        external_id=body["id"],
                        sender=Sender(
                            identities=[IdentityIn(kind="acme", value=body["user"], verified=True)]
                        ),
                        text=body["text"],
                    )
                ]
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"not an Acme event: {exc!r}") from None


def _user(user_id: str) -> IdentityIn:
    return IdentityIn(kind="acme", value=user_id, verified=True)
