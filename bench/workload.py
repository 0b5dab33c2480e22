"""The synthetic traffic: canonical messages from a population of customers.

Every message has a unique ``external_id``. Customers (5,000 by default) write mostly
through their home channel (chat 50 %, email 30 %, SMS 20 %) and sometimes through
another one; a message continues the customer's current thread on that channel 75 % of
the time and opens a new thread otherwise, so the router finds existing customers,
conversations and histories most of the time and creates new ones some of the time.
Chat senders sometimes type their email address (an unverified identifier: a suggested
link); phone numbers come with spaces so normalization does real work.

Bodies are built from per-customer byte fragments prepared once, so building one costs a
few microseconds; ``attributes`` carries ``bench_t`` (the scheduled send time on the
system-wide monotonic clock, ``time.monotonic()``) and ``bench_p`` (the phase tag), which
the consumers read back from the work item.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

PHASE_WARMUP = b"w"
PHASE_MEASURE = b"m"
PHASE_SATURATION = b"s"

CHANNELS = ("chat", "email", "sms")
HOME_WEIGHTS = (0.5, 0.3, 0.2)
OTHER_CHANNEL_P = 0.15
NEW_THREAD_P = 0.25
TYPED_EMAIL_P = 0.1

TEXTS = (
    "My order arrived broken",
    "Where is my parcel? It was due yesterday.",
    "I would like to change the delivery address of my order",
    "Can I get a refund for the last invoice?",
    "The app logs me out every few minutes",
    "Thanks, that solved it!",
    "Still waiting for an answer on this one",
    "How do I cancel my subscription?",
)
SUBJECTS = ("Order problem", "Refund request", "Delivery", "Account access")
SOURCES = {"chat": "bench-webchat", "email": "bench-mail", "sms": "bench-sms"}


class Customer:
    __slots__ = ("home", "index", "senders", "threads")

    def __init__(self, index: int, home: str, senders: dict[str, bytes]) -> None:
        self.index = index
        self.home = home
        self.senders = senders
        self.threads = dict.fromkeys(CHANNELS, 0)


def _sender(index: int, channel: str, rng: random.Random) -> bytes:
    email = f"Customer.{index}@Bench-Example.com"
    phone = f"+34 6{index // 10000 % 100:02d} {index % 10000:04d} {index % 97:02d}"
    if channel == "chat":
        identities = [{"kind": "chat_visitor", "value": f"v-{index}", "verified": True}]
        if rng.random() < TYPED_EMAIL_P:
            identities.append({"kind": "email", "value": email, "verified": False})
    elif channel == "email":
        identities = [{"kind": "email", "value": email, "verified": True}]
    else:
        identities = [{"kind": "sms", "value": phone, "verified": True}]
    sender = {"name": f"Customer {index}", "identities": identities}
    return json.dumps(sender, separators=(",", ":")).encode()


class Workload:
    """Builds unique canonical message bodies; one instance per load generator."""

    def __init__(self, *, run: str, customers: int, seed: int) -> None:
        self.run = run.encode()
        self._rng = random.Random(seed)
        rng = random.Random(f"{run}-population")  # the same population in every phase
        self._customers = [
            Customer(
                i,
                rng.choices(CHANNELS, HOME_WEIGHTS)[0],
                {c: _sender(i, c, rng) for c in CHANNELS},
            )
            for i in range(customers)
        ]
        self._sent_at = b""
        self._sent_at_second = -1

    def _now_iso(self) -> bytes:
        now = datetime.now(UTC)
        if now.second != self._sent_at_second:
            self._sent_at_second = now.second
            self._sent_at = now.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        return self._sent_at

    def body(self, external_id: bytes, phase: bytes, scheduled: float) -> bytes:
        rng = self._rng
        customer = self._customers[rng.randrange(len(self._customers))]
        channel = customer.home
        if rng.random() < OTHER_CHANNEL_P:
            channel = CHANNELS[rng.randrange(3)]
        if rng.random() < NEW_THREAD_P:
            customer.threads[channel] += 1
        text = TEXTS[rng.randrange(len(TEXTS))]
        head = b'{"channel":"%s","source":"%s","external_id":"%s","sender":%s' % (
            channel.encode(),
            SOURCES[channel].encode(),
            external_id,
            customer.senders[channel],
        )
        if channel == "sms":
            middle = b""  # SMS has no threads: one open conversation per customer and source
        else:
            middle = b',"thread":"%s-%d-%d"' % (
                channel.encode(),
                customer.index,
                customer.threads[channel],
            )
            if channel == "email":
                middle += b',"subject":"%s"' % SUBJECTS[customer.index % len(SUBJECTS)].encode()
        tail = (
            b',"text":"%s","sent_at":"%s","attributes":{"bench_t":%.6f,"bench_p":"%s",'
            b'"order_id":"A-%d"}}'
            % (text.encode(), self._now_iso(), scheduled, phase, customer.index)
        )
        return head + middle + tail


class RequestBuilder:
    """Whole HTTP/1.1 ``POST`` requests (keep-alive) around ``Workload`` bodies."""

    def __init__(self, workload: Workload, *, host: str, port: int, path: str, token: str) -> None:
        self._workload = workload
        self._run = workload.run
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            "Content-Length: "
        ).encode()

    def request(self, seq: int, phase: bytes, scheduled: float) -> bytes:
        external_id = b"%s-%s-%d" % (self._run, phase, seq)
        body = self._workload.body(external_id, phase, scheduled)
        return b"%s%d\r\n\r\n%s" % (self._head, len(body), body)


def write_templates(path: Path, *, run: str, customers: int, seed: int, count: int) -> None:
    """Bodies for wrk (``wrk_post.lua``): one per line, split by a tab where the
    external id goes; the script appends a per-thread counter to make each unique."""
    workload = Workload(run=run, customers=customers, seed=seed)
    with path.open("wb") as out:
        for _ in range(count):
            head, tail = workload.body(b"\t", PHASE_SATURATION, 0.0).split(b"\t")
            out.write(b"%s\t%s\n" % (head, tail))
