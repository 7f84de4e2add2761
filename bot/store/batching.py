"""One Lua script on the ack path, pipelined over a connection of its own.

Every acknowledged Slack request and webhook stores its job with one script call before the
answer goes out, so that call's cost is the ack's cost. Through redis-py's pool each call takes
the pool lock, runs a connection health check and makes its own round trip, about 150 us of
CPU. Here redis-py only opens the connection (TLS, AUTH, Sentinel, SELECT); the calls then go
over it pipelined:

- writes: a call with nothing else in flight is written at once; calls made while others are
  in flight are held to the end of the event-loop turn and go out together in one write, so
  under load many requests share one system call instead of paying one each, and a lone
  request waits for nothing;
- replies: the connection's transport is handed to a small asyncio protocol that feeds hiredis
  (redis-py's own C parser) and resolves each caller's future straight from `data_received`.
  Redis answers a connection's commands in the order they were sent, so the oldest waiter gets
  each reply. Going through a reader task instead costs an extra task switch per reply, which
  at one request at a time is a measurable share of the ack;
- a call is `send` (written at once, or with the turn's batch) then `Sent.reply()`, which
  also loads the script again when Redis has forgotten it.

A Redis that accepts the connection but stops answering (a paused process, a lost network
path) would hold every caller until TCP gives up. A watchdog per connection fails the callers
with `Unconfirmed` once the oldest command has waited `answer_within` seconds, and drops the
connection; a timer per call would cost the ack path more than the rest of this module.

The command is packed here, since redis-py's general packer costs more than the rest of this
path.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

log = logging.getLogger(__name__)

Arg = str | bytes | int | float

ANSWER_WITHIN = 1.6  # s; with the watchdog's period, callers hear within 1.8 s (Slack: 3 s)


class Unconfirmed(TimeoutError):
    """Redis did not answer a command that was sent to it: it may still carry it out."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Redis did not answer within {seconds:g} s")
        self.seconds = seconds


class NotSent(RedisConnectionError):
    """Redis cannot have carried the command out: it never left this process (no connection,
    or it failed first), or Redis refused it while loading its data after a restart. Saying
    "nothing was done" is then true."""


def _refusal(reply: ResponseError) -> Exception:
    """The exception for an error reply: NOSCRIPT (load the script again) and LOADING (Redis
    is starting and ran nothing) are told apart from the script's own errors."""
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    if message.startswith("LOADING"):
        return NotSent("Redis is loading its data after a restart and ran nothing")
    return reply


def pack(*args: Arg) -> bytes:
    """A command in RESP, Redis's wire format: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


class _Replies(asyncio.Protocol):
    """Reads a pipelined connection: each reply resolves the oldest waiting future."""

    def __init__(self, on_lost: Callable[[_Replies, BaseException], None]) -> None:
        # Each caller's future, and the loop time its command was queued.
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._parser = hiredis.Reader(replyError=ResponseError)
        self._on_lost = on_lost

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        try:
            while (reply := self._parser.gets()) is not False:
                future, _ = self.waiting.popleft()
                if future.done():  # its caller was cancelled; the reply is still its own
                    continue
                if isinstance(reply, ResponseError):
                    # An error reply answers one command; the connection stays usable.
                    future.set_exception(_refusal(reply))
                else:
                    future.set_result(reply)
        except Exception as e:  # a protocol error, or a reply nobody asked for
            self._on_lost(self, e)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(self, exc or RedisConnectionError("Redis closed the connection"))


class Sent:
    """A script call on its way to Redis; `await sent.reply()` for Redis's answer."""

    __slots__ = ("_answer_within", "_args", "_future", "_keys", "_script")

    def __init__(
        self,
        script: AsyncScript,
        future: asyncio.Future[Any],
        keys: Sequence[str],
        args: Sequence[Arg],
        answer_within: float,
    ) -> None:
        self._script, self._future, self._keys, self._args = script, future, keys, args
        self._answer_within = answer_within

    async def reply(self) -> Any:
        try:
            return await self._future
        except NoScriptError:
            pass
        # Redis restarted or was flushed: the pool's client loads the script again, within the
        # same bound as the pipelined call, since Redis may stop answering in between.
        try:
            async with asyncio.timeout(self._answer_within):
                return await self._script(keys=list(self._keys), args=list(self._args))
        except TimeoutError:
            raise Unconfirmed(self._answer_within) from None


