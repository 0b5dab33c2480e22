"""Mailgun inbound routes: mail a route forwards (or stores and notifies) to omniroute."""

from connectors.mailgun.connector import MailgunConnector

__all__ = ["MailgunConnector"]
