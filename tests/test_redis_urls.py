"""Every Redis the contract allows: embedded (kept across restarts), TCP, unix socket, Sentinel."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from bot.embedded_redis import EmbeddedRedis
from bot.errors import SettingsError
from bot.redis_conn import close, connect, describe
from tests.servers import RedisServer, free_port, missing, redis_binary


def binary() -> str:
    found = redis_binary()
    if found is None:
        missing("no redis-server binary")
    assert found is not None
    return found


async def test_embedded_redis_keeps_data_across_restarts(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path / "data")
    url = first.start()
    client = connect(url)
    await client.set("opsloop:test", "kept")
    await close(client)
    first.stop()

    second = EmbeddedRedis(tmp_path / "data")
    client = connect(second.start())
    try:
        assert await client.get("opsloop:test") == b"kept"
    finally:
        await close(client)
        second.stop()


async def test_a_second_process_joins_the_running_embedded_redis(tmp_path: Path) -> None:
    owner = EmbeddedRedis(tmp_path / "data")
    joiner = EmbeddedRedis(tmp_path / "data")
    try:
        assert owner.start() == joiner.start()
        assert joiner._process is None  # it joined rather than starting a second server
        joiner.stop()  # a joiner does not stop the owner's server
        client = connect(owner.url)
        assert await client.ping()
        await close(client)
    finally:
        owner.stop()


def test_embedded_redis_refuses_a_socket_path_that_is_too_long(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="OPSLOOP_DATA_DIR"):
        EmbeddedRedis(tmp_path / ("x" * 120)).start()


async def test_unix_socket_url(tmp_path: Path) -> None:
    sock = tmp_path / "r.sock"
    proc = subprocess.Popen(
        [binary(), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.02)
        client = connect(f"unix://{sock}")
        assert await client.ping()
        await close(client)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_sentinel_url_finds_the_master(tmp_path: Path, redis_server: RedisServer) -> None:
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor opsmaster 127.0.0.1 {redis_server.port} 1\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        client = connect(f"redis+sentinel://127.0.0.1:{port}/opsmaster/0")
        deadline = time.monotonic() + 10
        while True:
            try:
                await client.set("opsloop:sentinel", "yes")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert await client.get("opsloop:sentinel") == b"yes"
        await close(client)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_passwords_are_hidden_in_descriptions() -> None:
    assert describe("redis://:hunter22@db:6379/0") == "redis://***@db:6379/0"
    assert "hunter22" not in describe("rediss://user:hunter22@db:6380")
