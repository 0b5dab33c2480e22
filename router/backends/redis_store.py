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

Key schema (``P`` is the deployment prefix, ``omniroute`` by default). Every key starts
with the hash tag ``{P}``, so a deployment lives in one Redis Cluster slot: a merge
moves several customers' keys atomically, which only one slot allows, and a deployment
scales out by running more routers, not by spreading one deployment over slots. Scripts
get ``{P}:`` as ``KEYS[1]`` and derive their keys from it. Times are integer
microseconds since the epoch (exact in a Lua double until 2255); ids are the callers'
and must not contain NUL::

    {P}:dedupe              hash  "<source>\\0<external_id>" -> "<message_id>\\0<conversation_id>"
    {P}:ident               hash  verified identity key "kind:value" -> live owner id
    {P}:thread              hash  "<source>\\0<thread>" -> newest conversation on that thread
                                  (finds the customer of a message without verified ids)
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
    {P}:msg:<mid>           str   StoredMessage JSON, immutable (customer_id as first stored;
                                  readers put the live owner in)
    {P}:conv:<conv>         hash  customer, channel, source, thread, state, queue, priority,
                                  deadline, count, created, updated, item (the waiting item),
                                  version, assignee, resolved (µs), previous, skills and tags
                                  (JSON lists), sla (ConversationSla JSON), last (the history
                                  member of its newest message, for ItemChange.create_item_id),
                                  awaiting ("1" / "0": ConversationSla.awaiting_response of the
                                  sla last written; absent on older hashes, read as False)
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
from datetime import UTC, datetime, timedelta
from importlib import resources
from types import TracebackType
from typing import Any, Final

import msgspec
import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from router.clock import to_ms
from router.errors import BackendUnavailable, Conflict, InputError, NotFound
from router.models import (
    Attachment,
    BacklogItem,
    BacklogStats,
    ClaimedItem,
    Conversation,
    ConversationSla,
    ConversationUpdate,
    Customer,
    Decision,
    HistoryPage,
    Identity,
    IngestRequest,
    IngestResult,
    ItemChange,
    MergeRecord,
    NormalizedMessage,
    Reason,
    RoutingContext,
    StoredMessage,
    SuggestedLink,
    Timer,
)
from router.urgency import PRIORITY_SLOTS, deadline_of, score

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_HIST_OFFSET_US: Final = 62_135_596_800_000_000  # year 1 to 1970: sort keys stay >= 0
_PREFIX: Final = re.compile(r"[\w.:-]{1,100}\Z", re.ASCII)
_CURSOR: Final = re.compile(r"\d{18}:[^\x00]+\Z")
_INGEST_CHUNK: Final = 200  # messages per EVALSHA: bounds how long one script holds Redis
_REQUEUE_BATCH: Final = 500
_SETTLE_BATCH: Final = 1000
_MAX_READ: Final = 1000  # items per claim, messages per history page or claimed history
_UNAVAILABLE: Final = (
    rexc.ConnectionError,  # also BusyLoadingError, AuthenticationError
    rexc.TimeoutError,
    rexc.ReadOnlyError,
    rexc.OutOfMemoryError,
    rexc.MasterDownError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.NoPermissionError,  # an ACL that shuts the router out: nothing can be stored
    OSError,
)

_json = msgspec.json.Encoder()
_msgpack = msgspec.msgpack.Encoder()
_message_decoder = msgspec.json.Decoder(StoredMessage)
_link_decoder = msgspec.json.Decoder(SuggestedLink)
_reasons_decoder = msgspec.json.Decoder(list[Reason])
_merge_decoder = msgspec.json.Decoder(MergeRecord)
_any_decoder = msgspec.json.Decoder()
_strings_decoder = msgspec.json.Decoder(list[str])
_sla_decoder = msgspec.json.Decoder(ConversationSla)
_unpack = msgspec.msgpack.Decoder()


class _MessageBody(msgspec.Struct, kw_only=True):
    """``StoredMessage`` without the two ids the ingest script puts in front."""

    message_id: str
    channel: str
    source: str
    external_id: str
    sender_name: str | None
    identities: tuple[Identity, ...]
    subject: str | None
    text: str
    sent_at: datetime
    received_at: datetime
    attachments: tuple[Attachment, ...]
    attributes: dict[str, Any]


# --- time -----------------------------------------------------------------------------


