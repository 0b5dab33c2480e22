"""SendGrid Inbound Parse: mail SendGrid received for a parse host, posted as a form."""

from connectors.sendgrid.connector import SendGridConnector

__all__ = ["SendGridConnector"]
