"""The Kubernetes emulator as the bot's cluster: served on a free port, with a kubeconfig
for the bot, and the patches it received (tests/kube.py drives it with kubectl instead).

async with running_cluster(tmp_path) as kube:
    kube.emu.add_rollout("shop", "shop", image="registry.example.com/shop:1")
    async with running_bot(redis_url, config=..., **kube.env) as bot: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.sandbox.emulators.kubernetes import KubernetesEmulator


@dataclass
class Cluster:
    emu: KubernetesEmulator
    kubeconfig: Path

    @property
    def env(self) -> dict[str, Any]:
        """The settings that point the bot at the emulator."""
        return {"OPSLOOP_KUBECONFIG": str(self.kubeconfig), "OPSLOOP_DEPLOY_POLL_SECONDS": 0.2}

    def patches(self, path: str) -> list[Any]:
        """The bodies of the PATCH requests to `path` (a glob), in order."""
        return [r.body for r in self.emu.requests_to(path, "PATCH")]

    def sent(self, path: str, body: Any) -> int:
        """How many PATCH requests to `path` carried exactly `body`."""
        return sum(1 for b in self.patches(path) if b == body)


@asynccontextmanager
async def running_cluster(directory: Path, **kwargs: Any) -> AsyncIterator[Cluster]:
    emu = KubernetesEmulator(**kwargs)
    async with emu.serve():
        yield Cluster(emu, emu.kubeconfig(directory / "kubeconfig"))
