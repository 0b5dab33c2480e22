"""IMAP: a mailbox omniroute reads (IDLE where the server has it), marking each message
read only once it is stored."""

from connectors.imap.connector import ImapConnector
from connectors.imap.settings import ImapSettings

__all__ = ["ImapConnector", "ImapSettings"]
