"""Email: the core every email way in shares, and the ``email`` connector (the raw
endpoint ``POST /v1/connectors/email/raw``).

- ``parse_email(raw, options=, received_at=, via=)``: raw RFC 5322 bytes -> ``Parsed``
  (SMTP, IMAP, the raw endpoint, a provider's raw-MIME post);
- ``email_message(fields, options=, received_at=, via=)``: an email a provider already
  split (``EmailFields``) -> ``Parsed`` (Postmark, Mailgun, SendGrid parsed posts);
- the pieces they use: ``split_headers``, ``html_to_text``, ``strip_reply``.
"""

from connectors.email.connector import EmailConnector
from connectors.email.fields import EmailAttachment, EmailFields, EmailOptions
from connectors.email.headers import split_headers
from connectors.email.html_text import html_to_text
from connectors.email.message import email_message
from connectors.email.mime import parse_email
from connectors.email.quotes import strip_reply
from connectors.email.settings import EmailSettings

__all__ = [
    "EmailAttachment",
    "EmailConnector",
    "EmailFields",
    "EmailOptions",
    "EmailSettings",
    "email_message",
    "html_to_text",
    "parse_email",
    "split_headers",
    "strip_reply",
]
