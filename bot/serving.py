"""Serving an aiohttp app on a local port for as long as a block runs (emulators, tests)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def served(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    shutdown_timeout: float = 2.0,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[str]:
    """Run `app` on host:port (0: a free port the OS picks) and yield its base URL
    (`https://` when an `ssl_context` is given, as the Kubernetes emulator needs)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
        scheme = "https" if ssl_context is not None else "http"
        yield f"{scheme}://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
