"""SendGrid's signed webhooks (an Inbound Parse security policy with signature
verification): ECDSA P-256 / SHA-256 over the ``X-Twilio-Email-Event-Webhook-Timestamp``
header's value followed by the raw body, base64 DER in
``X-Twilio-Email-Event-Webhook-Signature``; the policy's public key is base64 DER
(SubjectPublicKeyInfo), as SendGrid shows it.
https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/securing-your-parse-webhooks
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def load_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid gives it (base64 DER), or PEM; ``ValueError``
    when it is neither, or not an elliptic-curve key."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError(f"not a public key (base64 DER or PEM): {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve (ECDSA) public key")
    return key


def valid(key: ec.EllipticCurvePublicKey, timestamp: str, body: bytes, signature: str) -> bool:
    try:
        decoded = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(decoded, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
