"""Twilio Programmable Messaging: inbound SMS, MMS and WhatsApp through Twilio."""

from connectors.twilio.connector import TwilioConnector

__all__ = ["TwilioConnector"]
