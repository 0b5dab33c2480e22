"""What a connector costs: messages stored per second through each way in, against the
canonical ``POST /v1/messages`` on the same daemon in the same run.

    .venv/bin/python bench/webhooks.py                  # embedded daemon, ~1 minute
    .venv/bin/python bench/webhooks.py --backend production --duration 10

One ``omniroute serve`` process (embedded, or Redis + RabbitMQ under a fresh prefix that
is deleted at the end) with the whatsapp, twilio, telegram and email connectors on.
For each scenario, ``--connections`` clients post for ``--duration`` seconds after a
warm-up; every request is a new customer message, signed as the provider signs it.
A scenario's figure is messages stored per second (``accepted`` in the answers, so a
WhatsApp batch of 10 counts 10) and its ratio to the canonical JSON figure: the
connector's overhead (verification, parsing, the webhook route) is what the ratio shows,
on a noisy shared machine where absolute numbers move from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from servers import Server, cleanup_rabbitmq, cleanup_redis, free_port

from connectors.twilio.signature import compute

TOKEN = "bench-token"
APP_SECRET = "bench-meta-secret"
TWILIO_TOKEN = "bench-twilio-token"
TELEGRAM_SECRET = "bench-telegram-secret"
CONFIG = f"""
[connectors.whatsapp]
app_secret = "{APP_SECRET}"
verify_token = "bench"
[connectors.twilio]
auth_token = "{TWILIO_TOKEN}"
[connectors.telegram]
secret_token = "{TELEGRAM_SECRET}"
[connectors.email]
own_addresses = ["support@bench.example"]
"""

Request = tuple[str, bytes, dict[str, str], int]
"""(path, body, headers, messages it carries)"""


def _n() -> int:
    return secrets.randbelow(10**9)


def canonical() -> Request:
    body = {
        "channel": "chat",
        "source": "bench",
        "external_id": uuid.uuid4().hex,
        "sender": {"identities": [{"kind": "chat_visitor", "value": f"v{_n()}", "verified": True}]},
        "text": "My order arrived broken",
    }
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return "/v1/messages", json.dumps(body).encode(), headers, 1


def whatsapp(batch: int) -> Callable[[], Request]:
    def make() -> Request:
        messages, contacts = [], []
        for _ in range(batch):
            wa_id = f"346{_n() % 10**8:08d}"  # a Spanish mobile: 34 6xx xxx xxx
            contacts.append({"profile": {"name": "Bench Customer"}, "wa_id": wa_id})
            messages.append(
                {
                    "from": wa_id,
                    "id": f"wamid.{uuid.uuid4().hex}",
                    "timestamp": str(int(time.time())),
                    "type": "text",
                    "text": {"body": "Hola, mi pedido llegó roto"},
                }
            )
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1065"},
            "contacts": contacts,
            "messages": messages,
        }
        body = json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [{"id": "1022", "changes": [{"field": "messages", "value": value}]}],
            }
        ).encode()
        digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}
        return "/v1/connectors/whatsapp/webhook", body, headers, batch

    return make


def twilio(url: str) -> Callable[[], Request]:
    def make() -> Request:
        params = [
            ("MessageSid", f"SM{uuid.uuid4().hex}"),
            ("AccountSid", "AC0000"),
            ("From", f"+346{_n() % 10**8:08d}"),
            ("To", "+14155550199"),
            ("Body", "my order arrived broken"),
            ("NumMedia", "0"),
        ]
        body = "&".join(f"{k}={v}" for k, v in params).replace("+", "%2B").replace(" ", "+")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": compute(TWILIO_TOKEN, url, params),
        }
        return "/v1/connectors/twilio/webhook", body.encode(), headers, 1

    return make


def telegram() -> Request:
    user = _n()
    update = {
        "update_id": _n(),
        "message": {
            "message_id": _n(),
            "from": {"id": user, "is_bot": False, "first_name": "Bench"},
            "chat": {"id": user, "type": "private", "first_name": "Bench"},
            "date": int(time.time()),
            "text": "my order arrived broken",
        },
    }
    headers = {
        "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
        "Content-Type": "application/json",
    }
    return "/v1/connectors/telegram/webhook", json.dumps(update).encode(), headers, 1


def email() -> Request:
    raw = (
        f"From: Bench <c{_n()}@mail.example>\r\nTo: support@bench.example\r\n"
        f"Subject: Broken order\r\nMessage-ID: <{uuid.uuid4().hex}@mail.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nMy order arrived broken.\r\n"
        "\r\nOn Mon, Support wrote:\r\n> What happened?\r\n"
    ).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "message/rfc822"}
    return "/v1/connectors/email/raw", raw, headers, 1


@dataclass
class Tally:
    requests: int = 0
    messages: int = 0
    errors: int = 0


def _stored(status: int, answer: bytes, sent: int) -> int:
    """How many of the request's messages were stored, as the answer says (Twilio answers
    TwiML: all of them on a 200)."""
    if status not in (200, 202):
        return 0
    if not answer.startswith(b"{"):
        return sent
    decoded = json.loads(answer)
    return int(decoded.get("accepted", 0 if decoded.get("duplicate") else 1))


async def drive(
    base: str, make: Callable[[], Request], connections: int, warmup_s: float, duration_s: float
) -> float:
    """Messages stored per second in the measuring window."""
    tally = Tally()
    measuring = False
    stop = time.monotonic() + warmup_s + duration_s
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while time.monotonic() < stop:
                path, body, headers, count = make()
                async with session.post(base + path, data=body, headers=headers) as resp:
                    stored = _stored(resp.status, await resp.read(), count)
                if measuring:
                    tally.requests += 1
                    tally.messages += stored
                    tally.errors += 0 if stored == count else 1

        tasks = [asyncio.create_task(client()) for _ in range(connections)]
        await asyncio.sleep(warmup_s)  # the clients run; the window opens after the warm-up
        measuring = True
        started = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    if tally.errors:
        print(f"  {tally.errors} requests not (all) stored", file=sys.stderr)
    return tally.messages / elapsed


async def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--backend", choices=("embedded", "production"), default="embedded")
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    args = p.parse_args(argv)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    prefix = f"bench-connectors-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "omniroute.toml"
        config.write_text(CONFIG)
        env = {
            "OMNIROUTE_HTTP_PORT": str(port),
            "OMNIROUTE_API_TOKEN": TOKEN,
            "OMNIROUTE_DATA_DIR": str(workdir / "data"),
            "OMNIROUTE_HTTP_PUBLIC_URL": base,
            "OMNIROUTE_HTTP_MAX_BODY_BYTES": str(4 * 1024 * 1024),
            "OMNIROUTE_LOG_LEVEL": "warning",
            "PATH": "/usr/bin:/bin",
        }
        if args.backend == "production":
            env |= {
                "OMNIROUTE_REDIS_URL": args.redis_url,
                "OMNIROUTE_REDIS_PREFIX": prefix,
                "OMNIROUTE_AMQP_URL": args.amqp_url,
                "OMNIROUTE_AMQP_PREFIX": prefix,
            }
        argv_ = [sys.executable, "-m", "router", "serve", "--config", str(config)]
        server = Server(
            "omniroute", argv_, port=port, ready_path="/readyz", log_path=workdir / "log", env=env
        )
        await server.start()
        try:
            results = await _scenarios(base, args)
        finally:
            await server.stop()
            if args.backend == "production":
                await cleanup_redis(args.redis_url, prefix)
                queues = [f"{prefix}.{name}" for name in ("queue.default", "inbound", "dead")]
                await cleanup_rabbitmq(
                    args.amqp_url,
                    prefix,
                    queues=queues,
                    exchanges=[f"{prefix}.{name}" for name in ("events", "inbound", "dead")],
                )
    _print(results, args)
    return 0


async def _scenarios(base: str, args: argparse.Namespace) -> dict[str, float]:
    """Each scenario once, canonical JSON first and again last: the reference is the mean
    of the two, so a daemon warming up or a machine getting busier shows as their gap."""
    scenarios: dict[str, Callable[[], Request]] = {
        "whatsapp, 1 message per request": whatsapp(1),
        "whatsapp, batch of 10": whatsapp(10),
        "twilio SMS (form, HMAC-SHA1 over URL)": twilio(base + "/v1/connectors/twilio/webhook"),
        "telegram": telegram,
        "email raw (MIME, quote stripping)": email,
    }
    await drive(base, canonical, args.connections, args.warmup, args.warmup)  # warm the daemon
    results = {CANONICAL + " (first)": await _one(base, canonical, args)}
    for name, make in scenarios.items():
        results[name] = await _one(base, make, args)
        print(f"  {name}: {results[name]:,.0f} msgs/s", file=sys.stderr)
    results[CANONICAL + " (last)"] = await _one(base, canonical, args)
    return results


CANONICAL = "canonical JSON (POST /v1/messages)"


async def _one(base: str, make: Callable[[], Request], args: argparse.Namespace) -> float:
    return await drive(base, make, args.connections, args.warmup, args.duration)


def _print(results: dict[str, float], args: argparse.Namespace) -> None:
    first, last = results[CANONICAL + " (first)"], results[CANONICAL + " (last)"]
    reference = (first + last) / 2
    print(f"\nbackend {args.backend}, {args.connections} connections, {args.duration:.0f} s each")
    print(f"reference: canonical JSON, mean of {first:,.0f} (first) and {last:,.0f} (last)\n")
    print("| way in | msgs/s | vs canonical |\n|---|---:|---:|")
    for name, rate in results.items():
        print(f"| {name} | {rate:,.0f} | {rate / reference:.2f} |")
    print(json.dumps({"backend": args.backend, "msgs_per_s": results}), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
