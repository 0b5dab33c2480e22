"""Connectors: one folder per provider (see connectors/README.md)."""
