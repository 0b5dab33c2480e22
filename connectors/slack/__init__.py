"""Slack Events API: messages a Slack app sees in its DMs and channels."""

from connectors.slack.connector import SlackConnector

__all__ = ["SlackConnector"]
