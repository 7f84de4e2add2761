"""What bot/tasks relies on of any task tracker (bot/tasks/ports.py), held against every adapter.

Each adapter comes with a tracker to talk to (GitLab's: the emulator) and the names that tracker
knows. A new tracker (Jira) adds its own entry to ADAPTERS and passes the same tests; its own
details (requests sent, errors mapped) stay in its own test module.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest

from bot.errors import IntegrationError
from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.sandbox.emulators.jira import DEFAULT_USERS, JiraEmulator
from bot.tasks.grammar import parse_ref
from bot.tasks.ports import CLOSED, OPEN, Task, TaskTracker
from integrations.gitlab.adapter import GitLabClient
from integrations.jira.tasks import JiraTaskTracker


@dataclass(frozen=True)
class Tracker:
    """An adapter, connected to a tracker that knows `project` and one person."""

    port: TaskTracker
    project: str
    username: str  # a person the tracker knows
    email: str  # that person's e-mail address
    missing_key: str  # a key no task of `project` has


@asynccontextmanager
async def gitlab() -> AsyncIterator[Tracker]:
    emulator = GitLabEmulator()
    async with emulator.serve():
        assert emulator.url is not None
        client = GitLabClient(emulator.url, emulator.token)
        try:
            yield Tracker(client, "acme/web", "alice", "alice@example.com", "4242")
        finally:
            await client.close()


@asynccontextmanager
async def jira_cloud() -> AsyncIterator[Tracker]:
    emulator = JiraEmulator()
    async with emulator.serve() as url:
        client = JiraTaskTracker(url, emulator.token, email=emulator.email)
        alice = DEFAULT_USERS[0]
        try:
            yield Tracker(client, "WEB", alice.account_id, alice.email, "WEB-4242")
        finally:
            await client.close()


@asynccontextmanager
async def jira_data_center() -> AsyncIterator[Tracker]:
    emulator = JiraEmulator(deployment="Server", version="9.12.0")
    async with emulator.serve() as url:
        client = JiraTaskTracker(url, emulator.token)  # no e-mail: a bearer token, API v2
        alice = DEFAULT_USERS[0]
        try:
            yield Tracker(client, "WEB", alice.account_id, alice.email, "WEB-4242")
        finally:
            await client.close()


ADAPTERS: dict[str, Callable[[], AbstractAsyncContextManager[Tracker]]] = {
    "gitlab": gitlab,
    "jira-cloud": jira_cloud,
    "jira-data-center": jira_data_center,
}


@pytest.fixture(params=sorted(ADAPTERS))
async def tracker(request: pytest.FixtureRequest) -> AsyncIterator[Tracker]:
    async with ADAPTERS[request.param]() as made:
        yield made


async def file(
    tracker: Tracker,
    title: str,
    marker: str,
    *,
    description: str = "",
    labels: Sequence[str] = (),
    assignee: str | None = None,
) -> Task:
    """A task filed in the tracker's project, as TaskService files one."""
    return await tracker.port.create_task(
        tracker.project,
        title,
        marker=marker,
        description=description,
        labels=labels,
        assignee=assignee,
    )


async def test_a_filed_task_is_found_by_its_marker(tracker: Tracker) -> None:
    since = time.time()
    task = await file(tracker, "Flaky test", "opsloopcontract1", description="Fails on CI")
    assert (task.title, task.description, task.state) == ("Flaky test", "Fails on CI", OPEN)
    assert task.project and task.key and task.url and task.reference
    assert await tracker.port.find_task(tracker.project, "opsloopcontract1", since) == task


async def test_another_marker_finds_nothing(tracker: Tracker) -> None:
    since = time.time()
    await file(tracker, "Flaky test", "opsloopcontract1")
    assert await tracker.port.find_task(tracker.project, "opsloopcontract2", since) is None


