"""GitLabEmulator: an in-process GitLab that speaks REST API v4 as python-gitlab expects it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from urllib.parse import unquote

from aiohttp import web

from bot.serving import served

from . import (
    api_hooks,
    api_issues,
    api_meta,
    api_pipelines,
    api_projects,
    api_repository,
    api_users,
    web_pages,
)
from .controls import CiControls
from .faults import Failure, Hold, Switches, path_matches
from .middleware import make_middleware
from .models import JSON, EmulatedProject, EmulatedUser, RecordedRequest
from .state import STATE, _now

DEFAULT_USERS = (
    EmulatedUser(1, "alice", "Alice Deployer", "alice@example.com"),
    EmulatedUser(2, "bob", "Bob Approver", "bob@example.com"),
    EmulatedUser(3, "carol", "Carol Oncall", "carol@example.com"),
)
DEFAULT_BOT_USER = EmulatedUser(100, "opsloop-bot", "opsloop", "opsloop-bot@example.com", bot=True)
DEFAULT_PROJECTS = (
    EmulatedProject(1, "acme/web", "main", ("alice", "bob", "carol"), "The web shop"),
    EmulatedProject(2, "acme/api", "main", ("alice", "bob", "carol"), "The shop's API"),
)

# Each module adds its routes.
ROUTE_MODULES: tuple[Callable[[web.Application], None], ...] = (
    api_meta.add_routes,
    api_projects.add_routes,
    api_issues.add_routes,
    api_users.add_routes,
    api_repository.add_routes,
    api_pipelines.add_routes,
    api_hooks.add_routes,
    web_pages.add_routes,  # last: its catch-all must not shadow the API
)


class GitLabEmulator(CiControls):
    """A GitLab instance on a local port: API v4 under `/api/v4`, and switches for tests."""

    def __init__(
        self,
        *,
        token: str = "glpat-sandbox-token",
        users: Iterable[EmulatedUser] | None = None,
        projects: Iterable[EmulatedProject] | None = None,
        bot_user: EmulatedUser = DEFAULT_BOT_USER,
        version: str = "17.5.0",
        clock: Callable[[], datetime] = _now,
    ) -> None:
        super().__init__(
            users=DEFAULT_USERS if users is None else users,
            projects=DEFAULT_PROJECTS if projects is None else projects,
            token_user=bot_user,
            version=version,
            clock=clock,
        )
        self.token = token
        self.requests: list[RecordedRequest] = []
        self.switches = Switches()
        self.closing = False

    # -- switches -------------------------------------------------------------------------

    @property
    def delay(self) -> float:
        """Seconds before every answer; lowering it releases requests already held."""
        return self.switches.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self.switches.delay = seconds

    @property
    def delays(self) -> dict[str, float]:
        """Seconds before answering requests whose path matches a glob (first match wins)."""
        return self.switches.delays

    def fail(
        self,
        status: int,
        *,
        times: int | None = None,
        path: str | None = None,
        method: str | None = None,
        retry_after: int = 1,
        body: JSON | str | None = None,
        after_handling: bool = False,
    ) -> None:
        """Answer `status` to matching requests, `times` times (None: until `heal()`).

        `path` is a glob or a whole path, matched as sent (`*/acme%2Fweb/issues`) or decoded
        (`*/acme/web/issues`); `method` narrows it to one HTTP method. 429 and 503 carry
        `Retry-After: retry_after`; 502-504 are the HTML page of GitLab's proxy; others carry
        GitLab's JSON (`{"message": "403 Forbidden"}`) unless `body` is given.
        `after_handling=True` does the work first and then fails, as when GitLab committed a
        change and the proxy in front of it gave up waiting.
        """
        self.switches.fail(Failure(status, times, path, method, retry_after, body, after_handling))

    def heal(self) -> None:
        """Ends every failure switch (delays stay as they are)."""
        self.switches.heal()

    def hold(
        self,
        path: str | None,
        seconds: float,
        *,
        method: str | None = None,
        after_handling: bool = False,
    ) -> Hold:
        """Hold matching requests (`path` and `method` as for `fail`) for `seconds`; the
        returned Hold can be changed while requests wait (`hold.seconds = 0` lets them go).
        `after_handling=True` does the work at once and holds only the answer."""
        hold = Hold(seconds, path, method, after_handling)
        self.switches.holds.append(hold)
        return hold

    def release_holds(self) -> None:
        """Ends every hold; requests held now are answered at once."""
        self.switches.holds.clear()

    # -- queries --------------------------------------------------------------------------

    @property
    def base_url(self) -> str | None:
        """The same as `url`, under the Slack emulator's name for it."""
        return self.url

    @base_url.setter
    def base_url(self, value: str | None) -> None:
        self.url = value

    @property
    def api_url(self) -> str:
        return f"{self._require_url()}/api/v4"

    def _require_url(self) -> str:
        if not self.url:
            raise RuntimeError("emu.url is not set: start it with emu.serve() or set it")
        return self.url.rstrip("/")

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path matches a glob or whole path, as `fail(path=)` does."""

        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and path_matches(path, r.path, unquote(r.path))
        ]

    # -- serving --------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[make_middleware(self)])
        app[STATE] = self
        for add_routes in ROUTE_MODULES:
            add_routes(app)
        app.on_shutdown.append(self._on_shutdown)
        app.cleanup_ctx.append(self.run_ci)  # pipelines move and webhooks go while serving
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        self.closing = True

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Runs the emulator on host:port (0: a free port) and yields its base URL."""
        try:
            async with served(self.make_app(), host, port) as url:
                self.url = url
                self.closing = False
                yield url
        finally:
            self.closing = True
