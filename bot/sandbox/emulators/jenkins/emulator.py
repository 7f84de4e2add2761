"""The emulated Jenkins: its HTTP API (routes below), auth, faults and the requests it saw."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from aiohttp import web

from bot.serving import served

from .notify import Notifier, keep_notifying
from .shapes import (
    build_json,
    describe_json,
    job_json,
    job_url,
    queue_json,
    test_report_json,
)
from .state import DEFAULT_STAGES, JSON, Build, JenkinsState, JobDef

DEFAULT_JOBS = {
    "folder/legacy-build": {"BRANCH": "main", "OPSLOOP_REQUEST": "", "DEPLOY_ENV": "staging"},
    "plain": {"BRANCH": "main"},  # declares no OPSLOOP_REQUEST: the marker is dropped
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_JOB_PATH = re.compile(r"^((?:/job/[^/]+)+)(/.*)?$")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]  # without Authorization / Cookie
    at: float


@dataclass
class Fault:
    status: int  # 0: the connection is dropped (Jenkins down)
    times: int | None = None
    path: str = "*"
    method: str | None = None


@dataclass
class JenkinsEmulator:
    """An in-process Jenkins (see the package's docstring)."""

    user: str = "opsloop"
    token: str = "11aa22bb33cc44dd55ee66ff77889900aa"  # an API token
    password: str = "hunter2"  # a password: needs a crumb to POST, as Jenkins does
    state: JenkinsState = field(default_factory=JenkinsState)
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    delay: float = 0.0
    url: str | None = None
    notifier: Notifier = field(default_factory=Notifier)

    def __post_init__(self) -> None:
        for path, parameters in DEFAULT_JOBS.items():
            self.add_job(path, parameters)

    # -- controls ---------------------------------------------------------------------------

    def add_job(
        self,
        path: str,
        parameters: Mapping[str, str],
        *,
        stages: tuple[str, ...] = DEFAULT_STAGES,
        tests: tuple[int, int, int] | None = (12, 0, 1),
        pipeline: bool = True,
    ) -> JobDef:
        job = JobDef(path, dict(parameters), stages, tests, pipeline)
        self.state.jobs[path] = job
        return job

    @property
    def step_seconds(self) -> float:
        return self.state.step_seconds

    @step_seconds.setter
    def step_seconds(self, value: float) -> None:
        self.state.step_seconds = value

    def fail_stage(self, stage: str, times: int = 1) -> None:
        """The next `times` builds that reach `stage` fail there."""
        self.state.failing[stage] = self.state.failing.get(stage, 0) + times

    def fail(
        self, status: int, *, times: int | None = None, path: str = "*", method: str | None = None
    ) -> None:
        """Matching requests answer `status` (0: the connection drops), `times` times (None:
        until `heal`)."""
        self.faults.append(Fault(status, times, path, method))

    def notify(self, endpoint: str) -> None:
        """The Notification plugin posts each build's phases to `endpoint` (JSON, HTTP)."""
        self.notifier.endpoints.append(endpoint)

    def heal(self) -> None:
        self.faults.clear()

    def builds(self, job: str) -> list[JSON]:
        """The job's builds as its API shows them, newest first."""
        self.state.settle()
        base = self.url or "http://jenkins"
        found = sorted(
            (b for (p, _), b in self.state.builds.items() if p == job), key=lambda b: -b.number
        )
        return [build_json(self.state, base, b) for b in found]

    # -- serving ----------------------------------------------------------------------------

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        async with served(self.make_app(), host, port) as url:
            self.url = url
            notifying = asyncio.create_task(keep_notifying(self.notifier, self.state, url))
            try:
                yield url
            finally:
                notifying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await notifying
                self.url = None

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/json", self._root)
        app.router.add_get("/me/api/json", self._me)
        app.router.add_get("/queue/item/{id:\\d+}/api/json", self._queue_item)
        app.router.add_get("/queue/api/json", self._queue)
        app.router.add_post("/queue/cancelItem", self._cancel_item)
        app.router.add_route("*", "/job/{tail:.*}", self._job_route)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        form: dict[str, str] = {}
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            form = {k: str(v) for k, v in (await request.post()).items()}
        hidden = {"authorization", "cookie"}
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                form,
                {k: v for k, v in request.headers.items() if k.lower() not in hidden},
                time.time(),
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        for fault in list(self.faults):
            if fnmatchcase(request.path, fault.path) and fault.method in (None, request.method):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                if fault.status == 0:
                    assert request.transport is not None
                    request.transport.close()
                    raise web.HTTPServiceUnavailable()
                return _page(fault.status, f"Jenkins answered {fault.status}")
        who = self._authenticated(request)
        if who is None:
            return web.Response(
                status=401,
                text="<html><body>Invalid password/token for user</body></html>",
                content_type="text/html",
                headers={"WWW-Authenticate": 'Basic realm="Jenkins"'},
            )
        if (
            request.method == "POST"
            and who == "password"
            and "Jenkins-Crumb" not in request.headers
        ):
            return _page(403, "No valid crumb was included in the request")
        self.state.settle()
        return await handler(request)

    def _authenticated(self, request: web.Request) -> str | None:
        """ "token" or "password" for good basic credentials; None otherwise. (Anonymous read
        access is off, as on any Jenkins worth protecting.)"""
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        if user != self.user:
            return None
        if secret == self.token:
            return "token"
        return "password" if secret == self.password else None

    # -- handlers ---------------------------------------------------------------------------

    def _base(self, request: web.Request) -> str:
        return self.url or f"{request.scheme}://{request.host}"

    async def _root(self, request: web.Request) -> web.Response:
        base = self._base(request)
        jobs = [{"name": p, "url": job_url(base, p)} for p in self.state.jobs]
        return web.json_response(
            {
                "_class": "hudson.model.Hudson",
                "mode": "NORMAL",
                "nodeName": "",
                "numExecutors": 2,
                "jobs": jobs,
                "url": base + "/",
                "useCrumbs": True,
                "useSecurity": True,
            },
            headers={"X-Jenkins": "2.479.1"},
        )

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"_class": "hudson.model.User", "id": self.user, "fullName": self.user},
            headers={"X-Jenkins": "2.479.1"},
        )

    async def _queue(self, request: web.Request) -> web.Response:
        base = self._base(request)
        items = [
            queue_json(self.state, base, i)
            for i in self.state.queue.values()
            if i.build is None and not i.cancelled
        ]
        return web.json_response({"_class": "hudson.model.Queue", "items": items})

    async def _queue_item(self, request: web.Request) -> web.Response:
        item = self.state.queue.get(int(request.match_info["id"]))
        if item is None:
            return _page(404, "Not Found")
        return web.json_response(queue_json(self.state, self._base(request), item))

    async def _cancel_item(self, request: web.Request) -> web.Response:
        item = self.state.queue.get(int(request.query.get("id", "0") or 0))
        if item is None:
            return _page(404, "Not Found")
        if item.build is None:
            item.cancelled = True
        return web.HTTPFound(self._base(request) + "/queue/")

    async def _job_route(self, request: web.Request) -> web.StreamResponse:
        matched = _JOB_PATH.match(request.path)
        if matched is None:
            return _page(404, "Not Found")
        path = "/".join(matched.group(1).split("/job/")[1:])
        rest = (matched.group(2) or "/").rstrip("/") or "/"
        job = self.state.jobs.get(path)
        if job is None:
            return _page(404, "Not Found")
        base = self._base(request)
        if rest == "/api/json" and request.method == "GET":
            depth = 20 if "builds[" in request.query.get("tree", "") else 0
            return web.json_response(job_json(self.state, base, job, full_builds=depth))
        if rest in ("/buildWithParameters", "/build") and request.method == "POST":
            return await self._build_with_parameters(request, job, base)
        number_match = re.match(r"^/(\d+)(/.*)?$", rest)
        if number_match is None:
            return _page(404, "Not Found")
        build = self.state.builds.get((job.path, int(number_match.group(1))))
        if build is None:
            return _page(404, "Not Found")
        return self._build_route(request, build, base, number_match.group(2) or "/")

    async def _build_with_parameters(
        self, request: web.Request, job: JobDef, base: str
    ) -> web.Response:
        if not job.parameters and request.path.endswith("/buildWithParameters"):
            return _page(400, f"{job.path} is not parameterized")  # Jenkins' own words, roughly
        given = dict(request.query)
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            given.update({k: str(v) for k, v in (await request.post()).items()})
        given.pop("token", None)
        item = self.state.enqueue(job, given, self.user)
        self.state.settle()
        return web.Response(status=201, headers={"Location": f"{base}/queue/item/{item.id}/"})

    def _build_route(
        self, request: web.Request, build: Build, base: str, rest: str
    ) -> web.StreamResponse:
        rest = rest.rstrip("/") or "/"
        if rest == "/api/json" and request.method == "GET":
            return web.json_response(build_json(self.state, base, build))
        if rest == "/wfapi/describe" and request.method == "GET":
            if not self.state.jobs[build.job].pipeline:
                return _page(404, "Not Found")
            return web.json_response(describe_json(self.state, build))
        if rest == "/testReport/api/json" and request.method == "GET":
            building = self.state.result(build)[0]
            report = None if building else test_report_json(build)
            if report is None:
                return _page(404, "Not Found")
            return web.json_response(report)
        if rest == "/stop" and request.method == "POST":
            self.state.stop(build)
            raise web.HTTPFound(f"{job_url(base, build.job)}{build.number}/")
        return _page(404, "Not Found")


def _page(status: int, text: str) -> web.Response:
    return web.Response(
        status=status,
        text=f"<html><head><title>Error {status}</title></head><body><h2>{text}</h2></body></html>",
        content_type="text/html",
    )