async def test_the_same_title_asked_twice_is_two_tasks(tracker: Tracker) -> None:
    since = time.time()
    alice = await file(tracker, "Fix login", "opsloopalice")
    carol = await file(tracker, "Fix login", "opsloopcarol")
    assert alice.key != carol.key and alice.reference != carol.reference
    found = await tracker.port.find_task(tracker.project, "opsloopcarol", since)
    assert found is not None and found.key == carol.key


async def test_labels_and_assignee_are_filed(tracker: Tracker) -> None:
    task = await file(tracker, "Tidy CSS", "opsloop1", labels=["ui"], assignee=tracker.username)
    assert task.labels == ("ui",) and task.assignees == (tracker.username,)


async def test_an_unknown_assignee_is_refused_and_nothing_is_filed(tracker: Tracker) -> None:
    with pytest.raises(IntegrationError) as caught:
        await file(tracker, "Orphan", "opsloop1", assignee="nobody-of-that-name")
    assert caught.value.system == tracker.port.system and not caught.value.retryable
    everything = await tracker.port.list_tasks(tracker.project, state="all")
    assert "Orphan" not in [t.title for t in everything]


async def test_the_reference_reads_back_as_the_task(tracker: Tracker) -> None:
    # The task's message shows its reference, its buttons carry it, and `/task close` takes it.
    task = await file(tracker, "Round trip", "opsloop1")
    ref = parse_ref(task.reference)
    assert (ref.project, ref.key) == (task.project, task.key)
    assert await tracker.port.get_task(task.project, ref.key) == task


async def test_closing_twice_is_fine(tracker: Tracker) -> None:
    task = await file(tracker, "Done soon", "opsloop1")
    assert (await tracker.port.close_task(tracker.project, task.key)).state == CLOSED
    assert (await tracker.port.close_task(tracker.project, task.key)).state == CLOSED
    assert (await tracker.port.get_task(tracker.project, task.key)).state == CLOSED


async def test_assigning_makes_one_assignee(tracker: Tracker) -> None:
    task = await file(tracker, "Whose?", "opsloop1")
    assigned = await tracker.port.assign_task(tracker.project, task.key, tracker.username)
    assert assigned.assignees == (tracker.username,)
    with pytest.raises(IntegrationError):
        await tracker.port.assign_task(tracker.project, task.key, "nobody-of-that-name")


async def test_a_missing_task_is_an_integration_error(tracker: Tracker) -> None:
    for call in (tracker.port.get_task, tracker.port.close_task):
        with pytest.raises(IntegrationError) as caught:
            await call(tracker.project, tracker.missing_key)
        assert caught.value.system == tracker.port.system and not caught.value.retryable


async def test_lists_are_newest_first_by_state_and_assignee(tracker: Tracker) -> None:
    first = await file(tracker, "First", "opsloop1", assignee=tracker.username)
    second = await file(tracker, "Second", "opsloop2")
    third = await file(tracker, "Third", "opsloop3", assignee=tracker.username)
    await tracker.port.close_task(tracker.project, third.key)
    port, project = tracker.port, tracker.project
    assert [t.key for t in await port.list_tasks(project)] == [second.key, first.key]
    assert [t.key for t in await port.list_tasks(project, state=CLOSED)] == [third.key]
    everything = await port.list_tasks(project, state="all", limit=2)
    assert [t.key for t in everything] == [third.key, second.key]
    mine = await port.list_tasks(project, state="all", assignee=tracker.username)
    assert [t.key for t in mine] == [third.key, first.key]
    with pytest.raises(ValueError):
        await port.list_tasks(project, state="sleeping")


async def test_people_by_username_and_email(tracker: Tracker) -> None:
    person = await tracker.port.person_by_username(tracker.username)
    assert person is not None and person.username == tracker.username and person.id
    assert await tracker.port.person_by_email(tracker.email.upper()) == person
    assert await tracker.port.person_by_username("nobody-of-that-name") is None
    assert await tracker.port.person_by_email("nobody@example.invalid") is None


async def test_it_answers_with_its_version_and_name(tracker: Tracker) -> None:
    assert await tracker.port.version()
    assert tracker.port.system
