"""``RedisStore``: the production ``Store`` on Redis (``redis.asyncio``), shared by any
number of router processes.

Every multi-step state change is one Lua script (``router/backends/lua``: ``common.lua``
is prepended to each), so two processes never both claim an item or half-apply a merge.
Scripts run by ``EVALSHA`` on a locally computed SHA and are reloaded on ``NOSCRIPT``.
A batch of messages is one round trip and one script run per 200 messages (larger
batches pipeline several runs, non-transactionally): each message is atomic, and so is
each run. One run per chunk rather than one ``EVALSHA`` per message saves the client a
reply parse per message, which is most of its cost. Durability is the server's
persistence setting (``appendonly yes`` with ``appendfsync everysec`` or ``always``).
The scripts' arguments and replies are encoded and decoded in ``redis_codec``; outages
become ``BackendUnavailable`` through ``redis_errors`` (shared with ``RedisPresence``).

Key schema (``P`` is the deployment prefix, ``omniroute`` by default). Every key starts
with the hash tag ``{P}``, so a deployment lives in one Redis Cluster slot: a merge
moves several customers' keys atomically, which only one slot allows, and a deployment
scales out by running more routers, not by spreading one deployment over slots. Scripts
get ``{P}:`` as ``KEYS[1]`` and derive their keys from it. Times are integer
microseconds since the epoch (exact in a Lua double until 2255); ids are the callers'
and must not contain NUL::

    {P}:dedupe              hash  "<source>\\0<external_id>" -> "<message_id>\\0<conversation_id>"
    {P}:ident               hash  verified identity key "kind:value" -> live owner id
    {P}:tlive:<tkey>        zset  the open or pending conversations on thread key <tkey>
                                  ("<source>\\0<thread>") -> created µs
    {P}:tdone:<tkey>        zset  the resolved ones -> resolved µs (0 without): the thread's
                                  conversation, which gives a message without verified ids
                                  its customer, is tlive's last member, else tdone's
                                  (equal scores: the greatest id)
    {P}:thread              hash  "<source>\\0<thread>" -> the newest conversation on that
                                  thread, as stored before tlive and tdone (no longer
                                  written): read for a thread key in neither
    {P}:served              hash  customer id -> "<at µs>\\0<agent>", its newest served_by
                                  (a merge keeps the newer of the two)
    {P}:cust:<cid>          hash  name, created (µs), merged_into
    {P}:ids:<cid>           set   verified identity keys the customer owns
    {P}:sugg:<cid>          hash  identity key -> SuggestedLink JSON (other_customer_id is
                                  read from {P}:ident when the customer is read)
    {P}:attrs:<cid>         hash  attribute name -> JSON value
    {P}:hist:<cid>          zset  all scores 0; member "<18-digit sent µs + 62135596800e6>:
                                  <message_id>", so lexicographic order is (sent_at, id) and
                                  a member is an exact ``before`` cursor (ZRANGE ... BYLEX REV)
    {P}:open:<cid>          hash  thread key "<source>\\0<thread>" -> the customer's newest
                                  conversation on it (a resolved one stays: reopen window)
    {P}:convs:<cid>         set   conversation ids
    {P}:from:<cid>          list  customers merged into this one (merged_from)
    {P}:merges:<cid>        list  MergeRecord JSON naming the customer, oldest first
    {P}:msg:<mid>           str   StoredMessage JSON (customer_id as first stored; readers put
                                  the live owner in), written once by ingest and rewritten
                                  only by edit_message (text, edited_at, revisions), by a
                                  compare-and-set on the whole JSON
    {P}:conv:<conv>         hash  customer, channel, source, thread, state, queue, priority,
                                  deadline, count, created, updated, item (the waiting item),
                                  version, assignee, resolved (µs), previous, skills and tags
                                  (JSON lists), sla (ConversationSla JSON), last (the history
                                  member of its newest message, for ItemChange.create_item_id),
                                  awaiting ("1" / "0": ConversationSla.awaiting_response of the
                                  sla last written; absent on older hashes, read as False).
                                  A message routed nowhere (an auto-reply, a bounce) only
                                  counts in count: it is not last and moves nothing else;
                                  recorded ("1", else absent: Conversation.recorded_only)
                                  on one it created, until a routed message adopts it
    {P}:backlog:<queue>     zset  item id -> router.urgency.score(deadline, priority)
    {P}:queues              set   queues with items waiting or released (backlog_stats
                                  drops a queue once both are empty)
    {P}:item:<item>         hash  conv, queue, priority, deadline, score, message, reasons
                                  (one Reason JSON per line), created, also (the other queues
                                  it is offered in, one per line: in each one's backlog too;
                                  a claim takes it out of all of them)
    {P}:released:<queue>    zset  claimed, unsettled item id -> lease expiry µs (+inf: none)
    {P}:timers              zset  Timer.key ("<conversation>|<kind>|<ref>", the whole
                                  Timer) -> due µs (fire and next_timer: O(log N + taken))
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from typing import Any, Final

import redis.asyncio as aioredis
from redis import exceptions as rexc

from router.backends import redis_codec as codec
from router.backends.redis_errors import translated
from router.backends.redis_scripts import base_key, connect
from router.errors import BackendUnavailable, Conflict, InputError, NotFound
from router.models import (
    BacklogStats,
    ClaimedItem,
    Conversation,
    ConversationUpdate,
    Customer,
    HistoryPage,
    IngestRequest,
    IngestResult,
    MergeRecord,
    NormalizedMessage,
    RoutingContext,
    StoredMessage,
    Timer,
)
from router.urgency import PRIORITY_SLOTS, deadline_of, score

_CURSOR: Final = re.compile(r"\d{18}:[^\x00]+\Z")
_INGEST_CHUNK: Final = 200  # messages per EVALSHA: bounds how long one script holds Redis
_REQUEUE_BATCH: Final = 500
_SETTLE_BATCH: Final = 1000
_MAX_READ: Final = 1000  # items per claim, messages per history page or claimed history
_EDIT_ATTEMPTS: Final = 20  # compare-and-set rounds of one edit (each lost to another edit)


# --- scripts -----------------------------------------------------------------------


class _Script:
    __slots__ = ("sha", "source")

    def __init__(self, name: str) -> None:
        lua = resources.files("router.backends") / "lua"
        common = (lua / "common.lua").read_text(encoding="utf-8")
        self.source = common + "\n" + (lua / f"{name}.lua").read_text(encoding="utf-8")
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()


class _Scripts:
    def __init__(self) -> None:
        self.ingest = _Script("ingest")
        self.merge = _Script("merge")
        self.claim = _Script("claim")
        self.settle = _Script("settle")
        self.requeue = _Script("requeue")
        self.customer = _Script("customer")
        self.conversation = _Script("conversation")
        self.resolve = _Script("resolve")
        self.history = _Script("history")
        self.stats = _Script("stats")
        self.update = _Script("update")
        self.fire = _Script("fire")
        self.contexts = _Script("contexts")
        self.thread = _Script("thread")
        self.edit = _Script("edit")

    def all(self) -> list[_Script]:
        return list(vars(self).values())


# --- the store ------------------------------------------------------------------------


class RedisStore:
    """The ``Store`` port on Redis; see the module docstring for the key schema."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "omniroute",
        connect_timeout_s: float = 1.0,
        command_timeout_s: float = 5.0,
        health_check_interval_s: int = 15,
    ) -> None:
        self._base = base_key(prefix)
        self._url = url
        self._name = f"omniroute:{prefix}"
        self._timeouts = (connect_timeout_s, command_timeout_s, health_check_interval_s)
        self._scripts = _Scripts()
        self._client: aioredis.Redis | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client = self._connect()
        with translated:
            for script in self._scripts.all():
                await self._command("SCRIPT", "LOAD", script.source)

    def _connect(self) -> aioredis.Redis:
        connect_s, command_s, health_s = self._timeouts
        return connect(
            self._url,
            self._name,  # scripts answer one msgpack blob, decoded by msgspec
            connect_timeout_s=connect_s,
            command_timeout_s=command_s,
            health_check_interval_s=health_s,
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("RedisStore.open() was not called")
        return self._client

    async def ping(self) -> None:
        with translated:
            await self._command("PING")

    async def _command(self, *args: str | int | bytes) -> Any:
        # redis-py leaves execute_command unannotated; this is its one typed entry.
        return await self._redis.execute_command(*args)  # type: ignore[no-untyped-call]

    async def _run(self, script: _Script, *args: str | int | bytes) -> Any:
        with translated:
            try:
                return await self._command("EVALSHA", script.sha, 1, self._base, *args)
            except rexc.NoScriptError:
                await self._command("SCRIPT", "LOAD", script.source)
                return await self._command("EVALSHA", script.sha, 1, self._base, *args)

    # --- ingest -----------------------------------------------------------------------

    async def ingest(self, requests: Sequence[IngestRequest]) -> list[IngestResult]:
        if not requests:
            return []
        args = [codec.ingest_arg(request) for request in requests]
        chunks = [args[i : i + _INGEST_CHUNK] for i in range(0, len(args), _INGEST_CHUNK)]
        if len(chunks) == 1:
            replies = [await self._run(self._scripts.ingest, *chunks[0])]
        else:
            with translated:
                replies = await self._pipelined(self._scripts.ingest, chunks)
        return [
            codec.read_ingest_result(result) for reply in replies for result in codec.unpack(reply)
        ]

    async def _pipelined(self, script: _Script, chunks: list[list[bytes]]) -> list[Any]:
        """One ``EVALSHA`` per chunk, all in one round trip; ``NOSCRIPT`` ones run again."""
        replies = await self._evalsha_each(script, chunks)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, rexc.NoScriptError)]
        if missing:
            await self._command("SCRIPT", "LOAD", script.source)
            retried = await self._evalsha_each(script, [chunks[i] for i in missing])
            for i, reply in zip(missing, retried, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _evalsha_each(self, script: _Script, chunks: list[list[bytes]]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for chunk in chunks:
            pipe.execute_command("EVALSHA", script.sha, 1, self._base, *chunk)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def find_thread(self, source: str, external_ids: Sequence[str]) -> str | None:
        if not external_ids:
            return None
        thread: bytes | None = await self._run(self._scripts.thread, source, *external_ids)
        return thread.decode() if thread else None

    async def edit_message(
        self, source: str, external_id: str, *, text: str, edited_at: datetime
    ) -> StoredMessage | None:
        """Read, edit here, store if unchanged since the read (``edit.lua``): the stored
        JSON is rewritten whole by the codec, never by the script."""
        field = f"{source}\x00{external_id}"
        old = new = b""
        for _ in range(_EDIT_ATTEMPTS):
            packed = await self._run(self._scripts.edit, field, old, new)
            if not packed:
                return None
            owner, blob = codec.unpack(packed)
            stored = blob.encode()
            if stored != new:  # not ours (yet): edit what is there now
                edited = codec.edited_blob(blob, text, edited_at)
                if edited is not None:
                    old, new = stored, edited
                    continue
            return codec.read_message(blob, owner)
        raise BackendUnavailable(f"message {external_id!r} kept changing; try again")

    # --- customers --------------------------------------------------------------------

    async def get_customer(self, customer_id: str) -> Customer | None:
        packed = await self._run(self._scripts.customer, customer_id)
        return codec.read_customer(codec.unpack(packed)) if packed else None

    async def resolve_customer(self, customer_id: str) -> str | None:
        live: bytes | None = await self._run(self._scripts.resolve, customer_id)
        return live.decode() if live else None

    async def find_customer(self, identity_key: str) -> str | None:
        with translated:
            owner: bytes | None = await self._command("HGET", f"{self._base}ident", identity_key)
        return owner.decode() if owner else None

    async def history(
        self, customer_id: str, *, limit: int, before: str | None = None
    ) -> HistoryPage:
        if limit < 1:
            raise InputError("history limit must be at least 1")
        if before is not None and not _CURSOR.match(before):
            raise InputError("malformed history cursor")
        page = min(limit, _MAX_READ)
        packed = await self._run(self._scripts.history, customer_id, page, before or "")
        if not packed:
            raise NotFound(f"unknown customer {customer_id}")
        owner, next_before, blobs = codec.unpack(packed)
        return HistoryPage(
            messages=[codec.read_message(blob, owner) for blob in blobs if blob],
            next_before=next_before or None,
        )

    async def merge(
        self, winner_id: str, loser_id: str, *, at: datetime, reason: str
    ) -> MergeRecord:
        record = MergeRecord(winner=winner_id, loser=loser_id, at=at, reason=reason)
        outcome = await self._run(self._scripts.merge, winner_id, loser_id, codec.merge_arg(record))
        if outcome == b"not_found":
            raise NotFound("unknown customer")
        if outcome == b"same":
            raise Conflict("cannot merge a customer into itself")
        if outcome == b"merged_away":
            raise Conflict("customer already merged into another one")
        return record

    async def merges(self, customer_id: str) -> list[MergeRecord]:
        with translated:
            blobs = await self._command("LRANGE", f"{self._base}merges:{customer_id}", 0, -1)
        return [codec.read_merge(blob) for blob in blobs]

    async def contexts(
        self,
        messages: Sequence[NormalizedMessage],
        *,
        since: datetime,
        limit: int,
        reopen_window_s: float = 0.0,
    ) -> list[RoutingContext]:
        if not messages:
            return []
        since_member = f"[{codec.to_us(since) + codec.HIST_OFFSET_US:018d}"
        window = codec.window_arg(reopen_window_s)
        args = [codec.context_arg(message) for message in messages]
        packed = await self._run(self._scripts.contexts, since_member, max(limit, 0), window, *args)
        return [codec.read_context(view) for view in codec.unpack(packed)]

    async def update_conversation(
        self, conversation_id: str, update: ConversationUpdate
    ) -> Conversation:
        reply = await self._run(self._scripts.update, conversation_id, codec.update_arg(update))
        if reply == b"not_found":
            raise NotFound(f"unknown conversation {conversation_id}")
        if reply == b"conflict":
            raise Conflict(
                f"conversation {conversation_id} changed since version {update.expected_version}"
            )
        return codec.read_conversation(codec.unpack(reply))

    async def fire_timers(self, now: datetime, limit: int) -> list[Timer]:
        fired: list[Timer] = []
        while len(fired) < limit:
            batch = min(limit - len(fired), _MAX_READ)  # Lua's unpack() bounds one run
            due = codec.unpack(await self._run(self._scripts.fire, codec.to_us(now), batch))
            fired += [codec.read_timer(due[i], due[i + 1]) for i in range(0, len(due), 2)]
            if len(due) < 2 * batch:
                break
        return fired

    async def next_timer(self) -> datetime | None:
        with translated:
            first = await self._redis.zrange(f"{self._base}timers", 0, 0, withscores=True)
        return codec.from_us(int(first[0][1])) if first else None

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        packed = await self._run(self._scripts.conversation, conversation_id)
        return codec.read_conversation(codec.unpack(packed)) if packed else None

    # --- backlog ----------------------------------------------------------------------

    async def claim(
        self,
        queue: str,
        limit: int,
        *,
        now: datetime,
        lease_until: datetime | None,
        history_limit: int,
    ) -> list[ClaimedItem]:
        if limit < 1:
            return []
        lease = "+inf" if lease_until is None else codec.to_us(lease_until)
        packed = await self._run(
            self._scripts.claim, queue, min(limit, _MAX_READ), lease, min(history_limit, _MAX_READ)
        )
        return [codec.read_claimed(reply) for reply in codec.unpack(packed)]

    async def settle(self, item_ids: Sequence[str]) -> None:
        ids = list(item_ids)
        for start in range(0, len(ids), _SETTLE_BATCH):
            await self._run(self._scripts.settle, *ids[start : start + _SETTLE_BATCH])

    async def requeue_expired(self, now: datetime) -> int:
        return await self._requeue(codec.to_us(now))

    async def requeue_released(self) -> int:
        return await self._requeue("+inf")

    async def _requeue(self, until: int | str) -> int:
        total = 0
        while True:
            moved: int = await self._run(self._scripts.requeue, until, _REQUEUE_BATCH)
            total += moved
            if moved < _REQUEUE_BATCH:
                return total

    async def backlog_stats(
        self, *, at_risk_before: datetime | None = None
    ) -> dict[str, BacklogStats]:
        bound = "-inf" if at_risk_before is None else str(score(at_risk_before, PRIORITY_SLOTS))
        rows = codec.unpack(await self._run(self._scripts.stats, bound))
        return {
            queue: BacklogStats(
                depth=depth,
                oldest_deadline=deadline_of(int(float(first))) if first else None,
                released=released,
                at_risk=at_risk,
            )
            for queue, depth, first, released, at_risk in rows
        }
