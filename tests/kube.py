"""The Kubernetes emulator for tests: served, with a kubeconfig, kubectl and raw HTTP to it.

kubectl is the reference client: the machine image has v1.32 from the Google Cloud CLI
packages (Debian's kubernetes-client is too old and conflicts with it: do not install it).
Without kubectl its tests skip on a newcomer's machine and fail in CI (tests/servers.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.sandbox.emulators.kubernetes import KubernetesEmulator
from tests.servers import missing

SHOP_STEPS: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {}},
]


@dataclass
class Ran:
    code: int
    out: str
    err: str


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or the text when it is not JSON


class Kube:
    """One served emulator with a `default`-free namespace `shop`: cart (a Deployment of 2)
    and shop (a Rollout of 5 with SHOP_STEPS), both settled."""

    def __init__(self, emu: KubernetesEmulator, directory: Path) -> None:
        self.emu = emu
        self.directory = directory
        self.config = emu.kubeconfig(directory / "kubeconfig", namespace="shop")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=emu.client_ssl_context())
        )

    async def kubectl(self, *args: str, timeout: float = 20) -> Ran:
        """kubectl with the emulator's kubeconfig; HOME and the cache in the test's folder."""
        kubectl = shutil.which("kubectl")
        assert kubectl is not None
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.directory),
            "KUBECONFIG": str(self.config),
            "KUBECACHEDIR": str(self.directory / "cache"),
        }
        process = await asyncio.create_subprocess_exec(
            kubectl, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        return Ran(process.returncode or 0, out.decode(), err.decode())

    async def ok(self, *args: str, timeout: float = 20) -> str:
        ran = await self.kubectl(*args, timeout=timeout)
        assert ran.code == 0, f"kubectl {' '.join(args)} failed: {ran.err}"
        return ran.out

    async def http(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "default",
        body: Any = None,
        content_type: str = "application/json",
    ) -> Answer:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.emu.token if token == 'default' else token}"
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = content_type
        url = f"{self.emu.url}{path}"
        async with self.session.request(method, url, headers=headers, data=data) as response:
            text = await response.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            return Answer(response.status, dict(response.headers), parsed)

    async def watch_lines(self, path: str, *, limit: int, within: float = 10) -> list[Any]:
        """The first `limit` events of a watch (fewer if the server ends it first)."""
        events: list[Any] = []
        headers = {"Authorization": f"Bearer {self.emu.token}"}

        async def read() -> None:
            async with self.session.get(f"{self.emu.url}{path}", headers=headers) as response:
                assert response.status == 200, await response.text()
                async for line in response.content:
                    if line.strip():
                        events.append(json.loads(line))
                    if len(events) >= limit:
                        return

        await asyncio.wait_for(read(), within)
        return events


@asynccontextmanager
async def served_kube(directory: Path, *, need_kubectl: bool = True) -> AsyncIterator[Kube]:
    if need_kubectl and shutil.which("kubectl") is None:
        missing("no kubectl on PATH (the Google Cloud CLI's kubectl package, not Debian's)")
    emu = KubernetesEmulator(ready_seconds=0.2)
    emu.add_deployment("shop", "cart", image="registry.example/cart:1", replicas=2)
    emu.add_rollout("shop", "shop", image="registry.example/shop:1", replicas=5, steps=SHOP_STEPS)
    async with emu.serve():
        kube = Kube(emu, directory)
        try:
            yield kube
        finally:
            await kube.session.close()
