"""omniroute: omnichannel message routing daemon."""

__version__ = "0.1.0"
