"""One Redis client from any URL the contract allows: redis://, rediss://, unix://, Sentinel.

The client is arq's `ArqRedis` (a `redis.asyncio.Redis`), so the job queue and the store share
one connection pool.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from bot.errors import SettingsError
from bot.redact import hide_userinfo

DEFAULT_SENTINEL_PORT = 26379


def _sentinel_pool(url: str) -> ConnectionPool:
    """`redis+sentinel://[:password@]host[:port][,host2[:port]]/service[/db]`."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    password = unquote(netloc[0].split(":", 1)[-1]) if len(netloc) == 2 else None
    hosts = []
    for item in netloc[-1].split(","):
        host, _, port = item.partition(":")
        hosts.append((host or "127.0.0.1", int(port) if port else DEFAULT_SENTINEL_PORT))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise SettingsError(
            "OPSLOOP_REDIS_URL: a Sentinel URL needs the service name, "
            "e.g. redis+sentinel://sentinel1:26379,sentinel2:26379/mymaster"
        )
    db = int(path[1]) if len(path) > 1 else int(parse_qs(parts.query).get("db", ["0"])[0])
    kwargs = {"password": password} if password else {}
    sentinel = Sentinel(hosts, sentinel_kwargs=kwargs)  # type: ignore[no-untyped-call]
    return SentinelConnectionPool(  # type: ignore[no-untyped-call]
        path[0], sentinel, password=password, db=db
    )


def connect(url: str, *, max_connections: int = 64) -> ArqRedis:
    """A client for `url`; nothing is sent until first use."""
    try:
        if url.startswith("redis+sentinel://"):
            pool = _sentinel_pool(url)
        else:
            pool = ConnectionPool.from_url(url, max_connections=max_connections)
    except (ValueError, IndexError) as e:
        # redis-py may quote the URL: without its password.
        raise SettingsError(f"OPSLOOP_REDIS_URL: cannot be used: {hide_userinfo(str(e))}") from None
    return ArqRedis(connection_pool=pool)


def describe(url: str) -> str:
    """The URL without its password, for logs and /ops status."""
    return hide_userinfo(url)


async def close(client: ArqRedis) -> None:
    """Close the client, its pool, and with Sentinel the connections to the sentinels too."""
    pool = client.connection_pool
    await client.aclose(close_connection_pool=True)
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()
