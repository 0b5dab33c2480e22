"""SMTP: mail delivered straight to omniroute (an MX or a relay's transport), stored
before the 250."""

from connectors.smtp.connector import SmtpConnector
from connectors.smtp.settings import SmtpSettings

__all__ = ["SmtpConnector", "SmtpSettings"]
