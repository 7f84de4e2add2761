"""Slack's and GitLab's side of the HA soak: the project's emulators, in the bench's process,
each with a middleware that notes what the bench needs beyond the emulator's own record.

- Slack: accepted response_url posts per response_url (one help request, one answer).
- GitLab: which creates (issue and pipeline POSTs) are in GitLab's hands right now, by the
  client's port, so the bench can kill the worker that is waiting for one (`held_by(pid)`: the
  worker's sockets, from /proc, against those ports).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.sandbox.emulators.gitlab.faults import path_matches
from bot.sandbox.emulators.slack import SlackEmulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ISSUE_CREATE = "*/projects/*/issues"
PIPELINE_CREATE = "*/projects/*/pipeline"


class SlackSide:
    """The Slack emulator, counting accepted response_url posts per response_url."""

    def __init__(self, token: str, secret: str) -> None:
        self.emu = SlackEmulator(bot_token=token, signing_secret=secret)
        self.answers: Counter[str] = Counter()
        self.answer_texts: dict[str, list[str]] = {}  # token -> texts of accepted posts

    def app(self) -> web.Application:
        app = self.emu.make_app()

        @web.middleware
        async def count_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
            resp = await handler(request)
            if request.path.startswith("/response/") and resp.status == 200:
                token = request.match_info.get("token", "")
                self.answers[token] += 1
                self.answer_texts.setdefault(token, []).append(await _text(request))
            return resp

        app.middlewares.append(count_answers)
        return app

    def early_calls(self) -> int | None:
        """Calls made before a Retry-After had passed, if this emulator records them."""
        return len(self.emu.limits.early_calls)


async def _text(request: web.Request) -> str:
    try:
        body = json.loads(await request.read())
    except ValueError:
        return ""
    return str(body.get("text", "")) if isinstance(body, dict) else ""


class GitLabSide:
    """The GitLab emulator, knowing which client ports have a create in its hands."""

    def __init__(self, token: str) -> None:
        self.emu = GitLabEmulator(token=token)
        self.creating: Counter[int] = Counter()  # client port -> creates not yet answered

    def app(self) -> web.Application:
        app = self.emu.make_app()

        @web.middleware
        async def note_creates(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.method != "POST" or not _is_create(request):
                return await handler(request)
            peer = request.transport.get_extra_info("peername") if request.transport else None
            port = int(peer[1]) if peer else 0
            self.creating[port] += 1
            try:
                return await handler(request)
            finally:
                self.creating[port] -= 1

        # Outermost, so a create counts for as long as the emulator holds it.
        app.middlewares.insert(0, note_creates)
        return app

    def held(self) -> int:
        return sum(n for n in self.creating.values() if n > 0)

    def held_by(self, pid: int | None) -> int:
        """Creates in GitLab's hands whose client is process `pid`."""
        ports = local_ports(pid) if pid is not None else set()
        return sum(n for port, n in self.creating.items() if n > 0 and port in ports)


def _is_create(request: web.Request) -> bool:
    raw, path = request.rel_url.raw_path, request.path
    return any(path_matches(p, raw, path) for p in (ISSUE_CREATE, PIPELINE_CREATE))


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of a process's sockets (Linux: /proc); empty if it is gone."""
    fd_dir = Path(f"/proc/{pid}/fd")
    inodes = set()
    try:
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
