"""The GitLab adapter: the real python-gitlab, through GitLabClient, against the emulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.errors import IntegrationError, OutcomeUnknown
from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.tasks.ports import TaskTracker
from integrations.gitlab.adapter import GitLabClient
from integrations.gitlab.client import CALL_LIMIT
from integrations.gitlab.errors import TOKEN_REJECTED, UNAVAILABLE
from integrations.gitlab.shapes import GitLabUser, Issue
from tests.servers import free_port

Clients = Callable[..., GitLabClient]


@pytest.fixture
async def emu() -> AsyncIterator[GitLabEmulator]:
    emulator = GitLabEmulator()
    async with emulator.serve():
        yield emulator


@pytest.fixture
async def clients(emu: GitLabEmulator) -> AsyncIterator[Clients]:
    """Make clients (to the emulator unless told otherwise) that are closed after the test."""
    made: list[GitLabClient] = []

    def make(url: str | None = None, token: str | None = None, **options: Any) -> GitLabClient:
        assert emu.url is not None
        made.append(GitLabClient(url or emu.url, token or emu.token, **options))
        return made[-1]

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def gitlab(clients: Clients) -> GitLabClient:
    return clients()


async def failure(call: Awaitable[Any]) -> IntegrationError:
    with pytest.raises(IntegrationError) as caught:
        await call
    error = caught.value
    assert error.system == "GitLab"
    return error


def attempts(emu: GitLabEmulator, since: int) -> list[tuple[str, str, int | None]]:
    return [(r.method, r.path, r.status) for r in emu.requests[since:]]


def test_the_client_is_a_task_tracker(gitlab: GitLabClient) -> None:
    port: TaskTracker = gitlab
    assert port is gitlab


# -- every method ------------------------------------------------------------------------------


async def test_create_an_issue(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    issue = await gitlab.create_issue(
        "acme/web",
        "Flaky test",
        marker="opsloop1a2b",
        description="Fails on CI",
        labels=["ci", "bug"],
        assignee="bob",
    )
    assert issue == Issue(
        project="acme/web",
        iid=1,
        title="Flaky test",
        description="Fails on CI",
        state="opened",
        labels=("bug", "ci"),
        assignees=("bob",),
        author="opsloop-bot",
        web_url=f"{emu.url}/acme/web/-/issues/1",
        reference="acme/web#1",
    )
    [stored] = emu.issues("acme/web")
    assert stored["title"] == "Flaky test"
    [post] = emu.requests_to("*/issues", "POST")
    assert post.path == "/api/v4/projects/acme%2Fweb/issues"
    assert post.body == {
        "title": "Flaky test",
        "description": "Fails on CI\n\n<!-- opsloop request opsloop1a2b -->",
        "labels": "ci,bug",
        "assignee_ids": [2],
    }


async def test_create_with_an_unknown_assignee_files_nothing(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    error = await failure(
        gitlab.create_issue("acme/web", "Orphan", marker="opsloop1", assignee="zed")
    )
    assert error.message == "GitLab has no user `zed`"
    assert not error.retryable
    assert emu.issues("acme/web") == []


async def test_list_issues(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.add_issue("acme/web", "First", assignees=["alice"])
    emu.add_issue("acme/web", "Second", assignees=["bob"])
    emu.add_issue("acme/web", "Done", assignees=["alice"], state="closed")
    emu.add_issue("acme/api", "Elsewhere")
    opened = await gitlab.list_issues("acme/web")
    assert [i.title for i in opened] == ["Second", "First"]
    assert [i.reference for i in opened] == ["acme/web#2", "acme/web#1"]
    mine = await gitlab.list_issues("acme/web", assignee="alice", state="all")
    assert [i.title for i in mine] == ["Done", "First"]
    closed = await gitlab.list_issues("acme/web", state="closed")
    assert [(i.title, i.state) for i in closed] == [("Done", "closed")]
    with pytest.raises(ValueError):
        await gitlab.list_issues("acme/web", state="sleeping")


async def test_list_issues_stops_at_the_limit_across_pages(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    for n in range(130):
        emu.add_issue("acme/web", f"Issue {n}")
    since = len(emu.requests)
    few = await gitlab.list_issues("acme/web", limit=5)
    assert [i.iid for i in few] == [130, 129, 128, 127, 126]
    assert [r.query["per_page"] for r in emu.requests[since:]] == ["5"]
    since = len(emu.requests)
    many = await gitlab.list_issues("acme/web", limit=120)
    assert len(many) == 120 and many[-1].iid == 11
    assert [r.query.get("page", "1") for r in emu.requests[since:]] == ["1", "2"]


async def test_get_close_and_assign(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.add_issue("acme/web", "Broken", labels=["bug"])
    got = await gitlab.get_issue("acme/web", 1)
    assert (got.title, got.state, got.labels, got.assignees) == ("Broken", "opened", ("bug",), ())
    closed = await gitlab.close_issue("acme/web", 1)
    assert closed.state == "closed"
    assert (await gitlab.close_issue("acme/web", 1)).state == "closed"  # twice is fine
    assigned = await gitlab.assign_issue("acme/web", 1, "carol")
    assert assigned.assignees == ("carol",)
    assert (await gitlab.assign_issue("acme/web", 1, "@bob")).assignees == ("bob",)
    assert emu.issues("acme/web")[0]["assignee"]["username"] == "bob"
    [close, *_] = emu.requests_to("*/issues/1", "PUT")
    assert close.body == {"state_event": "close"}
    error = await failure(gitlab.assign_issue("acme/web", 1, "zed"))
    assert error.message == "GitLab has no user `zed`"


async def test_users(gitlab: GitLabClient) -> None:
    alice = GitLabUser(id=1, username="alice", name="Alice Deployer")
    assert await gitlab.user_by_email("Alice@Example.com") == alice
    assert await gitlab.user_by_email("nobody@example.com") is None
    assert await gitlab.user_by_username("alice") == alice
    assert await gitlab.user_by_username("ali") is None


async def test_version(gitlab: GitLabClient) -> None:
    assert await gitlab.version() == "17.5.0"


# -- failures, each mapped once ------------------------------------------------------------------


async def test_401_the_token_is_rejected(clients: Clients, emu: GitLabEmulator) -> None:
    secret = "glpat-not-the-right-one"
    gitlab = clients(token=secret)
    for call in (
        gitlab.version(),
        gitlab.get_issue("acme/web", 1),
        gitlab.user_by_email("alice@example.com"),
    ):
        error = await failure(call)
        assert error.message == TOKEN_REJECTED
        assert not error.retryable
        assert secret not in str(error) and secret not in repr(error.__cause__)
    assert secret not in repr(gitlab)
    assert [r.status for r in emu.requests] == [401, 401, 401]  # no retries


async def test_403_not_allowed(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.fail(403)
    error = await failure(gitlab.close_issue("acme/web", 1))
    assert error.message == "opsloop is not allowed to do that in GitLab project `acme/web` (403)"
    assert not error.retryable
    error = await failure(gitlab.user_by_username("alice"))
    assert error.message == "opsloop is not allowed to do that in GitLab (403)"


async def test_404_project(gitlab: GitLabClient) -> None:
    for call in (
        gitlab.get_issue("acme/nope", 1),
        gitlab.close_issue("acme/nope", 1),
        gitlab.list_issues("acme/nope"),
        gitlab.create_issue("acme/nope", "Lost", marker="opsloop1"),
    ):
        error = await failure(call)
        assert error.message == "GitLab project `acme/nope` was not found"
        assert not error.retryable


async def test_404_issue(gitlab: GitLabClient) -> None:
    for call in (
        gitlab.get_issue("acme/web", 12),
        gitlab.close_issue("acme/web", 12),
        gitlab.assign_issue("acme/web", 12, "alice"),
    ):
        error = await failure(call)
        assert error.message == "issue acme/web#12 was not found"


async def test_400_gitlabs_own_reason(gitlab: GitLabClient) -> None:
    error = await failure(gitlab.create_issue("acme/web", "   ", marker="opsloop1"))
    assert error.message == "GitLab refused it: title can't be blank"
    assert not error.retryable


async def test_429_retried_then_unavailable(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.fail(429, retry_after=1)
    started = time.monotonic()
    error = await failure(gitlab.get_issue("acme/web", 1))
    elapsed = time.monotonic() - started
    assert (error.message, error.retryable) == (UNAVAILABLE, True)
    assert [status for *_, status in attempts(emu, 0)] == [429, 429, 429]
    assert 1.9 < elapsed < 5  # Retry-After obeyed between the three attempts


async def test_429_then_success(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.add_issue("acme/web", "Busy")
    emu.fail(429, times=1, retry_after=1)
    assert (await gitlab.get_issue("acme/web", 1)).title == "Busy"
    assert [status for *_, status in attempts(emu, 0)] == [429, 200]


async def test_a_retry_after_beyond_the_budget_is_not_waited_for(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.fail(429, retry_after=3600)
    started = time.monotonic()
    error = await failure(gitlab.list_issues("acme/web"))
    assert (error.message, error.retryable) == (UNAVAILABLE, True)
    assert time.monotonic() - started < 2
    assert len(emu.requests) == 1


async def test_500_retried_by_python_gitlab_then_unavailable(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.fail(500)
    error = await failure(gitlab.close_issue("acme/web", 1))
    assert (error.message, error.retryable) == (UNAVAILABLE, True)
    assert [status for *_, status in attempts(emu, 0)] == [500, 500, 500]


async def test_5xx_then_success(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.add_issue("acme/web", "Flaky")
    emu.fail(502, times=2)
    assert (await gitlab.get_issue("acme/web", 1)).title == "Flaky"
    assert [status for *_, status in attempts(emu, 0)] == [502, 502, 200]


async def test_a_proxys_html_page_never_reaches_the_person(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.fail(502)
    error = await failure(gitlab.version())
    assert error.message == UNAVAILABLE
    emu.heal()
    emu.fail(400, body="<html><body>Bad request</body></html>")
    error = await failure(gitlab.version())
    assert error.message == "GitLab refused it: answer 400"


async def test_a_503_retry_after_does_not_stall_python_gitlab(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    # python-gitlab would sleep for the whole Retry-After before each of its retries.
    emu.fail(503, retry_after=120)
    started = time.monotonic()
    error = await failure(gitlab.get_issue("acme/web", 1))
    assert error.message == UNAVAILABLE
    assert time.monotonic() - started < 3
    assert len(emu.requests) == 3


async def test_create_after_a_5xx_files_one_issue(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.fail(500, times=1, method="POST")
    issue = await gitlab.create_issue("acme/web", "Once", marker="opsloop1")
    assert issue.iid == 1
    assert [i["title"] for i in emu.issues("acme/web")] == ["Once"]
    # GitLab finished with the first POST: it is looked for (by search, then the bot's own
    # issues), and posted again only because it is not there.
    assert [m for m, *_ in attempts(emu, 0)] == ["POST", "GET", "GET", "POST"]


async def test_create_whose_answer_was_lost_is_found_by_its_marker_not_repeated(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.add_issue("acme/web", "Once", author="alice")  # someone else's, same title
    emu.fail(504, times=1, method="POST", after_handling=True)
    issue = await gitlab.create_issue("acme/web", "Once", marker="opsloop1", description="mine")
    assert issue.iid == 2 and issue.author == "opsloop-bot"
    assert issue.description == "mine"  # the marker is the bot's own business
    assert len(emu.issues("acme/web")) == 2
    assert emu.issues("acme/web")[-1]["description"].endswith("<!-- opsloop request opsloop1 -->")
    assert len(emu.requests_to("*/issues", "POST")) == 1
    lookup = emu.requests_to("*/issues", "GET")[0]
    assert (lookup.query["search"], lookup.query["in"]) == ("opsloop1", "description")


async def test_two_requests_with_the_same_title_are_two_issues(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    # Alice's request, then Carol's with the same words after a 500: Carol gets her own issue.
    alice = await gitlab.create_issue("acme/web", "Fix login", marker="opsloopalice")
    emu.fail(500, times=1, method="POST")
    carol = await gitlab.create_issue("acme/web", "Fix login", marker="opsloopcarol")
    assert carol.iid != alice.iid
    assert len(emu.issues("acme/web")) == 2
    since = time.time() - 60
    found = await gitlab.find_issue("acme/web", "opsloopcarol", since)
    assert found is not None and found.iid == carol.iid
    assert await gitlab.find_issue("acme/web", "opsloopnobody", since) is None


async def test_a_create_slower_than_its_time_out_is_looked_for_not_posted_again(
    clients: Clients, emu: GitLabEmulator
) -> None:
    gitlab = clients(timeout=0.5, budget=6.0)
    emu.hold("*/issues", 1.5, method="POST")  # GitLab is still working when the client gives up
    issue = await gitlab.create_issue("acme/web", "Slow", marker="opsloop1")
    assert [i["iid"] for i in emu.issues("acme/web")] == [issue.iid]
    assert len(emu.requests_to("*/issues", "POST")) == 1


async def test_a_create_never_answered_is_unknown_and_never_repeated(
    clients: Clients, emu: GitLabEmulator
) -> None:
    gitlab = clients(timeout=0.5, budget=2.5)
    hold = emu.hold("*/issues", 30, method="POST")
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as caught:
        await gitlab.create_issue("acme/web", "Stuck", marker="opsloop1")
    assert caught.value.system == "GitLab" and time.monotonic() - started < 4
    assert len(emu.requests_to("*/issues", "POST")) == 1
    hold.seconds = 0  # GitLab gets round to it: a later look finds it
    await eventually_found(gitlab, "opsloop1")
    assert len(emu.issues("acme/web")) == 1


async def eventually_found(gitlab: GitLabClient, marker: str) -> Issue:
    for _ in range(50):
        found = await gitlab.find_issue("acme/web", marker, time.time() - 60)
        if found is not None:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no issue with {marker}")


async def test_create_that_keeps_failing_is_unavailable(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.fail(500, method="POST")
    error = await failure(gitlab.create_issue("acme/web", "Never", marker="opsloop1"))
    assert (error.message, error.retryable) == (UNAVAILABLE, True)
    assert len(emu.requests_to("*/issues", "POST")) == 3
    assert emu.issues("acme/web") == []


async def test_timeouts_are_retried_then_unavailable(clients: Clients, emu: GitLabEmulator) -> None:
    gitlab = clients(timeout=0.3, max_retries=1)
    emu.delay = 2.0
    started = time.monotonic()
    error = await failure(gitlab.get_issue("acme/web", 1))
    elapsed = time.monotonic() - started
    assert (error.message, error.retryable) == (UNAVAILABLE, True)
    assert len(emu.requests) == 2
    assert 0.6 <= elapsed < 1.5


async def test_nothing_listening_is_unavailable(clients: Clients) -> None:
    gitlab = clients(url=f"http://127.0.0.1:{free_port()}")
    error = await failure(gitlab.version())
    assert (error.message, error.retryable) == (UNAVAILABLE, True)


async def test_no_gitlab_api_at_the_url(clients: Clients, emu: GitLabEmulator) -> None:
    gitlab = clients(url=f"{emu.url}/not-gitlab")
    error = await failure(gitlab.version())
    assert "there is no GitLab API at 127.0.0.1" in error.message


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError):
        GitLabClient("gitlab.example.com", "token")


@pytest.mark.slow
@pytest.mark.timeout(60)  # about 24 s by design: three attempts that all time out
async def test_the_worst_case_stays_within_the_contract(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    # Defaults: 10 s timeout, 2 retries. Three full 10 s attempts would take 30 s; the budget
    # gives each attempt 7.9 s instead.
    emu.delay = 60.0
    started = time.monotonic()
    error = await failure(gitlab.get_issue("acme/web", 1))
    elapsed = time.monotonic() - started
    emu.delay = 0.0
    assert (error.message, error.retryable) == (UNAVAILABLE, True)
    assert len(emu.requests) == 3
    assert elapsed < CALL_LIMIT


# -- the event loop --------------------------------------------------------------------------


async def test_a_call_never_blocks_the_event_loop(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.add_issue("acme/web", "Slow")
    emu.delay = 1.0
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        issue = await gitlab.get_issue("acme/web", 1)
    finally:
        ticker.cancel()
    assert issue.title == "Slow"
    assert ticks >= 12


async def test_calls_run_side_by_side(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.delay = 1.0
    started = time.monotonic()
    versions = await asyncio.gather(*(gitlab.version() for _ in range(4)))
    assert versions == ["17.5.0"] * 4
    assert time.monotonic() - started < 2.5
