"""The Mailgun connector: ``POST /v1/connectors/mailgun/webhook`` as a route's
``forward()`` URL (``...webhook?format=mime`` for the raw MIME variant) or its
``store(notify=...)`` URL."""

from __future__ import annotations

import asyncio
import hashlib
from typing import ClassVar

import structlog

from connectors.base import (
    ConnectorContext,
    Manifest,
    Parsed,
    Verified,
    WebhookOnly,
    WebhookRequest,
)
from connectors.email.trust import announce
from connectors.email_hooks import check_fresh
from connectors.forms import Form, media_type, parse_form
from connectors.mailgun import signature
from connectors.mailgun.parse import event_name, parse
from connectors.mailgun.settings import MailgunSettings
from router.errors import InputError, Unauthorized

log = structlog.get_logger("connectors.mailgun")

STAMP = "Mailgun timestamp"


class MailgunConnector(WebhookOnly):
    manifest: ClassVar[Manifest] = Manifest(
        name="mailgun",
        channel="email",
        title="Mailgun (inbound routes: forward or store and notify)",
        settings=MailgunSettings,
        docs="https://documentation.mailgun.com/docs/mailgun/user-manual/receive-forward-store/receive-http",
    )

    def __init__(self, settings: MailgunSettings, context: ConnectorContext) -> None:
        if not settings.signing_key and not settings.parent_signing_key:
            raise ValueError("set signing_key (or parent_signing_key for a subaccount)")
        self.settings = settings
        self.options = settings.options
        announce(self.manifest.name, self.options, provider_verdicts=True)

    def verify(self, request: WebhookRequest) -> Verified:
        """The signature over ``timestamp`` + ``token``, a fresh ``timestamp``, and the
        ``token`` as the nonce: the daemon refuses it when seen with another mail. The
        fingerprint is what the mail is (its Message-Id and fields), not the multipart
        framing, so a retry Mailgun encodes afresh is the same request."""
        if _is_json(request):
            signed, fingerprint = signature.from_json(request.body), None
        else:
            form = _signed_form(request)
            signed, fingerprint = signature.from_form(form), _fingerprint(form)
        if not signed.timestamp or not signed.token:
            raise Unauthorized("missing Mailgun signature fields (timestamp, token, signature)")
        if not signed.signature and not signed.parent_signature:
            raise Unauthorized("missing Mailgun signature")
        settings = self.settings
        if not signature.valid(
            signed, settings.signing_key.get(), settings.parent_signing_key.get()
        ):
            raise Unauthorized("invalid Mailgun signature")
        try:
            check_fresh(signed.timestamp, request.received_at, settings.max_age_s, STAMP)
        except Unauthorized as exc:  # signed by Mailgun, so worth an operator's look
            log.warning("mailgun.stale_refused", reason=exc.message)
            raise
        return Verified(
            nonce=signed.token, nonce_ttl_s=2.0 * settings.max_age_s, fingerprint=fingerprint
        )

    async def parse(self, request: WebhookRequest) -> Parsed:
        """The form and the mail in it, parsed in a worker thread: a large mail must not
        hold up the event loop."""
        if _is_json(request):
            return Parsed(ignored=[f"event:{event_name(request.body)}"])
        parsed = await asyncio.to_thread(self._parse, request)
        log.debug("mailgun.parsed", messages=len(parsed.messages))
        return parsed

    def _parse(self, request: WebhookRequest) -> Parsed:
        return parse(_form(request), self.options, request.received_at)


def _is_json(request: WebhookRequest) -> bool:
    return media_type(request.header("Content-Type")) == signature.JSON


def _form(request: WebhookRequest) -> Form:
    return parse_form(request.body, request.header("Content-Type"))


def _signed_form(request: WebhookRequest) -> Form:
    try:
        return _form(request)
    except InputError as exc:
        raise Unauthorized(f"no Mailgun signature: {exc.message}") from None


def _fingerprint(form: Form) -> str:
    """SHA-256 of the ``Message-Id`` field and every field (name, file name, value),
    sorted: the same for the same mail however the form is framed."""
    digest = hashlib.sha256(_utf8(form.text("Message-Id") or ""))
    parts = sorted((p.name, p.filename or "", p.value) for p in form.parts)
    for name, filename, value in parts:
        for item in (_utf8(name), _utf8(filename), value):
            digest.update(len(item).to_bytes(8, "big") + item)
    return "mailgun:" + digest.hexdigest()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")
