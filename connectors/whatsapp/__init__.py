"""WhatsApp Cloud API: Meta's ``whatsapp_business_account`` webhook."""

from connectors.whatsapp.connector import WhatsAppConnector

__all__ = ["WhatsAppConnector"]