def _to_us(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // _US


def _from_us(value: str | int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


# --- scripts and errors ---------------------------------------------------------------


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

    def all(self) -> list[_Script]:
        return list(vars(self).values())


class _Translated:
    """Turns the Redis client's "server not there" errors into ``BackendUnavailable``."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and isinstance(exc, _UNAVAILABLE):
            raise BackendUnavailable(f"redis unavailable: {type(exc).__name__}") from exc


_translated: Final = _Translated()


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
        if not _PREFIX.match(prefix):
            raise ValueError("the Redis prefix must be letters, digits and _ . : - only")
        self._url = url
        self._name = f"omniroute:{prefix}"
        self._base = f"{{{prefix}}}:"
        self._timeouts = (connect_timeout_s, command_timeout_s, health_check_interval_s)
        self._scripts = _Scripts()
        self._client: aioredis.Redis | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client = self._connect()
        with _translated:
            for script in self._scripts.all():
                await self._command("SCRIPT", "LOAD", script.source)

    def _connect(self) -> aioredis.Redis:
        connect_s, command_s, health_s = self._timeouts
        return aioredis.Redis.from_url(
            self._url,
            decode_responses=False,  # scripts answer one msgpack blob, decoded by msgspec
            client_name=self._name,  # CLIENT LIST shows which deployment a connection serves
            socket_connect_timeout=connect_s,
            socket_timeout=command_s,
            health_check_interval=health_s,
            # One immediate retry on a broken connection (a restarted server), none on
            # a timeout, whose command may have run.
            retry=Retry(NoBackoff(), 1, supported_errors=(rexc.ConnectionError,)),
            retry_on_timeout=False,
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
        with _translated:
            await self._command("PING")

    async def _command(self, *args: str | int | bytes) -> Any:
        # redis-py leaves execute_command unannotated; this is its one typed entry.
        return await self._redis.execute_command(*args)  # type: ignore[no-untyped-call]

    async def _run(self, script: _Script, *args: str | int | bytes) -> Any:
        with _translated:
            try:
                return await self._command("EVALSHA", script.sha, 1, self._base, *args)
            except rexc.NoScriptError:
                await self._command("SCRIPT", "LOAD", script.source)
                return await self._command("EVALSHA", script.sha, 1, self._base, *args)

    # --- ingest -----------------------------------------------------------------------

    async def ingest(self, requests: Sequence[IngestRequest]) -> list[IngestResult]:
        if not requests:
            return []
        args = [_ingest_arg(request) for request in requests]
        chunks = [args[i : i + _INGEST_CHUNK] for i in range(0, len(args), _INGEST_CHUNK)]
        if len(chunks) == 1:
            replies = [await self._run(self._scripts.ingest, *chunks[0])]
        else:
            with _translated:
                replies = await self._pipelined(self._scripts.ingest, chunks)
        return [_ingest_result(result) for reply in replies for result in _unpack.decode(reply)]

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

    # --- customers --------------------------------------------------------------------

    async def get_customer(self, customer_id: str) -> Customer | None:
        packed = await self._run(self._scripts.customer, customer_id)
        return _customer(_unpack.decode(packed)) if packed else None

    async def resolve_customer(self, customer_id: str) -> str | None:
        live: bytes | None = await self._run(self._scripts.resolve, customer_id)
        return live.decode() if live else None

    async def find_customer(self, identity_key: str) -> str | None:
        with _translated:
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
        owner, next_before, blobs = _unpack.decode(packed)
        return HistoryPage(
            messages=[_message(blob, owner) for blob in blobs if blob],
            next_before=next_before or None,
        )

    async def merge(
        self, winner_id: str, loser_id: str, *, at: datetime, reason: str
    ) -> MergeRecord:
        record = MergeRecord(winner=winner_id, loser=loser_id, at=at, reason=reason)
        outcome = await self._run(self._scripts.merge, winner_id, loser_id, _json.encode(record))
        if outcome == b"not_found":
            raise NotFound("unknown customer")
        if outcome == b"same":
            raise Conflict("cannot merge a customer into itself")
        if outcome == b"merged_away":
            raise Conflict("customer already merged into another one")
        return record

    async def merges(self, customer_id: str) -> list[MergeRecord]:
        with _translated:
            blobs = await self._command("LRANGE", f"{self._base}merges:{customer_id}", 0, -1)
        return [_merge_decoder.decode(blob) for blob in blobs]

    async def contexts(
        self, messages: Sequence[NormalizedMessage], *, since: datetime, limit: int
    ) -> list[RoutingContext]:
        if not messages:
            return []
        since_member = f"[{_to_us(since) + _HIST_OFFSET_US:018d}"
        args = [_context_arg(message) for message in messages]
        packed = await self._run(self._scripts.contexts, since_member, max(limit, 0), *args)
        return [_context(view) for view in _unpack.decode(packed)]

    async def update_conversation(
        self, conversation_id: str, update: ConversationUpdate
    ) -> Conversation:
        reply = await self._run(self._scripts.update, conversation_id, _update_arg(update))
        if reply == b"not_found":
            raise NotFound(f"unknown conversation {conversation_id}")
        if reply == b"conflict":
            raise Conflict(
                f"conversation {conversation_id} changed since version {update.expected_version}"
            )
        return _conversation(_unpack.decode(reply))

    async def fire_timers(self, now: datetime, limit: int) -> list[Timer]:
        fired: list[Timer] = []
        while len(fired) < limit:
            batch = min(limit - len(fired), _MAX_READ)  # Lua's unpack() bounds one run
            due = _unpack.decode(await self._run(self._scripts.fire, _to_us(now), batch))
            fired += [_timer(due[i], due[i + 1]) for i in range(0, len(due), 2)]
            if len(due) < 2 * batch:
                break
        return fired

    async def next_timer(self) -> datetime | None:
        with _translated:
            first = await self._redis.zrange(f"{self._base}timers", 0, 0, withscores=True)
        return _from_us(int(first[0][1])) if first else None

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        packed = await self._run(self._scripts.conversation, conversation_id)
        return _conversation(_unpack.decode(packed)) if packed else None

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
        lease = "+inf" if lease_until is None else _to_us(lease_until)
        packed = await self._run(
            self._scripts.claim, queue, min(limit, _MAX_READ), lease, min(history_limit, _MAX_READ)
        )
        return [_claimed(reply) for reply in _unpack.decode(packed)]

    async def settle(self, item_ids: Sequence[str]) -> None:
        ids = list(item_ids)
        for start in range(0, len(ids), _SETTLE_BATCH):
            await self._run(self._scripts.settle, *ids[start : start + _SETTLE_BATCH])

    async def requeue_expired(self, now: datetime) -> int:
        return await self._requeue(_to_us(now))

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
        rows = _unpack.decode(await self._run(self._scripts.stats, bound))
        return {
            queue: BacklogStats(
                depth=depth,
                oldest_deadline=deadline_of(int(float(first))) if first else None,
                released=released,
                at_risk=at_risk,
            )
            for queue, depth, first, released, at_risk in rows
        }


# --- encoding: one msgpack argument per message (cmsgpack takes str, not bin) ----------


def _ingest_arg(request: IngestRequest) -> bytes:
    m, decision = request.message, request.decision
    verified, suggested = _identities(request)
    sent_key = _to_us(m.sent_at) + _HIST_OFFSET_US
    return _msgpack.encode(
        [
            f"{m.source}\x00{m.external_id}",
            request.message_id,
            request.new_customer_id,
            request.new_conversation_id,
            request.new_item_id,
            m.thread_key,
            m.thread or "",
            m.sender_name or "",
            str(_to_us(m.received_at)),
            _json.encode(m.received_at).decode(),  # a merge record's "at", as JSON
            f"{sent_key:018d}:{request.message_id}",
            m.channel,
            m.source,
            decision.queue,
            str(decision.priority),
            str(_to_us(decision.deadline)),
            str(_decision_score(decision)),
            _reason_lines(decision.reasons),
            _json.encode(_body(request)).decode(),
            verified,
            suggested,
            _attributes(m.customer_attributes),
            str(round(request.reopen_window_s * 1_000_000)),
            _json.encode(decision.skills).decode(),
            _json.encode(decision.tags).decode(),
            _json.encode(decision.sla).decode() if decision.sla is not None else "",
            _timers(decision.timers),
            _hint(decision.sla),
        ]
    )


def _hint(sla: ConversationSla | None) -> str:
    """The ``awaiting`` hash field for a conversation whose sla is now ``sla``."""
    return "1" if sla is not None and sla.awaiting_response else "0"


def _decision_score(decision: Decision) -> int:
    if decision.score is not None:
        return decision.score
    return score(decision.deadline, decision.priority)


def _timers(timers: Sequence[Timer]) -> list[str]:
    """``[due µs, key, ...]`` for the scripts' ``arm_timers`` (ZADD's argument order)."""
    flat: list[str] = []
    for timer in timers:
        flat += [str(_to_us(timer.at)), timer.key]
    return flat


def _timer(key: str | bytes, due_us: str | bytes | float) -> Timer:
    """A timer back from its key and score (the key holds the rest of it)."""
    text = key.decode() if isinstance(key, bytes) else key
    conversation_id, kind, ref = text.split("|", 2)
    return Timer(
        conversation_id=conversation_id,
        kind=kind,  # type: ignore[arg-type]  # written by _timers from a TimerKind
        ref=ref,
        at=_from_us(int(float(due_us))),
    )


def _context_arg(message: NormalizedMessage) -> bytes:
    keys = [identity.key for identity in message.verified]
    return _msgpack.encode([keys, message.thread_key, message.thread or ""])


def _update_arg(update: ConversationUpdate) -> bytes:
    sets, dels = _conversation_changes(update)
    deadline_ms = "" if isinstance(update.deadline, msgspec.UnsetType) else to_ms(update.deadline)
    return _msgpack.encode(
        [
            str(update.expected_version),
            sets,
            dels,
            _item_change(update.item) if update.item is not None else "",
            update.disarm,
            _timers(update.arm),
            update.served_by or "",
            "" if update.at is None else str(_to_us(update.at)),
            str(deadline_ms),
        ]
    )


def _conversation_changes(update: ConversationUpdate) -> tuple[list[str], list[str]]:
    """The conversation hash fields to set (``[field, value, ...]``) and to delete."""
    values: dict[str, str | None] = {}
    if not isinstance(update.state, msgspec.UnsetType):
        values["state"] = update.state
    if not isinstance(update.queue, msgspec.UnsetType):
        values["queue"] = update.queue
    if not isinstance(update.priority, msgspec.UnsetType):
        values["priority"] = str(update.priority)
    if not isinstance(update.deadline, msgspec.UnsetType):
        values["deadline"] = str(_to_us(update.deadline))
    if not isinstance(update.assignee, msgspec.UnsetType):
        values["assignee"] = update.assignee
    if not isinstance(update.resolved_at, msgspec.UnsetType):
        resolved = update.resolved_at
        values["resolved"] = None if resolved is None else str(_to_us(resolved))
    if not isinstance(update.sla, msgspec.UnsetType):
        values["sla"] = None if update.sla is None else _json.encode(update.sla).decode()
        values["awaiting"] = _hint(update.sla)
    if update.at is not None:
        values["updated"] = str(_to_us(update.at))
    sets = [part for field, value in values.items() if value is not None for part in (field, value)]
    return sets, [field for field, value in values.items() if value is None]


def _item_change(change: ItemChange) -> list[str | int]:
    deadline = change.deadline
    return [
        1 if change.withdraw else 0,
        "" if change.priority is None else str(change.priority),
        "" if deadline is None else str(_to_us(deadline)),
        "" if deadline is None else str(to_ms(deadline)),
        change.move_to or "",
        change.also_offer or "",
        change.create_item_id or "",
        _reason_lines(change.reasons),
    ]


def _reason_lines(reasons: list[Reason]) -> str:
    if not reasons:
        return ""
    return "\n".join(_json.encode(reason).decode() for reason in reasons)


def _body(request: IngestRequest) -> _MessageBody:
    m = request.message
    return _MessageBody(
        message_id=request.message_id,
        channel=m.channel,
        source=m.source,
        external_id=m.external_id,
        sender_name=m.sender_name,
        identities=m.identities,
        subject=m.subject,
        text=m.text,
        sent_at=m.sent_at,
        received_at=m.received_at,
        attachments=m.attachments,
        attributes=m.attributes,
    )


def _identities(request: IngestRequest) -> tuple[list[str], list[str]]:
    """The verified identity keys, and ``[key, SuggestedLink JSON, ...]`` for the others."""
    verified: list[str] = []
    suggested: list[str] = []
    for ident in request.message.identities:
        if ident.verified:
            verified.append(ident.key)
        else:
            at = request.message.received_at
            link = SuggestedLink(identity=ident, message_id=request.message_id, at=at)
            suggested += [ident.key, _json.encode(link).decode()]
    return verified, suggested


def _attributes(attributes: dict[str, Any]) -> list[str]:
    flat: list[str] = []
    for name, value in attributes.items():
        flat += [name, _json.encode(value).decode()]
    return flat


# --- decoding the scripts' replies ----------------------------------------------------


def _ingest_result(reply: list[Any]) -> IngestResult:
    duplicate, mid, cust, conv, queue, priority, deadline, item, new, merged = reply[:10]
    created, reopened, previous_state, awaiting = reply[10:]
    return IngestResult(
        message_id=mid,
        customer_id=cust,
        conversation_id=conv,
        queue=queue,
        priority=int(priority),
        deadline=_from_us(deadline),
        duplicate=bool(duplicate),
        item_id=item or None,
        new_customer=bool(new),
        merged=merged,
        conversation_created=bool(created),
        reopened=bool(reopened),
        previous_state=previous_state or None,
        awaiting_response=bool(awaiting),
    )


def _reasons(lines: str) -> list[Reason]:
    """Reasons are stored as JSON lines (compact JSON never holds a raw newline)."""
    return _reasons_decoder.decode(f"[{lines.replace(chr(10), ',')}]")


def _message(blob: str | bytes, customer_id: str) -> StoredMessage:
    message = _message_decoder.decode(blob)
    message.customer_id = customer_id
    return message


def _customer(view: list[Any]) -> Customer:
    cid, name, created, merged_into, ids, sugg, owners, attrs, merged_from = view
    return Customer(
        customer_id=cid,
        name=name or None,  # msgpack carries Lua's false for a missing field
        identities=[_verified(key) for key in sorted(ids)],
        suggested=_suggested(cid, sugg, owners),
        attributes={attrs[i]: _any_decoder.decode(attrs[i + 1]) for i in range(0, len(attrs), 2)},
        created_at=_from_us(created),
        merged_into=merged_into or None,
        merged_from=merged_from,
    )


def _verified(key: str) -> Identity:
    kind, _, value = key.partition(":")
    return Identity(kind, value, True)


def _suggested(cid: str, pairs: list[str], owners: list[str | bool]) -> list[SuggestedLink]:
    links = []
    for i in range(0, len(pairs), 2):
        link = _link_decoder.decode(pairs[i + 1])
        owner = owners[i // 2]
        link.other_customer_id = owner if isinstance(owner, str) and owner != cid else None
        links.append(link)
    links.sort(key=lambda link: (link.at, link.identity.key))
    return links


def _conversation(view: list[Any]) -> Conversation:
    """A ``conversation_view``: fields never written (stored before they existed) are
    msgpack false."""
    conv, cust, channel, source, thread, state, queue, priority, deadline = view[:9]
    count, created, updated, item, version, assignee, resolved, previous = view[9:17]
    skills, tags, sla, awaiting = view[17:21]
    return Conversation(
        conversation_id=conv,
        customer_id=cust,
        channel=channel,
        source=source,
        thread=thread or None,
        state=state,
        queue=queue,
        priority=int(priority),
        deadline=_from_us(deadline),
        message_count=int(count),
        created_at=_from_us(created),
        updated_at=_from_us(updated),
        version=int(version or 0),
        item_id=item or None,
        assignee=assignee or None,
        resolved_at=_from_us(resolved) if resolved else None,
        previous_conversation_id=previous or None,
        skills=_strings_decoder.decode(skills) if skills else [],
        tags=_strings_decoder.decode(tags) if tags else [],
        sla=_sla_decoder.decode(sla) if sla else None,
        awaiting_response=awaiting == "1",
    )


def _context(view: list[Any] | bool) -> RoutingContext:
    if not isinstance(view, list):
        return RoutingContext()
    cid, attrs, recent, served = view
    agent, agent_at = None, None
    if served:
        at_us, _, agent = served.partition("\x00")
        agent_at = _from_us(at_us)
    return RoutingContext(
        customer_id=cid,
        attributes={attrs[i]: _any_decoder.decode(attrs[i + 1]) for i in range(0, len(attrs), 2)},
        recent=[_from_us(int(key) - _HIST_OFFSET_US) for key in recent],
        last_agent=agent,
        last_agent_at=agent_at,
    )


def _claimed(reply: list[Any]) -> ClaimedItem:
    item_id, fields, conv_view, customer_view, message_blob, history_blobs = reply
    conv, queue, priority, deadline, message_id, reasons, created = fields[:7]
    conversation = _conversation(conv_view)
    customer_id = conversation.customer_id
    history = [_message(blob, customer_id) for blob in history_blobs if blob]
    return ClaimedItem(
        item=BacklogItem(
            item_id=item_id,
            conversation_id=conv,
            queue=queue,
            priority=int(priority),
            deadline=_from_us(deadline),
            message_id=message_id,
            reasons=_reasons(reasons),
            created_at=_from_us(created),
        ),
        conversation=conversation,
        customer=_customer(customer_view),
        message=(
            _message(message_blob, customer_id)
            if message_blob  # false: the script found it among the history
            else next(m for m in history if m.message_id == message_id)
        ),
        history=history,
    )
