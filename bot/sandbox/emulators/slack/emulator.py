"""SlackEmulator: an in-process Slack workspace that speaks Slack's real Web API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from urllib.parse import quote

from aiohttp import web

from bot.serving import served

from . import control, response_url, web_api
from .driver import SlackDriver
from .models import EmulatorUser
from .ratelimit import ChannelRateLimiter, RetryAfterLedger
from .socket_mode import ROUTE as SOCKET_ROUTE
from .socket_mode import SocketModeHub
from .state import WorkspaceState
from .tokens import ResponseTarget, TokenIssuer

DEFAULT_USERS = (
    EmulatorUser("U0ALICE", "alice", "Alice Deployer", "alice@example.com"),
    EmulatorUser("U0BOB", "bob", "Bob Approver", "bob@example.com"),
    EmulatorUser("U0CAROL", "carol", "Carol Oncall", "carol@example.com"),
    EmulatorUser("U0DAVE", "dave", "Dave Developer", "dave@example.com"),
)
DEFAULT_CHANNELS = {
    "C0GENERAL": "general",
    "C0ALERTS": "alerts",
    "C0DEPLOYS": "deploys",
    "C0WEB": "web",
    "C0INCIDENT": "incident",
}
DEFAULT_USERGROUPS = {"S0SRE": ["U0BOB"], "S0ONCALL": ["U0CAROL"]}


class SlackEmulator(WorkspaceState):
    """A Slack workspace on a local port: Web API, response_urls and control routes."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-sandbox-token",
        app_token: str = "xapp-sandbox-app-token",
        signing_secret: str = "sandbox-signing-secret",
        team_id: str = "T0SANDBOX",
        bot_user_id: str = "U0OPSLOOP",
        users: Iterable[EmulatorUser] | None = None,
        channels: dict[str, str] | None = None,
        usergroups: dict[str, list[str]] | None = None,
        usergroup_handles: dict[str, str] | None = None,
        commands: Iterable[str] = (),
        approvers: Iterable[str] | None = None,
        channel_rate_per_second: float | None = 1.0,
        channel_burst: int = 3,
        bot_events_url: str | None = None,
        team_domain: str = "opsloop-sandbox",
        team_name: str = "opsloop sandbox",
        bot_name: str = "opsloop",
        bot_id: str = "B0OPSLOOP",
        app_id: str = "A0OPSLOOP",
        verification_token: str = "sandbox-verification-token",
        trigger_ttl: float = 3.0,
        response_url_ttl: float = 30 * 60,
        response_url_uses: int = 5,
        long_poll_seconds: float = 20.0,
        clock: Callable[[], float] | None = None,
        socket_mode: bool = False,
    ) -> None:
        people = list(DEFAULT_USERS if users is None else users)
        people.append(EmulatorUser(bot_user_id, bot_name, bot_name, is_bot=True))
        super().__init__(
            team_id=team_id,
            team_domain=team_domain,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            app_id=app_id,
            users=people,
            channels=DEFAULT_CHANNELS if channels is None else channels,
            usergroups=DEFAULT_USERGROUPS if usergroups is None else usergroups,
            approvers=approvers or (),
            clock=clock or time.monotonic,
            usergroup_handles=usergroup_handles,
            commands=commands,
        )
        self.bot_token = bot_token
        # The app-level token: only apps.connections.open takes it (Socket Mode).
        self.app_token = app_token
        # On: drivers that were not told a transport deliver over the Socket Mode connection.
        self.socket_mode = socket_mode
        self.socket = SocketModeHub(self)
        self.signing_secret = signing_secret
        self.team_name = team_name
        self.bot_name = bot_name
        self.verification_token = verification_token
        self.bot_events_url = bot_events_url
        self.long_poll_seconds = long_poll_seconds
        self.base_url: str | None = None
        # Lambdas, so a test that swaps emu.clock moves every deadline with it.
        self.rate_limiter = ChannelRateLimiter(
            channel_rate_per_second, channel_burst, clock=lambda: self.clock()
        )
        # 429 windows a test opens (limits.open_window), the Retry-After deadlines announced and
        # the calls that came before them (limits.early_calls).
        self.limits = RetryAfterLedger(lambda: self.clock())
        self.tokens = TokenIssuer(
            lambda: self.clock(),
            trigger_ttl=trigger_ttl,
            response_url_ttl=response_url_ttl,
            response_url_uses=response_url_uses,
        )
        self._control_driver: SlackDriver | None = None

    @property
    def api_url(self) -> str:
        """The Web API base URL for slack_sdk (`base_url=`) and OPSLOOP_SLACK_API_URL."""
        return f"{self._require_base_url()}/api/"

    def _require_base_url(self) -> str:
        if not self.base_url:
            raise RuntimeError("emu.base_url is not set: start it with emu.serve() or set it")
        return self.base_url.rstrip("/")

    def reset_rate_limits(self) -> None:
        """Forgets every channel's posting history, 429 window and early call."""
        self.rate_limiter.reset()
        self.limits.reset()

    def default_user(self) -> str:
        """The first person in the directory, who acts when a test names nobody."""
        return next(u.id for u in self.users.values() if not u.is_bot)

    def default_channel(self) -> str:
        """The first channel, where commands are typed when a test names none."""
        return next(iter(self.channels))

    def response_url(self, target: ResponseTarget) -> str:
        """A fresh response_url posting to `target`."""
        return f"{self._require_base_url()}/response/{self.tokens.issue_response_target(target)}"

    def control_driver(self) -> SlackDriver:
        """The driver behind the control routes (one per emulator)."""
        if self._control_driver is None:
            self._control_driver = SlackDriver(self)
        return self._control_driver

    def make_app(self) -> web.Application:
        """An aiohttp app with `/api/{method}`, `/response/{token}`, Socket Mode's `/link/`
        and `/_emulator/...`."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", web_api.make_handler(self))
        app.router.add_get(SOCKET_ROUTE, self.socket.handle)
        app.router.add_post("/response/{token}", response_url.make_handler(self))
        app.router.add_get("/archives/{channel}/{message}", _open_permalink)
        control.add_routes(app, self)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        self.stop_waiting()
        # Open WebSockets would hold the runner's cleanup until its shutdown timeout.
        await self.socket.close_all()

    async def _on_cleanup(self, app: web.Application) -> None:
        if self._control_driver is not None:
            await self._control_driver.close()
            self._control_driver = None

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Runs the emulator on host:port (0: a free port) and yields its base URL."""
        try:
            async with served(self.make_app(), host, port) as url:
                self.base_url = url
                self._closing = False
                yield url
        finally:
            self.stop_waiting()


async def _open_permalink(request: web.Request) -> web.Response:
    """A chat.getPermalink link: opens the sandbox page at the message (the page reads
    `#/archives/<channel>/p<digits>[?thread_ts=<ts>]`, scrolls to it and opens its thread)."""
    channel, message = request.match_info["channel"], request.match_info["message"]
    target = f"/#/archives/{quote(channel)}/{quote(message)}"
    thread_ts = request.query.get("thread_ts")
    if thread_ts:
        target += f"?thread_ts={quote(thread_ts)}"
    raise web.HTTPFound(target)
