"""The OpenAPI paths of the connectors: provider webhooks, the raw email endpoint, the
web chat, and what connectors leave for operators (quarantine, delivery reports,
attachment contents). Merged into ``router.http.openapi.document``."""

from __future__ import annotations

from typing import Any

from connectors.base import Accepted
from router.ledger import DeliveryReport, QuarantineEntry, QuarantinePage

STRUCTS = (Accepted, DeliveryReport, QuarantineEntry, QuarantinePage)

_REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    error = _json(_ref("Error"), 'Error: {"error": {"code", "message"}}')
    return {str(s): error for s in statuses}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_PUBLIC: list[dict[str, list[str]]] = []
"""No bearer token: the request proves itself (a provider signature, a visitor token)."""

_WEBHOOK_DOC = (
    "The provider's webhook. The raw body is verified first (HMAC signature, secret token "
    "or basic auth, per connector; constant-time; stale timestamps and reused nonces "
    "refused): 401 and nothing stored when it fails. Then the payload is parsed and every "
    "message, edit and delivery report in it is stored before the 2xx. Provider "
    "re-deliveries are duplicates (deduplicated on the provider's message id); unknown "
    "event types are acknowledged and ignored. Some providers get their own answer "
    "(Twilio: empty TwiML; Slack url_verification: the challenge)."
)


def paths() -> dict[str, Any]:
    accepted = _json(_ref("Accepted"), "Stored (counts of accepted, duplicate, recorded ...)")
    quarantine_id = _path("quarantine_id")
    return {
        "/v1/connectors/{name}/webhook": {
            "get": {
                "summary": "The provider's verification handshake (Meta hub.challenge, X CRC)",
                "security": _PUBLIC,
                "parameters": [_path("name")],
                "responses": {"200": {"description": "the answer the provider expects"}}
                | _errors(401, 404),
            },
            "post": {
                "summary": "A provider webhook delivery",
                "description": _WEBHOOK_DOC,
                "security": _PUBLIC,
                "parameters": [_path("name")],
                "requestBody": {
                    "required": True,
                    "content": {"*/*": {"schema": {"description": "the provider's format"}}},
                },
                "responses": {"200": accepted} | _errors(400, 401, 404, 413, 503),
            },
        },
        "/v1/connectors": {
            "get": {
                "summary": "The configured connectors and their webhook URLs",
                "responses": {"200": {"description": "connectors"}} | _errors(401),
            }
        },
        "/v1/connectors/email/raw": {
            "post": {
                "summary": "One email as received (message/rfc822): a mail server's pipe",
                "requestBody": {
                    "required": True,
                    "content": {"message/rfc822": {"schema": {"type": "string"}}},
                },
                "responses": {
                    "202": accepted,
                    "200": _json(_ref("Accepted"), "a duplicate of a stored email"),
                }
                | _errors(401, 404, 413, 503),
            }
        },
        "/v1/chat/sessions": {
            "post": {
                "summary": "Start or resume a web chat visitor session (public)",
                "description": "Body optional: {name, email, visitor_token}. A visitor_token "
                "resumes the same visitor (and so the same conversation). The answer: "
                "visitor_id, token (signed, expiring), expires_at, ws_url. The Origin must "
                "be one of the webchat connector's allowed_origins when configured.",
                "security": _PUBLIC,
                "responses": {"200": {"description": "the session"}}
                | _errors(400, 401, 403, 404, 429),
            }
        },
        "/v1/chat/ws": {
            "get": {
                "summary": "The visitor's WebSocket (?token=): messages in, agent replies out",
                "description": 'Frames in: {"type": "message", "id", "text", "attachments"?}, '
                '{"type": "identify", "name", "email"} (the email is an unverified '
                'identity). Frames out: {"type": "ack", "id", "message_id", '
                '"conversation_id"} once stored, {"type": "reply", "text", "agent_id", '
                '"at", "conversation_id"}, {"type": "error", "code", "message"}. An invalid '
                "or expired token closes the socket with code 4401.",
                "security": _PUBLIC,
                "parameters": [
                    {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"101": {"description": "switching protocols"}} | _errors(404),
            }
        },
        "/v1/conversations/{id}/replies": {
            "post": {
                "summary": "An agent's reply: delivered to a web chat visitor, clocks moved",
                "description": "Body {agent_id, text}. Delivered to the visitor's open sockets "
                "on every router process (chat.reply on omniroute.events) and applied as a "
                "replied event. Outbound through the other channels is not supported yet: "
                "409 outbound_unsupported names the channel.",
                "parameters": [_path("id")],
                "responses": {"200": {"description": "{reply, conversation}"}}
                | _errors(400, 401, 403, 404, 409),
            }
        },
        "/v1/quarantine": {
            "get": {
                "summary": "Inbound messages no parser could read, newest first",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "before", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": _json(_ref("QuarantinePage"), "page")} | _errors(400, 401),
            }
        },
        "/v1/quarantine/{quarantine_id}": {
            "get": {
                "summary": "One quarantined message",
                "parameters": [quarantine_id],
                "responses": {"200": _json(_ref("QuarantineEntry"), "entry")} | _errors(401, 404),
            },
            "delete": {
                "summary": "Forget a quarantined message (an operator dealt with it)",
                "parameters": [quarantine_id],
                "responses": {"204": {"description": "forgotten"}} | _errors(401, 404),
            },
        },
        "/v1/quarantine/{quarantine_id}/raw": {
            "get": {
                "summary": "The quarantined message as it was received",
                "parameters": [quarantine_id],
                "responses": {"200": {"description": "the raw bytes"}} | _errors(401, 404),
            }
        },
        "/v1/deliveries/{source}/{external_id}": {
            "get": {
                "summary": "What the provider reported on a message it carried (sent, read ...)",
                "parameters": [_path("source"), _path("external_id")],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "deliveries": {"type": "array", "items": _ref("DeliveryReport")}
                            },
                        },
                        "reports, oldest first",
                    )
                }
                | _errors(401),
            }
        },
        "/v1/attachments/{blob}": {
            "get": {
                "summary": "An attachment's content, by its SHA-256 (Attachment.blob)",
                "parameters": [_path("blob")],
                "responses": {"200": {"description": "the content"}} | _errors(400, 401, 404),
            }
        },
    }
