"""`/deploy` in `opsloop sandbox`, driven through the page's own control routes.

The sandbox runs as a newcomer starts it (`python -m bot sandbox`, no YAML file); the tests act
as the sample people through `/_emulator/command` and `/_emulator/action`, exactly what the page
sends, and read the workspace back from `/_emulator/state`. The `api` service deploys by playing
manual jobs in the emulated GitLab, asked through its REST API; the `web` service runs real
containers on the test dockerd.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import docker.errors
import pytest

from bot.sandbox.deploys import IMAGE, SANDBOX_LABEL
from tests.dockerd_server import DockerEngine
from tests.servers import free_port

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parent.parent
ALICE, BOB = "U0ALICE", "U0BOB"
DEPLOYS = "C0DEPLOYS"
GITLAB_TOKEN = "glpat-sandbox-not-a-secret"  # bot/sandbox/runner.py's, not a secret
NO_DOCKER = "unix:///nonexistent/docker.sock"

Json = dict[str, Any]
# The last line the sandbox prints at start: with its sample services, or with a YAML file's.
LAST_LINE = r"deploys: web on Docker|deploys: none|deploys \(from the YAML file\)"


class Sandbox:
    """A running `opsloop sandbox`: its page URL, the emulated GitLab's URL, what it printed."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.output: list[str] = []
        self.url = ""
        self.gitlab_url = ""
        self.kubeconfig = ""
        self._started = threading.Event()
        # Read everything it prints: an unread pipe would block it once full.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            if found := re.search(r"open (http://\S+)/ in", line):
                self.url = found.group(1)
            if found := re.search(r"emulated GitLab: (http://\S+)\)", line):
                self.gitlab_url = found.group(1)
            if found := re.search(r"kubectl --kubeconfig (\S+) get", line):
                self.kubeconfig = found.group(1)
            if re.search(LAST_LINE, line):
                self._started.set()  # the last start-up line
        self._started.set()

    def wait_started(self, seconds: float) -> None:
        self._started.wait(seconds)
        if not (self.url and self.gitlab_url and self.start_lines()):
            pytest.fail("opsloop sandbox did not start:\n" + "\n".join(self.output))

    def start_lines(self) -> list[str]:
        return [line for line in self.output if re.search(r"deploys( \(.*\))?:", line)]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        return code


@contextmanager
def sandbox(tmp_path: Path, docker_host: str, **settings: str) -> Iterator[Sandbox]:
    """`opsloop sandbox` in `tmp_path` (an opsloop.yml there is its config), with `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    env.pop("DOCKER_HOST", None)
    env.update(
        PYTHONPATH=str(REPO),
        OPSLOOP_DATA_DIR=str(tmp_path / "data"),
        OPSLOOP_DOCKER_HOST=docker_host,
        **settings,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,  # no opsloop.yml or .env of the developer's
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Sandbox(proc)
    try:
        running.wait_started(60)
        yield running
    finally:
        code = running.stop()
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0, "\n".join(running.output)


class Page:
    """What the sandbox page does, as HTTP calls to the page's origin."""

    def __init__(self, http: aiohttp.ClientSession, box: Sandbox) -> None:
        self.http = http
        self.box = box

    async def _post(self, route: str, body: Json) -> Json:
        async with self.http.post(self.box.url + route, json=body) as resp:
            answer: Json = await resp.json()
            assert resp.status == 200, answer
            return answer

    async def command(self, user: str, text: str, channel: str = DEPLOYS) -> Json:
        answer = await self._post(
            "/_emulator/command",
            {"user": user, "channel": channel, "command": "/deploy", "text": text},
        )
        assert answer["status"] == 200, answer
        return answer

    async def click(self, user: str, message: Json, action_id: str) -> Json:
        block_id = next(
            b["block_id"]
            for b in message["blocks"]
            if b.get("type") == "actions"
            and any(e.get("action_id") == action_id for e in b["elements"])
        )
        answer = await self._post(
            "/_emulator/action",
            {
                "user": user,
                "channel": DEPLOYS,
                "message_ts": message["ts"],
                "block_id": block_id,
                "action_id": action_id,
            },
        )
        assert answer["status"] == 200, answer
        return answer

    async def state(self) -> Json:
        async with self.http.get(self.box.url + "/_emulator/state") as resp:
            state: Json = await resp.json()
            return state

    async def info(self) -> Json:
        async with self.http.get(self.box.url + "/_sandbox/info") as resp:
            info: Json = await resp.json()
            return info

    async def deploy_message(
        self, version: str, *, says: str, button: str | None = None, seconds: float = 30
    ) -> Json:
        """The bot's message in #deploys about `version`, once it says `says` (and shows
        `button`, an action_id, when given)."""
        deadline = time.monotonic() + seconds
        last: list[Json] = []
        while time.monotonic() < deadline:
            last = (await self.state())["messages"].get(DEPLOYS, [])
            for m in last:
                if f"`{version}`" not in block_text(m) or says not in m["text"]:
                    continue
                if button is None or button in action_ids(m):
                    return m
            await asyncio.sleep(0.2)
        texts = "\n---\n".join(block_text(m) for m in last)
        pytest.fail(f"no #deploys message for {version} saying {says!r}:\n{texts}")

    async def ephemeral(self, user: str, says: str, seconds: float = 15) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for e in (await self.state())["ephemerals"]:
                if e["user"] == user and says in e["text"]:
                    return str(e["text"])
            await asyncio.sleep(0.2)
        texts = [e["text"] for e in (await self.state())["ephemerals"] if e["user"] == user]
        pytest.fail(f"no ephemeral for {user} saying {says!r}: {texts}")


