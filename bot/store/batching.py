"""One Lua script on the ack path, pipelined over a connection of its own.

Every acknowledged Slack request and webhook stores its job with one script call before the
answer goes out, so that call's cost is the ack's cost. Through redis-py's pool each call takes
the pool lock, runs a connection health check and makes its own round trip, about 150 us of
CPU. Here each call is written to a dedicated connection at once, without waiting for earlier
replies, and one reader task hands the replies back in order (Redis answers a connection's
commands in the order they were sent). redis-py connects (TLS, AUTH, Sentinel) and parses the
replies; the command itself is packed here, since redis-py's general packer costs more than the
rest of this path.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
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


class PipelinedScript:
    """Calls one Lua script for many concurrent callers over one pipelined connection."""

    def __init__(self, redis: Redis, source: str) -> None:
        self._redis = redis
        self._script = redis.register_script(source)
        self._sha = self._script.sha.encode()
        self._conn: AbstractConnection | None = None
        self._connecting: asyncio.Lock | None = None
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._reader: asyncio.Task[None] | None = None

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        try:
            return await self._call(keys, args)
        except NoScriptError:
            # Redis restarted or was flushed: the pool's client loads the script again.
            return await self._script(keys=list(keys), args=list(args))

    async def _call(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        conn = self._conn if self._conn is not None else await self._connect()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        writer = conn._writer
        if writer is None:  # dropped between connect and now
            await self._drop(ConnectionError("Redis connection closed"))
            raise ConnectionError("Redis connection closed")
        writer.write(pack(b"EVALSHA", self._sha, len(keys), *keys, *args))
        self._waiting.append(future)
        if self._reader is None or self._reader.done():
            # One reader for the connection's life: it sleeps in the socket read when idle.
            self._reader = asyncio.create_task(self._read(conn))
        return await future

    async def _connect(self) -> AbstractConnection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._conn is None:
                conn = self._redis.connection_pool.make_connection()  # type: ignore[no-untyped-call]
                await conn.connect()
                self._conn = conn
            return self._conn

    async def _read(self, conn: AbstractConnection) -> None:
        while True:
            try:
                reply = await conn.read_response()
            except ResponseError as e:
                # An error reply answers one command; the connection stays usable.
                failed = self._waiting.popleft()
                if not failed.done():
                    failed.set_exception(e)
                continue
            except Exception as e:
                await self._drop(e)
                return
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(reply)

    async def _drop(self, error: BaseException) -> None:
        """The connection failed: fail every caller waiting on it and start afresh next time."""
        conn, self._conn = self._conn, None
        waiting, self._waiting = self._waiting, collections.deque()
        for future in waiting:
            if not future.done():
                future.set_exception(
                    error if isinstance(error, Exception) else ConnectionError("cancelled")
                )
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self._drop(ConnectionError("closed"))
