"""``RedisLedger``: the production ``Ledger`` (``router/ledger.py``) on Redis, shared by
every router process of a deployment.

A step that touches more than one key, or reads before it writes, is one Lua script: a
quarantined entry and its place in the list never disagree, and two processes that
claim one nonce at once are serialized by Redis, so exactly one of them wins. The rest
are single commands. Outages become ``BackendUnavailable`` through ``redis_errors``.

Key schema (``P`` is the deployment prefix, as in ``router/backends/redis_store.py``;
every key starts with the hash tag ``{P}`` so a deployment lives in one Redis Cluster
slot). Times are integer microseconds since the epoch; sources, scopes and ids must not
contain NUL::

    {P}:delivery:<source>\\0<external_id>
                            hash  status -> DeliveryReport JSON (HSETNX: a status already
                                  reported keeps its first report)
    {P}:quarantine          hash  quarantine id -> "<18-digit sort key><QuarantineEntry
                                  JSON>", the sort key being the first part of its position
    {P}:quarantine:order    zset  all scores 0; member = the entry's position
                                  (``ledger_codec.position``: "<sort key>:<id>"), so
                                  ZRANGE ... BYLEX REV lists newest first and a member is an
                                  exact ``before`` cursor
    {P}:nonce:<scope>\\0<nonce>
                            hash  fingerprint, expires (µs): the live claim. It is free once
                                  a claim's ``now`` reaches ``expires``; Redis deletes the key
                                  when as much time as the claim had left has passed
    {P}:cursors             hash  poller cursor key -> value

Deliveries and quarantined entries stay until dropped: Redis persistence keeps them as
it keeps the store's keys.
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Final

from router.backends import ledger_codec as codec
from router.backends.redis_errors import translated
from router.backends.redis_scripts import RedisScripted
from router.ledger import DeliveryReport, QuarantineEntry, QuarantinePage

_SORT_KEY: Final = 18  # characters of a position before its ":<id>"

# KEYS[1] = "{P}:"; ARGV: quarantine id, its position, QuarantineEntry JSON. An entry of
# that id already there leaves the list first (its position may differ).
_QUARANTINE: Final = """
local B, id, position = KEYS[1], ARGV[1], ARGV[2]
local old = redis.call('HGET', B .. 'quarantine', id)
if old then
  redis.call('ZREM', B .. 'quarantine:order', string.sub(old, 1, 18) .. ':' .. id)
end
redis.call('ZADD', B .. 'quarantine:order', 0, position)
redis.call('HSET', B .. 'quarantine', id, string.sub(position, 1, 18) .. ARGV[3])
"""

# ARGV: page size, the cursor ('' for the newest page). Answers {next_before or '',
# stored value...}, newest first.
_PAGE: Final = """
local B, size = KEYS[1], tonumber(ARGV[1])
local top = '+'
if ARGV[2] ~= '' then top = '(' .. ARGV[2] end
local members = redis.call('ZRANGE', B .. 'quarantine:order', top, '-', 'BYLEX', 'REV',
  'LIMIT', 0, size + 1)
local out = {''}
if #members > size then
  members[#members] = nil
  out[1] = members[#members]
end
for _, member in ipairs(members) do
  out[#out + 1] = redis.call('HGET', B .. 'quarantine', string.sub(member, 20))
end
return out
"""

# ARGV: quarantine id. Answers 1 when it was there, else 0.
_DROP: Final = """
local B, id = KEYS[1], ARGV[1]
local old = redis.call('HGET', B .. 'quarantine', id)
if not old then return 0 end
redis.call('ZREM', B .. 'quarantine:order', string.sub(old, 1, 18) .. ':' .. id)
redis.call('HDEL', B .. 'quarantine', id)
return 1
"""

# ARGV: "<scope>\\0<nonce>", fingerprint, expires µs, now µs, the key's time to live in
# ms. Answers 1 when the claim is the caller's (new, expired and renewed, or held with
# the same fingerprint), 0 when another fingerprint holds it.
_CLAIM: Final = """
local key = KEYS[1] .. 'nonce:' .. ARGV[1]
local held = redis.call('HMGET', key, 'fingerprint', 'expires')
if held[1] and tonumber(held[2]) > tonumber(ARGV[4]) then
  if held[1] == ARGV[2] then return 1 end
  return 0
end
redis.call('HSET', key, 'fingerprint', ARGV[2], 'expires', ARGV[3])
redis.call('PEXPIRE', key, ARGV[5])
return 1
"""


class RedisLedger(RedisScripted):
    """The ``Ledger`` port on Redis; see the module docstring for the key schema."""

    role = "ledger"
    scripts = MappingProxyType(
        {"quarantine": _QUARANTINE, "page": _PAGE, "drop": _DROP, "claim": _CLAIM}
    )

    # --- deliveries ---------------------------------------------------------------------

    def _delivery_key(self, source: str, external_id: str) -> str:
        return f"{self._base}delivery:{source}\0{external_id}"

    async def record_delivery(self, report: DeliveryReport) -> bool:
        key = self._delivery_key(report.source, report.external_id)
        with translated:
            added = await self._redis.hsetnx(key, report.status, codec.encode(report))
        return bool(added)

    async def deliveries(self, source: str, external_id: str) -> list[DeliveryReport]:
        with translated:
            stored: list[bytes | str] = await self._redis.hvals(
                self._delivery_key(source, external_id)
            )
        return codec.in_order(codec.decode_report(report) for report in stored)

    # --- quarantine ---------------------------------------------------------------------

    async def quarantine(self, entry: QuarantineEntry) -> None:
        position = codec.position(entry)
        await self._run("quarantine", entry.quarantine_id, position, codec.encode(entry))

    async def quarantined(self, *, limit: int, before: str | None = None) -> QuarantinePage:
        size = codec.page_size(limit)
        cursor = codec.checked_cursor(before) or ""
        next_before, *stored = await self._run("page", size, cursor)
        return QuarantinePage(
            entries=[codec.decode_entry(value[_SORT_KEY:]) for value in stored],
            next_before=next_before.decode() or None,
        )

    async def get_quarantined(self, quarantine_id: str) -> QuarantineEntry | None:
        with translated:
            stored: bytes | str | None = await self._redis.hget(
                f"{self._base}quarantine", quarantine_id
            )
        return None if stored is None else codec.decode_entry(stored[_SORT_KEY:])

    async def drop_quarantined(self, quarantine_id: str) -> bool:
        return bool(await self._run("drop", quarantine_id))

    # --- nonces and cursors -------------------------------------------------------------

    async def claim_nonce(
        self, scope: str, nonce: str, *, fingerprint: str, expires_at: datetime, now: datetime
    ) -> bool:
        expires_us, now_us = codec.to_us(expires_at), codec.to_us(now)
        ttl_ms = max(1, -(-(expires_us - now_us) // 1000))  # rounded up, at least 1 ms
        claimed = await self._run(
            "claim", f"{scope}\0{nonce}", fingerprint, expires_us, now_us, ttl_ms
        )
        return bool(claimed)

    async def get_cursor(self, key: str) -> str | None:
        with translated:
            value: bytes | str | None = await self._redis.hget(f"{self._base}cursors", key)
        if isinstance(value, bytes):
            return value.decode()
        return value

    async def set_cursor(self, key: str, value: str) -> None:
        with translated:
            await self._redis.hset(f"{self._base}cursors", key, value)
