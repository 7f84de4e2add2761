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
  at one request at a time is a measurable share of the ack.

The command is packed here, since redis-py's general packer costs more than the rest of this
path.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

log = logging.getLogger(__name__)

Arg = str | bytes | int | float


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
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._parser = hiredis.Reader(replyError=ResponseError)
        self._on_lost = on_lost

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        try:
            while (reply := self._parser.gets()) is not False:
                future = self.waiting.popleft()
                if future.done():  # its caller was cancelled; the reply is still its own
                    continue
                if isinstance(reply, ResponseError):
                    # An error reply answers one command; the connection stays usable.
                    message = str(reply)
                    error = NoScriptError(message) if message.startswith("NOSCRIPT") else reply
                    future.set_exception(error)
                else:
                    future.set_result(reply)
        except Exception as e:  # a protocol error, or a reply nobody asked for
            self._on_lost(self, e)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(self, exc or RedisConnectionError("Redis closed the connection"))


class PipelinedScript:
    """Calls one Lua script for many concurrent callers over one pipelined connection."""

    def __init__(self, redis: Redis, source: str) -> None:
        self._redis = redis
        self._script = redis.register_script(source)
        self._sha = self._script.sha.encode()
        self._conn: AbstractConnection | None = None
        self._transport: asyncio.WriteTransport | None = None
        self._replies: _Replies | None = None
        self._connecting: asyncio.Lock | None = None
        self._later: list[bytes] = []  # held to the end of this loop turn
        self._flush_scheduled = False
        self._closing: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        try:
            return await self._call(keys, args)
        except NoScriptError:
            # Redis restarted or was flushed: the pool's client loads the script again.
            return await self._script(keys=list(keys), args=list(args))

    async def _call(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        if self._transport is None or self._replies is None:
            await self._connect()
        transport, replies = self._transport, self._replies
        if transport is None or replies is None or transport.is_closing():
            raise RedisConnectionError("Redis connection closed")
        command = pack(b"EVALSHA", self._sha, len(keys), *keys, *args)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        replies.waiting.append(future)
        if len(replies.waiting) == 1:
            transport.write(command)  # nothing else in flight: go now
        else:
            # Others are in flight, so more calls are likely this turn: they go out together.
            self._later.append(command)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
        return await future

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
            await conn.connect()
            writer = conn._writer
            if writer is None:
                raise RedisConnectionError("Redis connection closed while connecting")
            replies = _Replies(self._lost)
            # From here on the replies come to `replies`, not to redis-py's stream reader.
            writer.transport.set_protocol(replies)
            self._conn, self._transport, self._replies = conn, writer.transport, replies

    def _lost(self, replies: _Replies, error: BaseException) -> None:
        """The connection failed: fail every caller waiting on it and start afresh next time."""
        if replies is self._replies:
            conn = self._conn
            self._conn, self._transport, self._replies, self._later = None, None, None, []
            if conn is not None:
                # Closes the transport; without waiting, since redis-py's stream reader no
                # longer hears of the connection's end.
                task = asyncio.get_running_loop().create_task(conn.disconnect(nowait=True))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        waiting, replies.waiting = replies.waiting, collections.deque()
        for future in waiting:
            if not future.done():
                future.set_exception(
                    error if isinstance(error, Exception) else RedisConnectionError("cancelled")
                )

    async def close(self) -> None:
        if self._replies is not None:
            self._lost(self._replies, RedisConnectionError("closed"))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
