"""Builds on GitLab: the emulator's refs, pipelines and webhooks, through raw HTTP and through
the real python-gitlab in GitLabClient, with a small aiohttp receiver standing in for the bot."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from bot.builds.ports import CISystem, TestSummary
from bot.errors import IntegrationError, OutcomeUnknown
from bot.sandbox.emulators.gitlab import GitLabEmulator, JobSpec
from bot.serving import served
from integrations.gitlab.adapter import GitLabClient
from integrations.gitlab.errors import TOKEN_REJECTED, UNAVAILABLE
from integrations.gitlab.shapes import Pipeline, PipelineJob
from tests.servers import free_port
from tests.waiting import eventually

WEB = "/api/v4/projects/acme%2Fweb"
STEP = 0.05  # seconds per runner move: a pipeline of three stages takes seven


@dataclass
class Answer:
    status: int
    body: Any


@dataclass
class Received:
    headers: dict[str, str]
    body: Any
    answered: int


@dataclass
class Receiver:
    """A webhook receiver: records what arrives, answers `answers` in turn, then 200."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        status = self.answers.pop(0) if self.answers else 200
        self.received.append(Received(dict(request.headers), await request.json(), status))
        return web.Response(status=status)

    def statuses(self) -> list[str]:
        """The pipeline statuses of the deliveries answered 2xx, in arrival order."""
        return [r.body["object_attributes"]["status"] for r in self.received if r.answered < 300]


@pytest.fixture
async def emu() -> AsyncIterator[GitLabEmulator]:
    emulator = GitLabEmulator()
    emulator.pipeline_step_seconds = STEP
    emulator.hook_retry_seconds = 0.05
    async with emulator.serve():
        yield emulator


Clients = Callable[..., GitLabClient]


@pytest.fixture
async def clients(emu: GitLabEmulator) -> AsyncIterator[Clients]:
    """Clients to the emulator with options of a test's own, closed after the test."""
    made: list[GitLabClient] = []

    def make(**options: Any) -> GitLabClient:
        assert emu.url is not None
        made.append(GitLabClient(emu.url, emu.token, **options))
        return made[-1]

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def gitlab(emu: GitLabEmulator) -> AsyncIterator[GitLabClient]:
    assert emu.url is not None
    client = GitLabClient(emu.url, emu.token)
    yield client
    await client.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/gitlab", made.handle)
    async with served(app) as url:
        made.url = f"{url}/hooks/gitlab"
        yield made


@pytest.fixture
async def http(emu: GitLabEmulator) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession() as session:

        async def call(method: str, path: str, **kwargs: Any) -> Answer:
            headers = {"PRIVATE-TOKEN": emu.token}
            url = URL(f"{emu.url}{path}", encoded=True)
            async with session.request(method, url, headers=headers, **kwargs) as response:
                return Answer(response.status, await response.json(content_type=None))

        yield call


async def failure(call: Awaitable[Any]) -> IntegrationError:
    with pytest.raises(IntegrationError) as caught:
        await call
    assert caught.value.system == "GitLab"
    return caught.value


def test_the_client_is_a_ci_system(gitlab: GitLabClient) -> None:
    port: CISystem = gitlab
    assert port is gitlab


# -- refs --------------------------------------------------------------------------------------


