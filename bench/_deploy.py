"""Pieces of `bench.deploy_flow`: a fresh dockerd, the engine's own view, and the baselines.

`python -m bench._deploy bare-action --api-url URL` is the ack baseline: a bare slack-bolt
`AsyncApp` with `process_before_response=True` whose only listener acks the Approve button
(action_id `deploy_approve`), behind Bolt's stock aiohttp adapter, as bench/_servers.py serves
its bare `/ops` apps. Like them it binds port 0 on loopback, prints `PORT <n>` once it listens,
stops on SIGTERM and takes its secrets from the environment (SLACK_BOT_TOKEN,
SLACK_SIGNING_SECRET).

The rest runs in the bench's own process:

- `fresh_engine()`: a dockerd of its own (tests/dockerd_server.py's `DockerEngine`: its own
  socket, data and exec roots, `--bridge=none`, no iptables), with local/app:1 (no healthcheck)
  and local/app:2 (HEALTHCHECK every second) built from busybox-static; on the way out, also on
  Ctrl-C, its containers are removed, dockerd is stopped by its PID and its directory deleted.
- `watch_plan()`: polls the engine's own container list (docker SDK, labels opsloop.service and
  opsloop.version) until exactly a plan of `{version: containers}` runs and nothing else of the
  service exists. The same observer times opsloop and the bare baseline.
- `BareService`: the container changes opsloop's Docker deployer makes for a step
  (integrations/docker/engine.py, `scale_to`), made directly with the docker SDK: create and
  start the new containers one by one, wait until each runs (and is healthy where the image has
  a healthcheck), then stop and remove the surplus in parallel. Same image, labels and options
  (`network_mode: host`, restart policy unless-stopped), no Redis, Slack or job queue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bench._servers import announce_and_wait
from bot.deploys.messages import DeployAction
from integrations.docker.shapes import LABEL_MANAGED, LABEL_SERVICE, LABEL_VERSION

IMAGE = "local/app"
OBSERVE_POLL = 0.025  # seconds between two looks at the engine's container list
BARE_POLL = 0.05  # seconds between readiness checks of the bare baseline
STOP_TIMEOUT = 10  # seconds a removed container gets to exit on SIGTERM (opsloop's default)
CLIENT_TIMEOUT = 30


class EngineError(Exception):
    """dockerd could not be started here (not installed, not root, did not come up)."""


# -- a fresh engine -------------------------------------------------------------------------


def engine_missing() -> str | None:
    """Why no dockerd can be started here, or None (the tests' own reasons)."""
    from tests.dockerd_server import why_no_dockerd

    return why_no_dockerd()


@contextlib.contextmanager
def fresh_engine() -> Iterator[Any]:
    """A started dockerd with local/app:1 and :2; stopped and its directory removed after."""
    from tests.dockerd_server import DockerEngine

    reason = engine_missing()
    if reason is not None:
        raise EngineError(reason)
    binary, busybox = shutil.which("dockerd"), shutil.which("busybox")
    assert binary is not None and busybox is not None
    # A unix socket path must stay under 108 bytes: a short directory right under /tmp.
    engine = DockerEngine(binary, Path(tempfile.mkdtemp(prefix="odb", dir="/tmp")))
    try:
        try:
            engine.start()
        except RuntimeError as e:
            raise EngineError(str(e)) from e
        engine.build_images(busybox)
        yield engine
    finally:
        engine.stop()
        engine.remove_directory()


def docker_client(url: str) -> Any:
    import docker

    return docker.DockerClient(base_url=url, timeout=CLIENT_TIMEOUT)


# -- the engine's own view ------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """One look at a service's containers on the engine."""

    running: dict[str, int]  # running containers per version
    containers: int  # every container of the service, in any state

    def matches(self, plan: Mapping[str, int]) -> bool:
        wanted = {v: n for v, n in plan.items() if n}
        return self.running == wanted and self.containers == sum(wanted.values())


def look(client: Any, service: str) -> Look:
    """The engine's list of the service's containers: one call (GET /containers/json), not
    the SDK's containers.list(), which inspects each one and fails on one removed meanwhile."""
    found = client.api.containers(all=True, filters={"label": f"{LABEL_SERVICE}={service}"})
    running: dict[str, int] = {}
    for c in found:
        if c.get("State") == "running":
            version = str((c.get("Labels") or {}).get(LABEL_VERSION, ""))
            running[version] = running.get(version, 0) + 1
    return Look(running, len(found))


@dataclass
class Sighting:
    """When a plan was first seen on the engine, and what was seen on the way."""

    seconds: float  # from t0 until the look that saw the plan returned; NaN: not in time
    first_change_s: float  # from t0 until a look first differed from the first one; NaN: none
    min_running: int  # fewest running containers of the service seen meanwhile
    max_containers: int  # most containers of the service (any state) seen meanwhile
    last: Look | None


async def watch_plan(
    client: Any, service: str, plan: Mapping[str, int], t0: float, within: float
) -> Sighting:
    """Poll the engine (in a thread: the event loop serves Slack's side meanwhile) until
    exactly `plan` runs; time it from `t0` (time.perf_counter), give up `within` s later."""
    deadline = t0 + within
    seen = Sighting(math.nan, math.nan, sys.maxsize, 0, None)
    first: Look | None = None
    while True:
        now = await asyncio.to_thread(look, client, service)
        returned = time.perf_counter()
        first = first or now
        if now != first and math.isnan(seen.first_change_s):
            seen.first_change_s = returned - t0
        seen.last = now
        seen.min_running = min(seen.min_running, sum(now.running.values()))
        seen.max_containers = max(seen.max_containers, now.containers)
        if now.matches(plan):
            seen.seconds = returned - t0
            return seen
        if returned >= deadline:
            return seen
        await asyncio.sleep(OBSERVE_POLL)


# -- the bare baseline: the same container changes, straight through the docker SDK ---------


def _health(attrs: Mapping[str, Any]) -> str | None:
    health = (attrs.get("State") or {}).get("Health")
    status = health.get("Status") if isinstance(health, dict) else None
    return status if isinstance(status, str) and status != "none" else None


class BareService:
    """A service's containers made and removed with the docker SDK alone (calls are sync:
    run them with asyncio.to_thread)."""

    def __init__(self, client: Any, service: str) -> None:
        self.client = client
        self.service = service
        self.made = 0

    def create_start(self, version: str) -> Any:
        self.made += 1
        container = self.client.containers.create(
            f"{IMAGE}:{version}",
            name=f"{self.service}-{version}-{self.made}",
            labels={LABEL_SERVICE: self.service, LABEL_VERSION: version, LABEL_MANAGED: "1"},
            detach=True,
            network_mode="host",
            restart_policy={"Name": "unless-stopped"},
        )
        container.start()
        return container

    @staticmethod
    def all_ready(containers: list[Any]) -> bool:
        """Every one running, and healthy where its image has a healthcheck."""
        for c in containers:
            c.reload()
            state = c.attrs.get("State") or {}
            status = state.get("Status")
            if status in ("exited", "dead") or _health(c.attrs) == "unhealthy":
                raise RuntimeError(f"bare baseline: container {c.name} is {status}")
            if status != "running" or _health(c.attrs) not in (None, "healthy"):
                return False
        return True

    def _listed(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.client.api.containers(
            all=True, filters={"label": f"{LABEL_SERVICE}={self.service}"}
        )
        return found

    def surplus(self, plan: Mapping[str, int]) -> list[str]:
        """Ids of containers beyond `plan`, newest of each version first (as opsloop picks)."""
        by_version: dict[str, list[tuple[int, str]]] = {}
        for c in self._listed():
            version = str((c.get("Labels") or {}).get(LABEL_VERSION, ""))
            index = int(c["Names"][0].rsplit("-", 1)[-1])
            by_version.setdefault(version, []).append((index, c["Id"]))
        doomed: list[str] = []
        for version, containers in by_version.items():
            doomed += [cid for _, cid in sorted(containers)[plan.get(version, 0) :]]
        return doomed

    def remove(self, ids: list[str]) -> None:
        """Stop (SIGTERM, then SIGKILL after the stop timeout) and remove, all in parallel."""
        if not ids:
            return
        api = self.client.api

        def one(cid: str) -> None:
            api.stop(cid, timeout=STOP_TIMEOUT)
            api.remove_container(cid, force=True)

        with ThreadPoolExecutor(max_workers=min(8, len(ids))) as pool:
            for done in [pool.submit(one, cid) for cid in ids]:
                done.result()

    def remove_everything(self) -> None:
        for c in self._listed():
            self.client.api.remove_container(c["Id"], force=True)


async def bare_step(
    bare: BareService, before: Mapping[str, int], after: Mapping[str, int], within: float
) -> float:
    """Go from plan `before` to plan `after`; seconds until the last SDK call returned."""
    started = time.perf_counter()
    created = []
    for version, count in after.items():
        for _ in range(max(count - before.get(version, 0), 0)):
            created.append(await asyncio.to_thread(bare.create_start, version))
    while not await asyncio.to_thread(bare.all_ready, created):
        if time.perf_counter() - started > within:
            raise TimeoutError(f"bare baseline: new containers not ready within {within:g} s")
        await asyncio.sleep(BARE_POLL)
    await asyncio.to_thread(bare.remove, await asyncio.to_thread(bare.surplus, after))
    return time.perf_counter() - started


# -- the bare Bolt app (the ack baseline) ---------------------------------------------------


def bare_action_app(api_url: str, token: str, secret: str) -> web.Application:
    """An AsyncApp whose only listener acks the Approve button, inline."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    bolt = AsyncApp(
        client=AsyncWebClient(token=token, base_url=api_url),
        signing_secret=secret,
        process_before_response=True,
    )

    @bolt.action(str(DeployAction.APPROVE))
    async def approve(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    return app


async def _serve(app: web.Application) -> None:
    # No access log, as opsloop serve and bench/_servers.py's bare apps.
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await announce_and_wait(runner, runner.addresses[0][1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._deploy")
    parser.add_argument("kind", choices=["bare-action"])
    parser.add_argument("--api-url", required=True, help="Slack Web API base URL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)  # before Bolt copies the root level
    token = os.environ.get("SLACK_BOT_TOKEN", "")
    secret = os.environ.get("SLACK_SIGNING_SECRET", "")
    asyncio.run(_serve(bare_action_app(args.api_url, token, secret)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
