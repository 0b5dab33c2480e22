"""``X-Twilio-Signature``: base64(HMAC-SHA1(auth token, URL + each POST parameter, sorted
by name, as name + value)). https://www.twilio.com/docs/usage/webhooks/webhooks-security

Twilio's own validators accept the URL with and without the scheme's default port
(``https://host:443/...`` and ``https://host/...``), since proxies disagree on it; so
does ``candidate_urls``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def compute(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The signature Twilio sends for ``params`` posted to ``url``. Repeated names are
    signed once per distinct value, values sorted (as Twilio's SDKs do)."""
    data = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def candidate_urls(url: str) -> list[str]:
    """``url`` as given, then with the scheme's default port added or removed."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None or parts.hostname is None or port not in (None, default):
        return [url]
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host = hostport.removesuffix(f":{default}")
    netloc = userinfo + at + (host if port == default else f"{host}:{default}")
    return [url, urlunsplit(parts._replace(netloc=netloc))]


def valid(auth_token: str, url: str, params: list[tuple[str, str]], given: str) -> bool:
    """Constant-time check of ``given`` against every candidate URL."""
    matches = [
        hmac.compare_digest(given.encode(), compute(auth_token, candidate, params).encode())
        for candidate in candidate_urls(url)
    ]
    return any(matches)
