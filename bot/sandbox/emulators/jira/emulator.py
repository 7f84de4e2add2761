"""JiraEmulator: an in-process Jira that checks auth, records requests and misbehaves on cue."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from bot.serving import served

from . import api
from .faults import Failure, Hold, RateLimit, matches
from .state import IssueRecord, JiraProject, JiraUser

DEFAULT_USERS = (
    JiraUser("5b10a2844c20165700ede21a", "Alice Deployer", "alice@example.com"),
    JiraUser("5b10a2844c20165700ede21b", "Bob Approver", "bob@example.com"),
    JiraUser("5b10a2844c20165700ede21c", "Carol Oncall", "carol@example.com"),
)
BOT_USER = JiraUser("5b10a2844c20165700ede2bb", "opsloop", "opsloop-bot@example.com")
DEFAULT_PROJECTS = (
    JiraProject("WEB", "The web shop"),
    JiraProject("OPS", "Operations"),
    JiraProject("SEC", "Security", required=("customfield_10010",)),  # demands its Team
    JiraProject("HR", "People", members=(DEFAULT_USERS[0].account_id,)),  # not the bot's
)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    body: str
    authorization: str


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class JiraEmulator:
    """Jira on a local port: `/rest/api/3` (Cloud: basic auth with e-mail and API token) and
    `/rest/api/2` (Data Center: the token as a bearer token, or the same basic auth)."""

    def __init__(
        self,
        *,
        token: str = "jira-sandbox-api-token",
        users: Iterable[JiraUser] = DEFAULT_USERS,
        projects: Iterable[JiraProject] = DEFAULT_PROJECTS,
        bot_user: JiraUser = BOT_USER,
        deployment: str = "Cloud",
        version: str = "1001.0.0-SNAPSHOT",
    ) -> None:
        self.token = token
        self.email = bot_user.email
        self.bot_user = bot_user
        self.users = {u.account_id: u for u in (*users, bot_user)}
        self.projects = {p.key: p for p in projects}
        self.issues: dict[str, IssueRecord] = {}
        self.ids = itertools.count(10001)
        self.numbers: defaultdict[str, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )
        self.deployment = deployment
        self.version = version
        self.requests: list[RecordedRequest] = []
        self.failures: list[Failure] = []
        self.holds: list[Hold] = []
        self.rate: RateLimit | None = None
        self.retry_after_seconds = 1
        self.url: str | None = None

    # -- switches -------------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, path: str = "*", method: str = "*") -> None:
        """The next `times` matching requests answer `status` in Jira's error shape."""
        self.failures.append(Failure(status, times, path, method))

    def hold(
        self, path: str, seconds: float, *, method: str = "*", after_handling: bool = False
    ) -> None:
        """The next matching request waits `seconds` before (or after) taking effect."""
        self.holds.append(Hold(path, seconds, method, after_handling))

    def limit_rate(self, requests: int, per_seconds: float) -> None:
        """Beyond `requests` per `per_seconds`, answer 429 with Retry-After."""
        self.rate = RateLimit(requests, per_seconds)

    def person(self, email: str) -> JiraUser:
        return next(u for u in self.users.values() if u.email == email)

    def issue(self, key: str) -> IssueRecord:
        return self.issues[key]

    # -- serving --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        api.add_routes(app, self)
        return app

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        async with served(self.app(), host, port) as url:
            self.url = url
            try:
                yield url
            finally:
                self.url = None

    def _account(self, authorization: str) -> str | None:
        """The account an Authorization header proves, or None."""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value == self.token:
            return self.bot_user.account_id
        if scheme.lower() == "basic":
            try:
                email, _, token = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None
            if token == self.token and email == self.email:
                return self.bot_user.account_id
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.text() if request.can_read_body else ""
        authorization = request.headers.get("Authorization", "")
        self.requests.append(
            RecordedRequest(request.method, request.path, request.query_string, body, authorization)
        )
        account = self._account(authorization)
        if account is None:
            return api.errors(401, ["You are not authenticated. Authentication required."])
        request[api.ACCOUNT] = account
        if self.rate is not None and (wait := self.rate.retry_after()) is not None:
            return web.json_response(
                {"errorMessages": ["Rate limit exceeded."], "errors": {}},
                status=429,
                headers={"Retry-After": str(wait)},
            )
        for failure in self.failures:
            if failure.times > 0 and matches(
                failure.path, failure.method, request.path, request.method
            ):
                failure.times -= 1
                return api.errors(failure.status, [f"Emulated failure ({failure.status})."])
        hold = next(
            (
                h
                for h in self.holds
                if h.times > 0 and matches(h.path, h.method, request.path, request.method)
            ),
            None,
        )
        if hold is not None:
            hold.times -= 1
            if not hold.after_handling:
                await asyncio.sleep(hold.seconds)
        response = await handler(request)
        if hold is not None and hold.after_handling:
            await asyncio.sleep(hold.seconds)
        return response
