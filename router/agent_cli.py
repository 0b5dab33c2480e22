"""``omniroute agent``: the reference agent tool, and the example to start your own from.

It subscribes to a queue, prints each work item as it arrives (queue, priority, due in,
customer, channel, text, the last history lines) and lets a person act with one key::

    export OMNIROUTE_API_TOKEN=$(cat data/api-token)
    omniroute agent --queue default --agent-id ana             # WebSocket, one at a time
    omniroute agent --queue default --agent-id ana --presence  # announce: lease, capacity
    omniroute agent --queue default --amqp amqp://guest:guest@127.0.0.1:5672/ --capacity 3
    omniroute agent --queue default --json | jq -r .message.text   # scripts: ack each

Keys: ``a`` accept, ``r`` reply, ``d`` resolve (done), ``t`` transfer, ``s`` snooze
(give the item back), ``n`` or Enter next (ack), ``q`` quit. On a terminal one key is
enough; from a pipe, one key per line. Everything it does goes through
``router.client``: read this file next to that package.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import termios
import tty
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

from router.client import Client, ClientError, Offer
from router.models import EventType
from router.presence import PresenceIn

KEYS = "[a]ccept [r]eply [d]one [t]ransfer [s]nooze [n]ext [q]uit > "
NO_OUTBOUND = (
    "recorded as replied; omniroute sends no replies yet: answer on the customer's channel"
)


def add_parser(sub: Any) -> None:
    """The ``agent`` subcommand on the CLI's subparsers."""
    p = sub.add_parser(
        "agent",
        help="work a queue by hand, or print it as JSON",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--queue", required=True, help="the queue to take items from")
    p.add_argument(
        "--url",
        default=os.environ.get("OMNIROUTE_URL", "http://127.0.0.1:8080"),
        help="the daemon (events go here with --amqp too; default $OMNIROUTE_URL or %(default)s)",
    )
    p.add_argument("--amqp", help="take items from RabbitMQ at this URL instead of a socket")
    p.add_argument("--amqp-prefix", default=os.environ.get("OMNIROUTE_AMQP_PREFIX", "omniroute"))
    p.add_argument("--token", default=os.environ.get("OMNIROUTE_API_TOKEN"), help="or env")
    p.add_argument("--capacity", type=int, default=1, help="items held at once (default 1)")
    p.add_argument("--agent-id", default=_default_agent_id(), help="who the events name")
    p.add_argument("--presence", action="store_true", help="announce and use the agent socket")
    p.add_argument("--json", action="store_true", help="print each item as a JSON line, ack it")
    p.add_argument("--limit", type=int, help="stop after this many items")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_main(args))
    except ClientError as exc:
        print(f"omniroute agent: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


async def _main(args: argparse.Namespace) -> None:
    async with Client(args.url, args.token) as api, contextlib.AsyncExitStack() as stack:
        offers = await _subscribe(args, api, stack)
        keys = None if args.json else Keys.stdin(stack)
        await work(
            offers, api, sys.stdout, agent_id=args.agent_id, keys=keys, limit=args.limit, now=_local
        )


async def _subscribe(
    args: argparse.Namespace, api: Client, stack: contextlib.AsyncExitStack
) -> AsyncIterator[Offer]:
    if args.amqp:
        from router.client.amqp import AmqpSubscriber

        rabbit = await stack.enter_async_context(AmqpSubscriber(args.amqp, args.amqp_prefix))
        return await stack.enter_async_context(rabbit.subscribe(args.queue, args.capacity))
    if args.presence:
        me = PresenceIn(
            status="available", queues=[args.queue], capacity={"default": args.capacity}
        )
        return await stack.enter_async_context(api.subscribe_agent(args.agent_id, me))
    return await stack.enter_async_context(api.subscribe(args.queue, args.capacity))


# --- the loop ------------------------------------------------------------------------


async def work(
    offers: AsyncIterator[Offer],
    api: Client,
    out: TextIO,
    *,
    agent_id: str,
    keys: Keys | None = None,
    limit: int | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Work offers until they end, ``limit`` is reached or the person quits; the count.
    Without ``keys`` (``--json``) each item is printed as one JSON line and acked."""
    done = 0
    async for offer in offers:
        if keys is None:
            print(msgspec.json.encode(offer.item).decode(), file=out, flush=True)
            await offer.ack()
        else:
            print(summary(offer, now()), file=out, flush=True)
            if not await act(offer, api, keys, out, agent_id):
                return done
        done += 1
        if limit is not None and done >= limit:
            break
    return done


async def act(offer: Offer, api: Client, keys: Keys, out: TextIO, agent_id: str) -> bool:
    """Let the person work one item until they settle it; False when they quit."""
    conversation = offer.item.conversation_id

    async def event(kind: EventType, queue: str | None = None) -> None:
        await api.event(conversation, kind, agent_id, queue)

    while True:
        key = await keys.key(KEYS, out)
        try:
            if key == "a":
                await event("accepted")
                say(out, "accepted")
            elif key == "r":
                await keys.line("reply> ", out)
                await event("replied")
                say(out, NO_OUTBOUND)
            elif key == "d":
                await event("resolved")
                await offer.ack()
                say(out, "resolved")
                return True
            elif key == "t":
                queue = await keys.line("transfer to queue> ", out)
                await event("transferred", queue)
                await offer.ack()
                say(out, f"transferred to {queue}")
                return True
            elif key == "s":
                await offer.nack(requeue=True)
                say(out, "snoozed: back in the queue")
                return True
            elif key in ("n", ""):
                await offer.ack()
                return True
            elif key == "q":
                await offer.nack(requeue=True)
                say(out, "bye: the item went back to the queue")
                return False
        except ClientError as exc:
            say(out, f"! {exc.message or exc.code}")


def say(out: TextIO, text: str) -> None:
    print(f"  {text}", file=out, flush=True)


# --- what a person sees --------------------------------------------------------------


def human(seconds: float) -> str:
    """The two largest units of a duration: ``4m12s``, ``3m``, ``1h5m``, ``2d3h``."""
    rest = int(abs(seconds))
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    first = next((i for i, (n, _) in enumerate(parts) if n), len(parts) - 1)
    return "".join(f"{n}{unit}" for n, unit in parts[first : first + 2] if n) or "0s"


def due_in(deadline: datetime, now: datetime) -> str:
    left_s = (deadline - now).total_seconds()
    return f"due in {human(left_s)}" if left_s >= 0 else f"overdue {human(left_s)}"


def one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def summary(offer: Offer, now: datetime, *, history: int = 3, width: int = 100) -> str:
    """The item as a few lines: what, how urgent, who, and what came before (in the
    time zone of ``now``)."""
    item, message = offer.item, offer.item.message
    who = item.customer.name or message.sender.name or "unknown customer"
    again = "  (redelivered)" if offer.redelivered else ""
    head = f"{item.queue}  P{item.priority}  {due_in(item.deadline, now)}  {who}  {item.channel}"
    text = f"{message.subject}: {message.text}" if message.subject else message.text
    lines = [f"── {head}{again}", f"  > {one_line(text, width - 4)}"]
    earlier = [h for h in item.history if h.message_id != message.message_id][:history]
    for h in reversed(earlier):
        when = h.sent_at.astimezone(now.tzinfo).strftime("%m-%d %H:%M")
        lines.append(f"    {when} {h.channel:<6} {one_line(h.text, width - 24)}")
    return "\n".join(lines)


# --- what a person types -------------------------------------------------------------


class Keys:
    """Single keys from a terminal (cbreak mode), else one key per line (a pipe, a test)."""

    def __init__(
        self, reader: asyncio.StreamReader, cooked: Callable[[], Any] | None = None
    ) -> None:
        self._reader = reader
        self._cooked = cooked
        """On a terminal: a context manager that turns line editing back on for a line."""

    async def key(self, prompt: str, out: TextIO) -> str:
        """One lower-case key, ``""`` for Enter, ``q`` at the end of input."""
        print(prompt, end="", file=out, flush=True)
        data = await (self._reader.read(1) if self._cooked else self._reader.readline())
        print(file=out)  # a single key or a piped line left the cursor after the prompt
        return data.decode(errors="replace").strip()[:1].lower() if data else "q"

    async def line(self, prompt: str, out: TextIO) -> str:
        with self._cooked() if self._cooked else contextlib.nullcontext():
            print(prompt, end="", file=out, flush=True)
            line = await self._reader.readline()
        if self._cooked is None:
            print(file=out)  # a pipe does not echo
        return line.decode(errors="replace").strip()

    @classmethod
    def stdin(cls, stack: contextlib.ExitStack | contextlib.AsyncExitStack) -> Keys:
        reader = _stdin_reader(stack)
        if not sys.stdin.isatty():
            return cls(reader)
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        stack.callback(termios.tcsetattr, fd, termios.TCSADRAIN, saved)
        return cls(reader, cooked=lambda: _terminal_mode(fd, saved))


@contextlib.contextmanager
def _terminal_mode(fd: int, mode: list[Any]) -> Iterator[None]:
    cbreak = termios.tcgetattr(fd)
    termios.tcsetattr(fd, termios.TCSADRAIN, mode)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, cbreak)


def _stdin_reader(stack: contextlib.ExitStack | contextlib.AsyncExitStack) -> asyncio.StreamReader:
    """Standard input as a stream, read when the loop sees it readable (blocking mode is
    left alone: the terminal's output shares it)."""
    loop, reader, fd = asyncio.get_running_loop(), asyncio.StreamReader(), sys.stdin.fileno()

    def readable() -> None:
        data = os.read(fd, 1024)
        if data:
            reader.feed_data(data)
        else:
            loop.remove_reader(fd)
            reader.feed_eof()

    try:
        loop.add_reader(fd, readable)
        stack.callback(loop.remove_reader, fd)
    except PermissionError:  # a regular file: it cannot be watched, and never blocks
        reader.feed_data(sys.stdin.buffer.read())
        reader.feed_eof()
    return reader


def _local() -> datetime:
    """Now, in this machine's time zone: a person reads local times."""
    return datetime.now().astimezone()


def _default_agent_id() -> str:
    name = os.environ.get("OMNIROUTE_AGENT_ID") or os.environ.get("USER") or "agent"
    return name if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}", name) else "agent"
