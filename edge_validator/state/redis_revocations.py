"""The revocation log in Redis (see ``revocation_log``): keys and scripts, no policy.

Five keys share the ``{revocations}`` hash tag, so each script runs in one Cluster slot:

- ``expiry``: sorted set, target -> expiry (unix seconds), for pruning;
- ``data``: hash, target -> revocation JSON;
- ``log``: sorted set, target -> sequence number of its latest write;
- ``seq``: the sequence counter (``INCR``);
- ``epoch``: hash ``id``, ``since`` (Redis clock), ``replaced`` (the epoch it replaced).

Every call does bounded work: a write prunes at most ``PRUNE`` expired targets, a read returns
at most one page, so no call blocks Redis for more than a few milliseconds whatever the size of
the set (docs/redis.md has the figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .revocation_log import Changes, Epoch, new_epoch_id
from .revocations import Revocation

PRUNE = 200


class Written(NamedTuple):
    """What a write stored for one revocation."""

    # Its sequence number in the log; 0: nothing written (the target was held, by a stronger
    # entry or, writing back, at all).
    seq: int
    # The JSON stored ("" when nothing was): the given revocation, or its merge with a
    # stronger held one.
    doc: str


class RedisRevocationLog:
    # KEYS[1] sorted set target -> expiry, KEYS[2] hash target -> JSON, KEYS[3] the log (sorted
    # set target -> sequence number), KEYS[4] the sequence counter, KEYS[5] the epoch hash
    # ARGV[1] the writer's now (unix seconds), ARGV[2] an epoch id to start with when there is none,
    # ARGV[3] "1": write only targets not held (a validator writing back what Redis lost),
    # then (target, JSON, expiry) for each entry.
    # Prunes up to PRUNE expired targets, writes each entry at the next sequence number, and
    # lets the keys expire with the last revocation (the counter and the epoch stay).
    # A target already held keeps the strongest of the two: the later revoked_at (a video or
    # user revocation then denies more tokens) and the later expiry, so an older write coming
    # late (a signer's spool replayed after an outage) never narrows a revocation. When the
    # held entry already covers the new one nothing is written.
    # Returns {epoch id, then for each entry its sequence number (0: not written) and the JSON
    # written ('' when none)}.
    APPEND = f"""
local epoch = redis.call('HGET', KEYS[5], 'id')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[5], 'id', epoch, 'since', redis.call('TIME')[1])
end
-- Pruned by the earlier of the writer's clock and Redis's: a writer whose clock runs ahead
-- never drops a revocation that tokens still valid elsewhere need.
local prune_at = math.min(tonumber(ARGV[1]), tonumber(redis.call('TIME')[1]))
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', prune_at, 'LIMIT', 0, {PRUNE})
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
  redis.call('ZREM', KEYS[3], unpack(expired))