def block_text(message: Json) -> str:
    parts = [message["text"]]
    for block in message.get("blocks") or []:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields") or []]
    return "\n".join(parts)


def action_ids(message: Json) -> list[str]:
    return [
        e.get("action_id", "")
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for e in b["elements"]
    ]


async def audit_actions(page: Page) -> list[str]:
    await page.command(ALICE, "help")  # (any command: makes sure the worker is alive)
    answer = await page._post(
        "/_emulator/command",
        {"user": ALICE, "channel": DEPLOYS, "command": "/ops", "text": "audit 50"},
    )
    assert answer["status"] == 200, answer
    text = await page.ephemeral(ALICE, "audit entries")
    return re.findall(r"\*(deploy\.[a-z_]+)\*", text)


async def test_deploy_api_through_the_emulated_gitlab(tmp_path: Path) -> None:
    """Alice deploys api 1.2.0: a pipeline with VERSION, its canary job played; Bob approves:
    production played; the message says complete; the audit log has every decision."""
    with sandbox(tmp_path, NO_DOCKER) as box:
        lines = box.start_lines()
        assert any("deploys: api through the emulated GitLab: yes" in s for s in lines), lines
        web = next(s for s in lines if "deploys: web on Docker" in s)
        assert "no, Docker at unix:///nonexistent/docker.sock is unreachable" in web
        assert "OPSLOOP_DOCKER_HOST" in web  # how to turn it on

        async with aiohttp.ClientSession() as http:
            page = Page(http, box)
            examples = (await page.info())["examples"]
            assert examples == [
                "/deploy api 1.2.0",
                "/deploy shop 2",
                "/deploy cart 2",
                "/deploy status",
            ]

            await page.command(ALICE, "api 1.2.0")
            asking = await page.deploy_message(
                "1.2.0", says="waiting for approval to go to 100%", button="deploy_approve"
            )
            shown = block_text(asking)
            assert "at 10%" in shown and "step 1 of 2" in shown, shown
            assert "canary" in shown and "Pipeline" in shown, shown

            # Alice started it, so she may not approve it: she alone is told.
            await page.click(ALICE, asking, "deploy_approve")
            await page.ephemeral(ALICE, "you may not approve it")
            await page.click(BOB, asking, "deploy_approve")
            done = await page.deploy_message("1.2.0", says="complete")
            assert "deploy_approve" not in action_ids(done)
            threads = [r["text"] for r in done["replies"]]
            assert any("Approved by <@U0BOB>" in t for t in threads), threads
            assert any("Complete" in t for t in threads), threads

            gitlab = box.gitlab_url + "/api/v4/projects/" + quote("acme/api", safe="")
            headers = {"PRIVATE-TOKEN": GITLAB_TOKEN}
            async with http.get(gitlab + "/pipelines", headers=headers) as resp:
                pipelines = await resp.json()
            assert len(pipelines) == 1, pipelines
            pipeline = pipelines[0]
            assert pipeline["ref"] == "main"
            async with http.get(
                f"{gitlab}/pipelines/{pipeline['id']}/variables", headers=headers
            ) as resp:
                assert {"key": "VERSION", "value": "1.2.0"}.items() <= (await resp.json())[
                    0
                ].items()
            async with http.get(f"{gitlab}/pipelines/{pipeline['id']}/jobs", headers=headers) as r:
                jobs = {j["name"]: j["status"] for j in await r.json()}
            assert jobs == {
                "build": "success",
                "canary": "success",
                "production": "success",
                "rollback": "manual",  # not played: nothing was rejected
            }

            actions = await audit_actions(page)
            for wanted in (
                "deploy.requested",
                "deploy.approved",
                "deploy.promoted",
                "deploy.completed",
            ):
                assert wanted in actions, actions
            assert actions.count("deploy.approved") == 1, actions  # not Alice's click

            await page.command(ALICE, "status")
            text = await page.ephemeral(ALICE, "*api* `1.2.0`")
            assert "complete" in text


