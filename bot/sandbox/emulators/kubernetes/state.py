"""The emulator an aiohttp app belongs to, for its handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .emulator import KubernetesEmulator

STATE: web.AppKey[KubernetesEmulator] = web.AppKey("kubernetes_emulator")


def emulator_of(request: web.Request) -> KubernetesEmulator:
    return request.app[STATE]
