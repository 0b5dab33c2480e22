"""X (Twitter) Account Activity API webhooks: direct messages and mentions."""

from connectors.twitter.connector import TwitterConnector

__all__ = ["TwitterConnector"]
