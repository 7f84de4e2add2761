"""KubernetesEmulator: an in-process Kubernetes API server for kubectl and client libraries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from bot.serving import served

from . import api_discovery, api_objects, api_openapi
from .controls import Controls
from .middleware import make_middleware
from .state import STATE
from .tls import ServerTls

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "opsloop-emulator-token"
DEFAULT_USER = "system:serviceaccount:opsloop:opsloop"


class KubernetesEmulator(Controls):
    """A Kubernetes API server on a local HTTPS port, with simulated controllers."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        user: str = DEFAULT_USER,
        ready_seconds: float = 0.3,
        time_scale: float = 0.01,
    ) -> None:
        super().__init__(ready_seconds=ready_seconds, time_scale=time_scale)
        self.token = token
        # Who the token belongs to, as Forbidden messages name it.
        self.user = user
        # Seconds between BOOKMARK events on watches that allow them.
        self.bookmark_seconds = 1.0
        self.tls = ServerTls()
        self.url: str | None = None
        self.closing = False
        self.add_namespace("default")

    # -- clients --------------------------------------------------------------------------

    @property
    def ca_pem(self) -> bytes:
        """The PEM of the CA that signed the server's certificate."""
        return self.tls.ca_pem

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the emulator (for aiohttp or httpx clients in tests)."""
        return self.tls.client_context()

    def kubeconfig(
        self,
        path: str | os.PathLike[str],
        *,
        context: str = "opsloop-emulator",
        namespace: str | None = None,
        token: str | None = None,
    ) -> Path:
        """Writes a kubeconfig (the CA, the bearer token, one context made current) that
        kubectl and kubernetes-asyncio load unchanged; `token` overrides the right one (to
        test a refusal). The file is readable by its owner alone, as it holds a token."""
        if not self.url:
            raise RuntimeError(
                "the emulator is not serving: use it inside `async with emu.serve()`"
            )
        entry: dict[str, Any] = {"cluster": context, "user": context}
        if namespace:
            entry["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": context,
                    "cluster": {"server": self.url, "certificate-authority-data": self.tls.ca_data},
                }
            ],
            "users": [{"name": context, "user": {"token": token or self.token}}],
            "contexts": [{"name": context, "context": entry}],
            "current-context": context,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(config, out, sort_keys=False)
        return target

    # -- serving --------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[make_middleware(self)], client_max_size=8 * 2**20)
        app[STATE] = self
        api_discovery.add_routes(app)
        api_openapi.add_routes(app)
        api_objects.add_routes(app)
        app.on_shutdown.append(self._on_shutdown)
        app.cleanup_ctx.append(self._controllers)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        self.closing = True

    async def _controllers(self, app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self._control_loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _control_loop(self) -> None:
        while True:
            try:
                self.reconcile()
            except Exception:  # an emulator bug must show, and not stop the controllers
                log.exception("the Kubernetes emulator's controllers failed")
                self.controller_errors += 1
            await asyncio.sleep(max(0.01, min(0.05, self.ready_seconds / 5)))

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serves HTTPS on host:port (0: a free port) and yields `https://host:port`."""
        context = self.tls.server_context()
        try:
            async with served(
                self.make_app(), host, port, ssl_context=context, shutdown_timeout=0.5
            ) as url:
                self.url = url
                self.closing = False
                yield url
        finally:
            self.closing = True