async def test_branch_and_tag_lookups(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    assert await gitlab.ref_exists("acme/web", "main") == "branch"
    assert await gitlab.ref_exists("acme/web", "develop") == "branch"
    assert await gitlab.ref_exists("acme/web", "v1.0.0") == "tag"
    assert await gitlab.ref_exists("acme/web", "nope") is None
    assert await gitlab.ref_exists("acme/web", "") is None
    emu.add_branch("acme/web", "feature/login")
    emu.add_tag("acme/web", "v2.0.0", "develop", message="Release 2.0.0")
    assert await gitlab.ref_exists("acme/web", "feature/login") == "branch"
    assert await gitlab.ref_exists("acme/web", "v2.0.0") == "tag"
    assert await gitlab.default_branch("acme/web") == "main"
    error = await failure(gitlab.ref_exists("acme/nope", "main"))
    assert error.message == "GitLab project `acme/nope` was not found"


async def test_branches_and_tags_over_http(http: Any, emu: GitLabEmulator) -> None:
    main = await http("GET", f"{WEB}/repository/branches/main")
    assert main.status == 200
    assert (main.body["name"], main.body["default"], main.body["protected"]) == ("main", True, True)
    assert main.body["commit"]["title"] == "Add CI pipeline"
    assert main.body["web_url"] == f"{emu.url}/acme/web/-/tree/main"
    emu.add_branch("acme/web", "feature/x")
    slashed = await http("GET", f"{WEB}/repository/branches/feature%2Fx")
    assert (slashed.status, slashed.body["default"]) == (200, False)
    listed = await http("GET", f"{WEB}/repository/branches")
    assert [b["name"] for b in listed.body] == ["develop", "feature/x", "main"]
    tag = await http("GET", f"{WEB}/repository/tags/v1.0.0")
    assert (tag.body["name"], tag.body["commit"]["title"]) == ("v1.0.0", "Initial commit")
    missing_branch = await http("GET", f"{WEB}/repository/branches/nope")
    missing_tag = await http("GET", f"{WEB}/repository/tags/nope")
    assert (missing_branch.status, missing_branch.body) == (
        404,
        {"message": "404 Branch Not Found"},
    )
    assert (missing_tag.status, missing_tag.body) == (404, {"message": "404 Tag Not Found"})


# -- pipelines ---------------------------------------------------------------------------------


async def test_create_a_pipeline_with_variables(
    gitlab: GitLabClient, emu: GitLabEmulator, http: Any
) -> None:
    pipeline = await gitlab.create_pipeline(
        "acme/web", "main", {"DEPLOY_ENV": "staging", "N": "2"}, marker="opsloop1"
    )
    assert isinstance(pipeline, Pipeline)
    assert (pipeline.project, pipeline.iid, pipeline.ref, pipeline.source) == (
        "acme/web",
        1,
        "main",
        "api",
    )
    assert pipeline.status == "created"
    assert pipeline.user == "opsloop-bot"
    assert pipeline.web_url == f"{emu.url}/acme/web/-/pipelines/{pipeline.id}"
    assert pipeline.sha == emu.pipeline(pipeline.id)["sha"] and len(pipeline.sha) == 40
    assert isinstance(pipeline.created_at, datetime) and pipeline.created_at.tzinfo is not None
    [post] = emu.requests_to("*/pipeline", "POST")
    assert post.path == f"{WEB}/pipeline"
    assert post.body == {
        "ref": "main",
        "variables": [
            {"key": "DEPLOY_ENV", "value": "staging"},
            {"key": "N", "value": "2"},
            {"key": "OPSLOOP_REQUEST", "value": "opsloop1"},
        ],
    }
    variables = await http("GET", f"{WEB}/pipelines/{pipeline.id}/variables")
    assert variables.body == [
        {"key": "DEPLOY_ENV", "variable_type": "env_var", "value": "staging"},
        {"key": "N", "variable_type": "env_var", "value": "2"},
        {"key": "OPSLOOP_REQUEST", "variable_type": "env_var", "value": "opsloop1"},
    ]


async def test_a_pipeline_advances_to_success(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    made = await gitlab.create_pipeline("acme/web", "v1.0.0", {}, marker="opsloop1")
    await emu.wait_for_pipeline(made.id, "running")
    running = await gitlab.get_pipeline("acme/web", made.id)
    assert running.status in ("running", "success")  # it may have finished meanwhile
    assert running.started_at is not None
    await emu.wait_for_pipeline(made.id)
    done = await gitlab.get_pipeline("acme/web", made.id)
    assert done.status == "success"
    assert done.finished_at is not None and done.duration is not None
    assert emu.pipeline(made.id)["tag"] is True
    jobs = await gitlab.pipeline_jobs("acme/web", made.id)
    assert [(j.stage, j.name, j.status) for j in jobs] == [
        ("build", "compile", "success"),
        ("test", "unit", "success"),
        ("test", "lint", "success"),
        ("deploy", "package", "success"),
    ]
    assert all(isinstance(j, PipelineJob) and j.duration is not None for j in jobs)
    assert jobs[0].web_url == f"{emu.url}/acme/web/-/jobs/{jobs[0].id}"
    summary = await gitlab.test_summary("acme/web", made.id)
    assert summary == TestSummary(
        total=42, success=40, failed=0, skipped=2, error=0, suites_failed=()
    )


async def test_a_chosen_job_fails_the_pipeline(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.fail_job("unit")
    made = await gitlab.create_pipeline("acme/web", "main", {}, marker="opsloop1")
    assert (await emu.wait_for_pipeline(made.id))["status"] == "failed"
    jobs = {j.name: j for j in await gitlab.pipeline_jobs("acme/web", made.id)}
    assert (jobs["unit"].status, jobs["unit"].failure_reason) == ("failed", "script_failure")
    assert (jobs["lint"].status, jobs["lint"].failure_reason) == ("success", None)
    assert jobs["package"].status == "skipped"
    summary = await gitlab.test_summary("acme/web", made.id)
    assert summary is not None
    assert (summary.total, summary.failed, summary.suites_failed) == (42, 3, ("unit",))


async def test_no_test_report_is_none(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.set_pipeline_jobs("acme/api", [JobSpec("build", "build"), JobSpec("deploy", "deploy")])
    made = await gitlab.create_pipeline("acme/api", "main", {}, marker="opsloop1")
    await emu.wait_for_pipeline(made.id)
    assert await gitlab.test_summary("acme/api", made.id) is None


async def test_a_job_allowed_to_fail_leaves_success_with_warnings(
    emu: GitLabEmulator, http: Any
) -> None:
    emu.set_pipeline_jobs("acme/web", [JobSpec("lint", "test", allow_failure=True)])
    emu.fail_job("lint")
    made = emu.start_pipeline("acme/web")
    done = await emu.wait_for_pipeline(made["id"])
    assert done["status"] == "success"
    assert done["detailed_status"]["group"] == "success-with-warnings"


async def test_cancel(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.pipeline_step_seconds = None  # moves only by hand
    made = await gitlab.create_pipeline("acme/web", "main", {}, marker="opsloop1")
    emu.advance_pipelines(3)  # compile done, unit and lint pending
    canceled = await gitlab.cancel_pipeline("acme/web", made.id)
    assert canceled.status == "canceled" and canceled.finished_at is not None
    jobs = {j.name: j.status for j in await gitlab.pipeline_jobs("acme/web", made.id)}
    assert jobs == {
        "compile": "success",
        "unit": "canceled",
        "lint": "canceled",
        "package": "canceled",
    }
    again = await gitlab.cancel_pipeline("acme/web", made.id)  # a finished one stays as it is
    assert again.status == "canceled"
    assert emu.advance_pipelines() == 0


async def test_retry_runs_failed_jobs_again_with_new_ids(
    gitlab: GitLabClient, emu: GitLabEmulator, http: Any
) -> None:
    emu.fail_job("unit", times=1)
    made = await gitlab.create_pipeline("acme/web", "main", {}, marker="opsloop1")
    await emu.wait_for_pipeline(made.id)
    before = {j.name: j.id for j in await gitlab.pipeline_jobs("acme/web", made.id)}
    retried = await gitlab.retry_pipeline("acme/web", made.id)
    assert retried.status in ("pending", "running")
    assert (await emu.wait_for_pipeline(made.id))["status"] == "success"
    after = {j.name: j.id for j in await gitlab.pipeline_jobs("acme/web", made.id)}
    assert after["unit"] > max(before.values())
    assert {k: v for k, v in after.items() if k != "unit"} == {
        k: v for k, v in before.items() if k != "unit"
    }
    everything = await http("GET", f"{WEB}/pipelines/{made.id}/jobs?include_retried=true")
    assert sorted(j["name"] for j in everything.body).count("unit") == 2
    [post] = emu.requests_to(f"*/pipelines/{made.id}/retry", "POST")
    assert post.status == 201


async def test_latest_pipeline(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    assert await gitlab.latest_pipeline("acme/web") is None
    first = await gitlab.create_pipeline("acme/web", "main", {}, marker="opsloop1")
    other = emu.start_pipeline("acme/web", "develop", user="carol")
    latest = await gitlab.latest_pipeline("acme/web")
    assert latest is not None
    assert (latest.id, latest.ref, latest.source, latest.user) == (
        other["id"],
        "develop",
        "push",
        "carol",
    )
    on_main = await gitlab.latest_pipeline("acme/web", "main")
    assert on_main is not None and on_main.id == first.id


async def test_an_unknown_ref_is_refused_clearly(
    gitlab: GitLabClient, emu: GitLabEmulator, http: Any
) -> None:
    error = await failure(gitlab.create_pipeline("acme/web", "nope", {}, marker="opsloop1"))
    assert error.message == "GitLab refused to start a pipeline on `nope`: Reference not found"
    assert not error.retryable
    raw = await http("POST", f"{WEB}/pipeline", json={"ref": "nope"})
    assert (raw.status, raw.body) == (400, {"message": {"base": ["Reference not found"]}})
    assert emu.pipelines("acme/web") == []


async def test_bad_or_restricted_variables_are_refused(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    error = await failure(
        gitlab.create_pipeline("acme/web", "main", {"BAD-KEY": "1"}, marker="opsloop1")
    )
    assert "Variables key can contain only letters, digits and '_'" in error.message
    emu.restrict_pipeline_variables = True
    error = await failure(gitlab.create_pipeline("acme/web", "main", {"A": "1"}, marker="opsloop1"))
    assert error.message.endswith("Insufficient permissions to set pipeline variables")
    assert (
        await gitlab.create_pipeline("acme/web", "main", {}, marker="opsloop1")
    ).status == "created"


async def test_pipeline_shapes_and_list_filters(http: Any, emu: GitLabEmulator) -> None:
    emu.pipeline_step_seconds = None
    for ref in ("main", "develop", "main"):
        emu.start_pipeline("acme/web", ref)
    listed = await http("GET", f"{WEB}/pipelines?ref=main&per_page=1")
    assert listed.status == 200 and len(listed.body) == 1
    assert set(listed.body[0]) >= {"id", "iid", "sha", "ref", "status", "source", "web_url"}
    assert listed.body[0]["iid"] == 3
    everything = await http("GET", f"{WEB}/pipelines?sort=asc")
    assert [p["ref"] for p in everything.body] == ["main", "develop", "main"]
    one = await http("GET", f"{WEB}/pipelines/{everything.body[0]['id']}")
    assert set(one.body) >= {
        "before_sha",
        "tag",
        "user",
        "started_at",
        "finished_at",
        "duration",
        "queued_duration",
        "detailed_status",
    }
    assert one.body["detailed_status"]["text"] == "created"
    other_project = await http("GET", f"/api/v4/projects/acme%2Fapi/pipelines/{one.body['id']}")
    assert (other_project.status, other_project.body) == (404, {"message": "404 Not found"})


async def test_manual_jobs_wait_to_be_played(http: Any, emu: GitLabEmulator) -> None:
    emu.set_pipeline_jobs(
        "acme/api",
        [
            JobSpec("build", "build"),
            JobSpec("canary", "deploy", when="manual", allow_failure=False),
            JobSpec("production", "production", when="manual", allow_failure=False),
        ],
    )
    made = emu.start_pipeline("acme/api")
    blocked = await emu.wait_for_pipeline(made["id"], "manual")
    assert blocked["detailed_status"]["text"] == "blocked"
    jobs = {j["name"]: j for j in emu.pipeline_jobs(made["id"])}
    assert (jobs["canary"]["status"], jobs["production"]["status"]) == ("manual", "created")
    api = "/api/v4/projects/acme%2Fapi"
    unplayable = await http("POST", f"{api}/jobs/{jobs['production']['id']}/play")
    assert (unplayable.status, unplayable.body) == (
        400,
        {"message": "400 Bad request - Unplayable Job"},
    )
    played = await http("POST", f"{api}/jobs/{jobs['canary']['id']}/play")
    assert (played.status, played.body["status"]) == (200, "pending")
    await emu.wait_for_pipeline(made["id"], "manual", seconds=5)
    await eventually(
        lambda: emu.pipeline_jobs(made["id"])[2]["status"] == "manual", what="production manual"
    )
    production = emu.pipeline_jobs(made["id"])[2]["id"]
    await http("POST", f"{api}/jobs/{production}/play")
    assert (await emu.wait_for_pipeline(made["id"]))["status"] == "success"


# -- failures, mapped as for tasks --------------------------------------------------------------


async def test_401_404_and_5xx_are_mapped(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    assert emu.url is not None
    wrong = GitLabClient(emu.url, "glpat-wrong")
    try:
        for call in (
            wrong.create_pipeline("acme/web", "main", {}, marker="opsloop1"),
            wrong.ref_exists("acme/web", "main"),
            wrong.get_pipeline("acme/web", 1000),
        ):
            assert (await failure(call)).message == TOKEN_REJECTED
    finally:
        await wrong.close()
    assert emu.pipelines("acme/web") == []
    for call in (
        gitlab.get_pipeline("acme/web", 4242),
        gitlab.pipeline_jobs("acme/web", 4242),
        gitlab.cancel_pipeline("acme/web", 4242),
        gitlab.retry_pipeline("acme/web", 4242),
        gitlab.test_summary("acme/web", 4242),
    ):
        assert (await failure(call)).message == "pipeline #4242 of acme/web was not found"
    error = await failure(gitlab.get_pipeline("acme/nope", 4242))
    assert error.message == "GitLab project `acme/nope` was not found"
    emu.fail(500, path="*/pipelines*")
    error = await failure(gitlab.latest_pipeline("acme/web"))
    assert (error.message, error.retryable) == (UNAVAILABLE, True)


async def test_create_after_a_5xx_starts_one_pipeline(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.fail(500, times=1, method="POST", path="*/pipeline")
    made = await gitlab.create_pipeline("acme/web", "main", {"A": "1"}, marker="opsloop1")
    assert [p["id"] for p in emu.pipelines("acme/web")] == [made.id]
    assert len(emu.requests_to("*/pipeline", "POST")) == 2


async def test_create_whose_answer_was_lost_is_found_by_its_marker_not_repeated(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.pipeline_step_seconds = None
    earlier = await gitlab.create_pipeline("acme/web", "main", {"A": "1"}, marker="opsloop0")
    emu.start_pipeline("acme/web", "main", source="api", user="alice", variables={"A": "1"})
    emu.fail(504, times=1, method="POST", path="*/pipeline", after_handling=True)
    made = await gitlab.create_pipeline("acme/web", "main", {"A": "1"}, marker="opsloop1")
    assert made.id not in (earlier.id, emu.pipelines("acme/web")[1]["id"])
    assert made.user == "opsloop-bot"
    assert len(emu.pipelines("acme/web")) == 3
    assert len(emu.requests_to("*/pipeline", "POST")) == 2  # the earlier one and this one
    assert emu.ci.pipelines[made.id].variables == [
        ("A", "1", "env_var"),
        ("OPSLOOP_REQUEST", "opsloop1", "env_var"),
    ]
    [lookup, *_] = [r for r in emu.requests_to("*/pipelines") if "source" in r.query]
    assert (lookup.query["source"], lookup.query["username"]) == ("api", "opsloop-bot")


async def test_find_pipeline_matches_the_marker_only(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.pipeline_step_seconds = None
    one = await gitlab.create_pipeline("acme/web", "main", {"A": "1"}, marker="opsloopone")
    two = await gitlab.create_pipeline("acme/web", "main", {"A": "1"}, marker="opsloottwo")
    since = time.time() - 60
    found = await gitlab.find_pipeline("acme/web", "main", "opsloopone", since)
    assert found is not None and found.id == one.id
    found = await gitlab.find_pipeline("acme/web", "main", "opsloottwo", since)
    assert found is not None and found.id == two.id
    assert await gitlab.find_pipeline("acme/web", "main", "opsloopnone", since) is None
    assert await gitlab.find_pipeline("acme/web", "develop", "opsloopone", since) is None


async def test_a_create_slower_than_its_time_out_is_looked_for_not_posted_again(
    clients: Clients, emu: GitLabEmulator
) -> None:
    gitlab = clients(timeout=0.5, budget=6.0)
    emu.hold("*/pipeline", 1.5, method="POST")
    made = await gitlab.create_pipeline("acme/web", "main", {}, marker="opsloop1")
    assert [p["id"] for p in emu.pipelines("acme/web")] == [made.id]
    assert len(emu.requests_to("*/pipeline", "POST")) == 1


async def test_a_pipeline_behind_a_failing_proxy_is_unknown_not_started_twice(
    clients: Clients, emu: GitLabEmulator
) -> None:
    gitlab = clients(budget=2.5)
    emu.fail(502, method="POST", path="*/pipeline")
    with pytest.raises(OutcomeUnknown):
        await gitlab.create_pipeline("acme/web", "main", {}, marker="opsloop1")
    assert len(emu.requests_to("*/pipeline", "POST")) == 1
    assert emu.pipelines("acme/web") == []


async def test_create_that_keeps_failing_is_unavailable(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.fail(500, method="POST", path="*/pipeline")
    error = await failure(gitlab.create_pipeline("acme/web", "main", {}, marker="opsloop1"))
    assert (error.message, error.retryable) == (UNAVAILABLE, True)
    assert len(emu.requests_to("*/pipeline", "POST")) == 3
    assert emu.pipelines("acme/web") == []


async def test_the_request_variable_is_opsloops_own(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    error = await failure(
        gitlab.create_pipeline("acme/web", "main", {"OPSLOOP_REQUEST": "x"}, marker="opsloop1")
    )
    assert "opsloop's own variable" in error.message
    assert emu.pipelines("acme/web") == []


# -- webhooks ----------------------------------------------------------------------------------


async def test_pipeline_hooks_arrive_in_order_as_gitlab_sends_them(
    gitlab: GitLabClient, emu: GitLabEmulator, receiver: Receiver
) -> None:
    emu.add_hook("acme/web", receiver.url, "hook-secret")
    made = await gitlab.create_pipeline(
        "acme/web", "main", {"DEPLOY_ENV": "staging"}, marker="opsloop1"
    )
    await emu.wait_for_pipeline(made.id)
    await emu.hooks_settled()
    assert receiver.statuses() == ["created", "pending", "running", "success"]
    first, *_, last = receiver.received
    headers = last.headers
    assert headers["X-Gitlab-Event"] == "Pipeline Hook"
    assert headers["X-Gitlab-Token"] == "hook-secret"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "GitLab/17.5.0"
    assert headers["X-Gitlab-Instance"] == emu.url
    assert headers["Idempotency-Key"] == headers["X-Gitlab-Event-UUID"]
    uuids = {r.headers["X-Gitlab-Event-UUID"] for r in receiver.received}
    assert (
        len(uuids) == 4
        and first.headers["X-Gitlab-Webhook-UUID"] != headers["X-Gitlab-Webhook-UUID"]
    )
    body = last.body
    assert body["object_kind"] == "pipeline" and body["merge_request"] is None
    attributes = body["object_attributes"]
    assert attributes["id"] == made.id and attributes["iid"] == made.iid
    assert (attributes["ref"], attributes["tag"], attributes["source"]) == ("main", False, "api")
    assert attributes["sha"] == made.sha and len(attributes["before_sha"]) == 40
    assert (attributes["status"], attributes["detailed_status"]) == ("success", "passed")
    assert attributes["stages"] == ["build", "test", "deploy"]
    assert attributes["variables"] == [
        {"key": "DEPLOY_ENV", "value": "staging"},
        {"key": "OPSLOOP_REQUEST", "value": "opsloop1"},
    ]
    assert attributes["url"] == made.web_url
    assert attributes["created_at"].endswith(" UTC") and attributes["finished_at"] is not None
    assert isinstance(attributes["duration"], int) and "queued_duration" in attributes
    assert body["user"]["username"] == "opsloop-bot"
    assert set(body["user"]) == {"id", "name", "username", "avatar_url", "email"}
    project = body["project"]
    assert (project["path_with_namespace"], project["default_branch"]) == ("acme/web", "main")
    assert project["web_url"] == f"{emu.url}/acme/web"
    commit = body["commit"]
    assert commit["id"] == made.sha and commit["title"] == "Add CI pipeline"
    assert set(commit) >= {"message", "timestamp", "url", "author"}
    builds = {b["name"]: b for b in body["builds"]}
    assert set(builds) == {"compile", "unit", "lint", "package"}
    assert builds["unit"]["stage"] == "test" and builds["unit"]["status"] == "success"
    assert set(builds["unit"]) >= {
        "id",
        "created_at",
        "started_at",
        "finished_at",
        "duration",
        "failure_reason",
        "allow_failure",
        "user",
    }
    deliveries = emu.hook_deliveries
    assert [(d.status, d.attempt, d.object_status) for d in deliveries] == [
        (200, 1, "created"),
        (200, 1, "pending"),
        (200, 1, "running"),
        (200, 1, "success"),
    ]
    assert all("X-Gitlab-Token" not in d.headers for d in deliveries)


async def test_a_redelivery_keeps_the_uuid(emu: GitLabEmulator, receiver: Receiver) -> None:
    emu.add_hook("acme/web", receiver.url, "s")
    made = emu.start_pipeline("acme/web")
    await emu.wait_for_pipeline(made["id"])
    await emu.hooks_settled()
    again = await emu.redeliver_last_hook()
    original, repeated = receiver.received[-2], receiver.received[-1]
    assert repeated.body == original.body
    assert repeated.headers["X-Gitlab-Event-UUID"] == original.headers["X-Gitlab-Event-UUID"]
    assert repeated.headers["Idempotency-Key"] == original.headers["Idempotency-Key"]
    assert repeated.headers["X-Gitlab-Webhook-UUID"] != original.headers["X-Gitlab-Webhook-UUID"]
    assert (again.status, again.attempt, again.uuid) == (
        200,
        2,
        original.headers["X-Gitlab-Event-UUID"],
    )
    # An older event, sent late, carries the old status.
    await emu.redeliver_hook(emu.hook_events[2])
    assert receiver.statuses()[-1] == "running"


async def test_out_of_order_delivery(emu: GitLabEmulator, receiver: Receiver) -> None:
    emu.add_hook("acme/web", receiver.url, "s")
    emu.deliver_hooks_out_of_order = True
    made = emu.start_pipeline("acme/web")
    await emu.wait_for_pipeline(made["id"])
    await emu.hooks_settled()
    assert receiver.statuses() == ["pending", "created", "success", "running"]


async def test_hooks_can_be_switched_off(emu: GitLabEmulator, receiver: Receiver) -> None:
    emu.add_hook("acme/web", receiver.url, "s")
    emu.hooks_enabled = False
    made = emu.start_pipeline("acme/web")
    await emu.wait_for_pipeline(made["id"])
    await emu.hooks_settled()
    assert receiver.received == [] and emu.hook_events == [] and emu.hook_deliveries == []


async def test_failed_deliveries_are_retried_with_back_off_but_not_4xx(
    emu: GitLabEmulator, receiver: Receiver
) -> None:
    emu.set_pipeline_jobs("acme/web", [JobSpec("only", "build")])
    emu.add_hook("acme/web", receiver.url, "s")
    emu.pipeline_step_seconds = None  # one event at a time
    receiver.answers = [503, 500]  # the first event fails twice, then gets through
    started = time.monotonic()
    made = emu.start_pipeline("acme/web")
    await emu.hooks_settled()
    created = list(emu.hook_deliveries)
    assert [(d.status, d.attempt, d.object_status) for d in created] == [
        (503, 1, "created"),
        (500, 2, "created"),
        (200, 3, "created"),
    ]
    assert len({d.uuid for d in created}) == 1 and len({d.webhook_uuid for d in created}) == 3
    assert created[2].at - created[0].at >= 0.05 + 0.1 - 0.02  # 0.05 s, then 0.1 s
    assert time.monotonic() - started < 5
    emu.pipeline_step_seconds = STEP
    await emu.wait_for_pipeline(made["id"])
    await emu.hooks_settled()
    assert receiver.statuses() == ["created", "pending", "running", "success"]

    emu.hook_deliveries.clear()
    receiver.answers = [401]
    emu.start_pipeline("acme/web")
    await eventually(lambda: emu.hook_deliveries, what="a delivery")
    await emu.hooks_settled()
    refused = [d for d in emu.hook_deliveries if d.status == 401]
    assert len(refused) == 1 and refused[0].attempt == 1


async def test_a_bot_that_is_down_is_retried_then_given_up(emu: GitLabEmulator) -> None:
    emu.hook_retries = 2
    emu.set_pipeline_jobs("acme/web", [JobSpec("only", "build")])
    emu.pipeline_step_seconds = None
    emu.add_hook("acme/web", f"http://127.0.0.1:{free_port()}/hooks/gitlab", "s")
    emu.start_pipeline("acme/web")
    await emu.hooks_settled()
    attempts = [(d.status, d.attempt, d.error is not None) for d in emu.hook_deliveries]
    assert attempts == [(None, 1, True), (None, 2, True), (None, 3, True)]


async def test_job_hooks(emu: GitLabEmulator, receiver: Receiver) -> None:
    emu.set_pipeline_jobs("acme/web", [JobSpec("only", "build")])
    emu.add_hook("acme/web", receiver.url, "s", pipeline_events=False, job_events=True)
    made = emu.start_pipeline("acme/web")
    await emu.wait_for_pipeline(made["id"])
    await emu.hooks_settled()
    assert {r.headers["X-Gitlab-Event"] for r in receiver.received} == {"Job Hook"}
    statuses = [r.body["build_status"] for r in receiver.received]
    assert statuses == ["created", "pending", "running", "success"]
    body = receiver.received[-1].body
    assert body["object_kind"] == "build" and body["pipeline_id"] == made["id"]
    assert (body["build_name"], body["build_stage"]) == ("only", "build")
    assert body["project"]["path_with_namespace"] == "acme/web"


async def test_hooks_api(http: Any, emu: GitLabEmulator, receiver: Receiver) -> None:
    made = await http(
        "POST",
        f"{WEB}/hooks",
        json={"url": receiver.url, "token": "t0ken", "pipeline_events": True},
    )
    assert made.status == 201
    assert (made.body["pipeline_events"], made.body["job_events"]) == (True, False)
    assert "token" not in made.body
    listed = await http("GET", f"{WEB}/hooks")
    assert [h["url"] for h in listed.body] == [receiver.url]
    pipeline = emu.start_pipeline("acme/web")
    await emu.wait_for_pipeline(pipeline["id"])
    await emu.hooks_settled()
    assert receiver.received[0].headers["X-Gitlab-Token"] == "t0ken"
    gone = await http("DELETE", f"{WEB}/hooks/{made.body['id']}")
    assert gone.status == 204
    assert (await http("GET", f"{WEB}/hooks")).body == []