async def test_reject_plays_the_rollback_job(tmp_path: Path) -> None:
    """Bob rejects the canary of api 2.0.0: the rollback job is played; production is not."""
    with sandbox(tmp_path, NO_DOCKER) as box:
        async with aiohttp.ClientSession() as http:
            page = Page(http, box)
            await page.command(ALICE, "api 2.0.0")
            asking = await page.deploy_message(
                "2.0.0", says="waiting for approval", button="deploy_reject"
            )
            await page.click(BOB, asking, "deploy_reject")
            await page.deploy_message("2.0.0", says="rolled back")
            gitlab = box.gitlab_url + "/api/v4/projects/" + quote("acme/api", safe="")
            headers = {"PRIVATE-TOKEN": GITLAB_TOKEN}
            async with http.get(gitlab + "/pipelines", headers=headers) as resp:
                (pipeline,) = await resp.json()
            async with http.get(f"{gitlab}/pipelines/{pipeline['id']}/jobs", headers=headers) as r:
                jobs = {j["name"]: j["status"] for j in await r.json()}
            assert jobs == {
                "build": "success",
                "canary": "success",
                "production": "manual",
                "rollback": "success",
            }


def web_containers(engine: DockerEngine) -> list[Any]:
    found: list[Any] = engine.client.containers.list(
        all=True, filters={"label": ["opsloop.service=web"]}
    )
    return found


async def test_deploy_web_on_docker(tmp_path: Path, dockerd: DockerEngine) -> None:
    """With a Docker Engine the sandbox builds its images from busybox and adds `web`: the
    first deploy runs 4 containers at once; the second goes 25% -> 50% -> 100% on approvals."""
    for tag in ("1", "2", "3"):  # the sandbox makes its own images, whatever ran before
        with suppress(docker.errors.ImageNotFound):
            dockerd.client.images.remove(f"{IMAGE}:{tag}", force=True)
    try:
        with sandbox(tmp_path, dockerd.url) as box:
            lines = box.start_lines()
            web = next(s for s in lines if "deploys: web on Docker" in s)
            assert f"yes, Docker {dockerd.client.version()['Version']} at {dockerd.url}" in web
            assert "built :1, :2, :3 from" in web, web
            for tag in ("1", "2", "3"):
                dockerd.client.images.get(f"{IMAGE}:{tag}")

            async with aiohttp.ClientSession() as http:
                page = Page(http, box)
                examples = (await page.info())["examples"]
                assert examples == [
                    "/deploy api 1.2.0",
                    "/deploy shop 2",
                    "/deploy cart 2",
                    "/deploy web 1",
                    "/deploy web 2",
                    "/deploy status",
                ]

                await page.command(ALICE, "web 1")
                await page.deploy_message("1", says="complete", seconds=60)
                assert (
                    sorted(c.labels["opsloop.version"] for c in web_containers(dockerd))
                    == ["1"] * 4
                )

                await page.command(ALICE, "web 2")
                asking = await page.deploy_message(
                    "2", says="at 25%, waiting", button="deploy_approve", seconds=60
                )
                assert ":large_green_circle:" in block_text(asking)
                versions = sorted(c.labels["opsloop.version"] for c in web_containers(dockerd))
                assert versions == ["1", "1", "1", "2"]
                await page.click(BOB, asking, "deploy_approve")
                asking = await page.deploy_message(
                    "2", says="at 50%, waiting", button="deploy_approve", seconds=60
                )
                await page.click(BOB, asking, "deploy_approve")
                await page.deploy_message("2", says="complete", seconds=60)

            containers = web_containers(dockerd)
            assert len(containers) == 4
            for c in containers:
                c.reload()
                assert c.labels["opsloop.version"] == "2"
                assert c.labels[SANDBOX_LABEL] == "1"
                assert c.status == "running"
                assert c.attrs["State"]["Health"]["Status"] == "healthy"
        # Stopping the sandbox removes the containers it started.
        assert web_containers(dockerd) == []
    finally:
        for c in web_containers(dockerd):
            c.remove(force=True)