end
local AT, UNTIL = '"revoked_at":([^,}}]+)', '"expires_at":([^,}}]+)'
local out = {{epoch}}
for i = 4, #ARGV, 3 do
  local target, doc, expiry = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local held_expiry = redis.call('ZSCORE', KEYS[1], target)
  if held_expiry and ARGV[3] ~= '1' then
    local held = redis.call('HGET', KEYS[2], target)
    local held_at = held and string.match(held, AT)
    local at = string.match(doc, AT)
    if held_at and at then
      local later_at = tonumber(at) > tonumber(held_at)
      local later_expiry = tonumber(expiry) > tonumber(held_expiry)
      if not later_at and not later_expiry then
        doc = nil  -- the held entry covers this one
      elseif not later_at then  -- keep the held revoked_at, take the later expiry
        doc = string.gsub(held, UNTIL, '"expires_at":' .. string.match(doc, UNTIL), 1)
      elseif not later_expiry then  -- take the later revoked_at, keep the held expiry
        doc = string.gsub(doc, UNTIL, '"expires_at":' .. string.match(held, UNTIL), 1)
        expiry = held_expiry
      end
    end
  elseif held_expiry then
    doc = nil
  end
  if doc then
    local seq = redis.call('INCR', KEYS[4])
    redis.call('ZADD', KEYS[1], expiry, target)
    redis.call('HSET', KEYS[2], target, doc)
    redis.call('ZADD', KEYS[3], seq, target)
    out[#out + 1] = seq
    out[#out + 1] = doc
  else
    out[#out + 1] = 0
    out[#out + 1] = ''
  end
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last > 0 then
  local until_ts = math.ceil(tonumber(last[2])) + 1
  for k = 1, 3 do redis.call('EXPIREAT', KEYS[k], until_ts) end
end
return out
"""

    # KEYS[1] the log, KEYS[2] hash target -> JSON, KEYS[3] the sequence counter, KEYS[4] the
    # epoch hash
    # ARGV[1] read entries numbered after this, ARGV[2] page size, ARGV[3] an epoch id to start
    # with when there is none, ARGV[4] read entries numbered up to this ("+inf": no bound),
    # ARGV[5] a target whose number the reader wants to know ("": none)
    # Returns {epoch id, since, replaced, counter, next_after, more (1: a full page), last
    # target, its number, the asked target's number ("": none), JSON...}: next_after is the
    # last number read when the page is full, else the bound (the counter when unbounded:
    # nothing lies between, scripts are atomic).
    CHANGES = """
local epoch = redis.call('HGET', KEYS[4], 'id')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[4], 'id', epoch, 'since', redis.call('TIME')[1])
end
local meta = redis.call('HMGET', KEYS[4], 'since', 'replaced')
local counter = redis.call('GET', KEYS[3]) or '0'
local limit = tonumber(ARGV[2])
local page = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], ARGV[4], 'WITHSCORES',
                        'LIMIT', 0, limit)
local n = #page / 2
local next_after, more = page[#page], 1
if n < limit then
  more = 0
  next_after = ARGV[4]
  if next_after == '+inf' then next_after = counter end
end
local anchor = ''
if ARGV[5] ~= '' then anchor = redis.call('ZSCORE', KEYS[1], ARGV[5]) or '' end
local out = {epoch, meta[1], meta[2] or '', counter, next_after, more,
             page[#page - 1] or '', page[#page] or '', anchor}
if n > 0 then
  local targets = {}
  for i = 1, #page, 2 do targets[#targets + 1] = page[i] end
  local docs = redis.call('HMGET', KEYS[2], unpack(targets))
  for i = 1, n do
    if docs[i] then out[#out + 1] = docs[i] end
  end
end
return out
"""

    # KEYS[1] the epoch hash
    # ARGV[1] the epoch whose data was lost, ARGV[2] a fresh epoch id
    # Marks the current epoch as the replacement of the lost one; when the current one still
    # is the lost one (its numbers went backwards: an old snapshot came back), starts a fresh
    # one. Returns the current epoch id.
    REPLACE_EPOCH = """
local current = redis.call('HGET', KEYS[1], 'id')
if not current or current == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'id', ARGV[2], 'since', redis.call('TIME')[1], 'replaced', ARGV[1])
  return ARGV[2]
end
if not redis.call('HGET', KEYS[1], 'replaced') then
  redis.call('HSET', KEYS[1], 'replaced', ARGV[1])
end
return current
"""

    def __init__(self, client: Any, prefix: str) -> None:
        base = f"{prefix}:{{revocations}}"
        self.expiry_key, self.data_key, self.log_key = (
            f"{base}:expiry",
            f"{base}:data",
            f"{base}:log",
        )
        self.seq_key, self.epoch_key = f"{base}:seq", f"{base}:epoch"
        self._append = client.register_script(self.APPEND)
        self._changes = client.register_script(self.CHANGES)
        self._replace_epoch = client.register_script(self.REPLACE_EPOCH)
        self.scripts = (self._append, self._changes, self._replace_epoch)

    async def append(
        self, client: Any, revs: Sequence[Revocation], now: float, *, only_absent: bool = False
    ) -> tuple[str, list[Written]]:
        """Write ``revs``; returns the epoch and, for each, what was written."""
        args: list[object] = [now, new_epoch_id(), "1" if only_absent else "0"]
        for rev in revs:
            args += [rev.member, rev.to_json(), rev.expires_at]
        keys = [self.expiry_key, self.data_key, self.log_key, self.seq_key, self.epoch_key]
        out = await self._append(keys, args, client=client)
        pairs = out[1:]
        return str(out[0]), [
            Written(int(pairs[i]), str(pairs[i + 1])) for i in range(0, len(pairs), 2)
        ]

    async def changes(self, client: Any, after: int, limit: int, anchor: str = "") -> Changes:
        keys = [self.log_key, self.data_key, self.seq_key, self.epoch_key]
        args = [after, limit, new_epoch_id(), "+inf", anchor]
        return _changes(await self._changes(keys, args, client=client))

    async def windows(
        self, client: Any, after: int, upto: int, width: int, *, pipelined: bool = True
    ) -> list[Changes]:
        """The entries numbered in (after, upto], read as windows ``width`` numbers wide (so
        each holds at most ``width`` entries and blocks Redis as briefly as a page), all sent
        in one round trip: a cold start pays a round trip per many pages, not per page."""
        keys = [self.log_key, self.data_key, self.seq_key, self.epoch_key]
        args = [
            [start, width, new_epoch_id(), min(start + width, upto), ""]
            for start in range(after, upto, width)
        ]
        if not pipelined:
            # redis-py refuses scripts in a cluster pipeline: one round trip each there.
            return [_changes(await self._changes(keys, arg, client=client)) for arg in args]
        async with client.pipeline(transaction=False) as pipe:  # hands its connection back
            for arg in args:
                await self._changes(keys, arg, client=pipe)
            replies = await pipe.execute()
        return [_changes(out) for out in replies]

    async def replace_epoch(self, client: Any, lost: str) -> str:
        return str(
            await self._replace_epoch([self.epoch_key], [lost, new_epoch_id()], client=client)
        )


def _changes(out: list[Any]) -> Changes:
    epoch_id, since, replaced, counter, next_after, more, member, seq, anchor, *docs = out
    epoch = Epoch(str(epoch_id), float(since or 0), str(replaced or ""))
    last = (str(member), int(float(seq))) if member else None
    return Changes(
        epoch,
        int(float(next_after)),
        docs,
        bool(int(more)),
        int(counter),
        last,
        int(float(anchor)) if anchor else None,
    )
