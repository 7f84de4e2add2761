"""Slack's limits, kept in Redis so that every job and every replica keeps them together.

- A channel's message budget: a GCRA per channel, about one post a second with short bursts.
- 429 pauses: after a 429, nobody calls that method again before its Retry-After has passed.
- Pending edits: the newest wanted state of a message, kept until Slack accepts it. One flush
  job at a time owns a message (its flush marker), so two flushes never race.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis

from bot.store.keys import (
    FLUSH_CLAIM_SECONDS,
    PENDING_UPDATE_TTL,
    channel_budget_key,
    flush_marker_key,
    pending_update_key,
    slack_pause_key,
)

# Whether `method` may be called now, in one round trip. KEYS[1]: the method's pause; KEYS[2],
# for posts only: the channel's budget. Answers {1, ms}: a slot is yours, send in ms; or {0, ms}:
# nothing was taken, ask again in ms (a 429 pause, or the next slot is further than the limit).
# The budget is a GCRA: `burst` messages at once, then one per interval.
_TAKE_TURN = """
local pause = redis.call('PTTL', KEYS[1])
if pause > 0 then return {0, pause} end
if #KEYS < 2 then return {1, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[2]) or now)
if tat < now then tat = now end
local send_at = tat - (burst - 1) * interval
if send_at < now then send_at = now end
if limit >= 0 and send_at - now > limit then return {0, send_at - now} end
local new_tat = tat + interval
redis.call('SET', KEYS[2], new_tat, 'PX', new_tat - now + 1000)
return {1, send_at - now}
"""

# Slack said 429 with Retry-After: pause the method (never shortening a longer pause), and for a
# post push the channel's budget back so that after the pause it starts again one at a time.
_PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
if #KEYS < 2 then return 1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_tat = now + ms + (tonumber(ARGV[3]) - 1) * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[2]) or 0)
if tat < until_tat then
  redis.call('SET', KEYS[2], until_tat, 'PX', until_tat - now + 1000)
end
return 1
"""

# The flush marker says who flushes a message: 'queued' (a flush job is on the queue) or the
# owning flush job's id. It always has a TTL, so a flush job that is lost lets the next request
# schedule another.

# Store the newest wanted state of a message; 1 when no flush is scheduled yet (the caller
# queues one).
_SET_PENDING = """
redis.call('HSET', KEYS[1], 'payload', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('SET', KEYS[2], 'queued', 'NX', 'PX', ARGV[3]) then return 1 end
return 0
"""

# A flush (ARGV[1]) takes the message unless another flush owns it; answers the pending
# {payload, version}, or nothing when there is nothing to send or it is not ours.
_CLAIM = """
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= 'queued' and owner ~= ARGV[1] then return false end
local pending = redis.call('HMGET', KEYS[1], 'payload', 'version')
if not pending[1] then
  if owner then redis.call('DEL', KEYS[2]) end
  return false
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return pending
"""

# The flush ARGV[2] is done with version ARGV[1] (sent, or refused for good). Finished (1) unless
# a newer state arrived meanwhile (0: send again); a message another flush took over is that
# flush's to finish.
_FINISH = """
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[2] then return 1 end
local v = redis.call('HGET', KEYS[1], 'version')
if v and v ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""

# The flush ARGV[1] comes back in ARGV[2] ms: it keeps the message that long (and a flush's run
# more), so newer requests wait for it instead of queueing a second flush. 0: not ours any more.
_HOLD = """
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Turn:
    """The answer to "may I call now": `reserved` a channel slot (or no budget applies), and
    the seconds to wait; unreserved means ask again after `wait` (a pause, or no slot soon)."""

    reserved: bool
    wait: float


@dataclass(frozen=True)
class PendingUpdate:
    payload: dict[str, Any]
    version: str


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


class SlackLimits:
    """Budgets, 429 pauses and pending edits for Slack, shared through Redis."""

    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis
        self._take_turn = redis.register_script(_TAKE_TURN)
        self._pause = redis.register_script(_PAUSE)
        self._set_pending = redis.register_script(_SET_PENDING)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._hold = redis.register_script(_HOLD)

    # -- calls: 429 pauses and the channel budget -------------------------------------------

    async def take_turn(
        self,
        method: str,
        channel: str | None = None,
        rate: float = 1.0,
        burst: int = 1,
        max_wait: float | None = None,
    ) -> Turn:
        """May `method` be called now? With a channel, a slot in its budget is reserved, unless
        it is further away than `max_wait`."""
        keys = [slack_pause_key(method)]
        if channel is not None:
            keys.append(channel_budget_key(channel))
        limit = -1 if max_wait is None else int(max_wait * 1000)
        reserved, ms = await self._take_turn(keys=keys, args=[_ms(1 / rate), burst, limit])
        return Turn(bool(reserved), int(ms) / 1000)

    async def paused_for(self, method: str) -> float:
        """Seconds until `method` may be called again (0 when it is not paused)."""
        ms = await self.redis.pttl(slack_pause_key(method))
        return max(int(ms), 0) / 1000

    async def pause(
        self,
        method: str,
        seconds: float,
        *,
        channel: str | None = None,
        rate: float = 1.0,
        burst: int = 1,
    ) -> None:
        """Slack said 429 with Retry-After `seconds`: hold every replica's calls of `method`
        (and push back `channel`'s budget)."""
        keys = [slack_pause_key(method)]
        if channel is not None:
            keys.append(channel_budget_key(channel))
        await self._pause(keys=keys, args=[_ms(seconds), _ms(1 / rate), burst])

    # -- pending edits ----------------------------------------------------------------------

    async def set_pending_update(self, channel: str, ts: str, payload: dict[str, Any]) -> bool:
        """Record the newest state of a message; True when the caller must queue a flush."""
        keys = [pending_update_key(channel, ts), flush_marker_key(channel, ts)]
        args: list[str | int] = [
            json.dumps(payload),
            PENDING_UPDATE_TTL,
            FLUSH_CLAIM_SECONDS * 1000,
        ]
        return bool(await self._set_pending(keys=keys, args=args))

    async def claim_pending_update(self, channel: str, ts: str, owner: str) -> PendingUpdate | None:
        """The state flush `owner` must send now; None when none is pending or another flush
        owns the message."""
        keys = [pending_update_key(channel, ts), flush_marker_key(channel, ts)]
        found = await self._claim(keys=keys, args=[owner, FLUSH_CLAIM_SECONDS * 1000])
        if not found:
            return None
        payload, version = found
        return PendingUpdate(json.loads(payload), version.decode())

    async def finish_pending_update(self, channel: str, ts: str, owner: str, version: str) -> bool:
        """Flush `owner` is done with `version`; False if a newer state came (send that too)."""
        keys = [pending_update_key(channel, ts), flush_marker_key(channel, ts)]
        return bool(await self._finish(keys=keys, args=[version, owner]))

    async def hold_pending_update(self, channel: str, ts: str, owner: str, seconds: float) -> bool:
        """Flush `owner` will come back in `seconds`; False when another flush owns it now."""
        keys = [pending_update_key(channel, ts), flush_marker_key(channel, ts)]
        ms = _ms(seconds) + FLUSH_CLAIM_SECONDS * 1000
        return bool(await self._hold(keys=keys, args=[owner, ms]))