class PipelinedScript:
    """Calls one Lua script for many concurrent callers over one pipelined connection."""

    def __init__(self, redis: Redis, source: str, *, answer_within: float = ANSWER_WITHIN) -> None:
        self._redis = redis
        self._answer_within = answer_within
        self._script = redis.register_script(source)
        self._sha = self._script.sha.encode()
        self._conn: AbstractConnection | None = None
        self._transport: asyncio.WriteTransport | None = None
        self._replies: _Replies | None = None
        self._connecting: asyncio.Lock | None = None
        self._later: list[bytes] = []  # held to the end of this loop turn
        self._flush_scheduled = False
        self._closing: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        sent = self.send(keys, args)
        if sent is None:
            await self._connect()
            sent = self.send(keys, args)
            if sent is None:
                raise NotSent("the Redis connection closed before the command was sent")
        return await sent.reply()

    def send(self, keys: Sequence[str], args: Sequence[Arg]) -> Sent | None:
        """Send the call now, without waiting for its reply; None when no connection is open
        (awaiting the call instead opens one)."""
        transport, replies = self._transport, self._replies
        if transport is None or replies is None or transport.is_closing():
            return None
        command = pack(b"EVALSHA", self._sha, len(keys), *keys, *args)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        replies.waiting.append((future, loop.time()))
        if len(replies.waiting) == 1:
            transport.write(command)  # nothing else in flight: go now
        else:
            # Others are in flight, so more calls are likely this turn: they go out together.
            self._later.append(command)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
        return Sent(self._script, future, keys, args, self._answer_within)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._later:
            return
        later, self._later = self._later, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(later))
        # Otherwise the connection was lost and every waiter has been failed already.

    async def _connect(self) -> None:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._transport is not None:
                return
            conn = self._redis.connection_pool.make_connection()  # type: ignore[no-untyped-call]
            try:
                # A hung Redis can accept the connection and then not answer its handshake.
                async with asyncio.timeout(self._answer_within):
                    await conn.connect()
            except TimeoutError:
                await conn.disconnect(nowait=True)
                raise NotSent("Redis did not answer while connecting") from None
            except (OSError, RedisConnectionError) as e:
                raise NotSent(f"could not connect to Redis ({type(e).__name__})") from e
            writer = conn._writer
            if writer is None:
                raise NotSent("Redis connection closed while connecting")
            replies = _Replies(self._lost)
            # From here on the replies come to `replies`, not to redis-py's stream reader.
            writer.transport.set_protocol(replies)
            self._conn, self._transport, self._replies = conn, writer.transport, replies
            if self._watchdog is None or self._watchdog.done():
                self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Fail the callers of a connection whose oldest command has waited too long."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._answer_within / 8)
            replies = self._replies
            if replies is None:
                return  # the next connection starts a new watchdog
            if replies.waiting and loop.time() - replies.waiting[0][1] > self._answer_within:
                log.warning("Redis has not answered for %.1f s; reconnecting", self._answer_within)
                self._lost(replies, Unconfirmed(self._answer_within))

    def _lost(self, replies: _Replies, error: BaseException) -> None:
        """The connection failed: fail every caller waiting on it and start afresh next time."""
        unsent = 0
        if replies is self._replies:
            conn = self._conn
            unsent = len(self._later)  # the newest callers; their commands never left
            self._conn, self._transport, self._replies, self._later = None, None, None, []
            if conn is not None:
                # Closes the transport; without waiting, since redis-py's stream reader no
                # longer hears of the connection's end.
                task = asyncio.get_running_loop().create_task(conn.disconnect(nowait=True))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        waiting, replies.waiting = replies.waiting, collections.deque()
        if not isinstance(error, Exception):
            error = RedisConnectionError("cancelled")
        never_sent = NotSent("the Redis connection failed before this was sent")
        for i, (future, _) in enumerate(waiting):
            if not future.done():
                future.set_exception(error if i < len(waiting) - unsent else never_sent)

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._replies is not None:
            self._lost(self._replies, RedisConnectionError("closed"))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
