"""Jira's own details, beyond the tracker contract: what is sent (ADF, the marker label, the
done transition), and each refusal in words saying what to fix, never with the token."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from bot.config_file import OpsConfig
from bot.errors import IntegrationError, OutcomeUnknown
from bot.sandbox.emulators.jira import DEFAULT_USERS, JiraEmulator
from bot.settings import load_settings
from integrations.jira.plugin import PLUGIN
from integrations.jira.tasks import MARKER_LABEL, JiraTaskTracker

ALICE = DEFAULT_USERS[0]


@pytest.fixture
async def emulator() -> AsyncIterator[JiraEmulator]:
    emu = JiraEmulator()
    async with emu.serve():
        yield emu


@pytest.fixture
async def jira(emulator: JiraEmulator) -> AsyncIterator[JiraTaskTracker]:
    assert emulator.url is not None
    client = JiraTaskTracker(emulator.url, emulator.token, email=emulator.email, budget=3.0)
    yield client
    await client.close()


def _creates(emulator: JiraEmulator) -> list[dict[str, object]]:
    return [
        json.loads(r.body)["fields"]
        for r in emulator.requests
        if r.method == "POST" and r.path == "/rest/api/3/issue"
    ]


async def test_cloud_files_adf_and_a_marker_label_with_basic_auth(
    emulator: JiraEmulator, jira: JiraTaskTracker
) -> None:
    task = await jira.create_task(
        "WEB", "Fix login", marker="opsloopabc", description="Steps:\n1. log in\n\nThen fail"
    )
    assert task.reference == "WEB-1" and task.url.endswith("/browse/WEB-1")
    assert task.description == "Steps:\n1. log in\n\nThen fail" and task.labels == ()
    (fields,) = _creates(emulator)
    assert fields["labels"] == [MARKER_LABEL + "opsloopabc"]
    assert isinstance(fields["description"], dict) and fields["description"]["type"] == "doc"
    assert all(r.authorization.startswith("Basic ") for r in emulator.requests)


async def test_data_center_sends_plain_text_with_a_bearer_token(emulator: JiraEmulator) -> None:
    assert emulator.url is not None
    client = JiraTaskTracker(emulator.url, emulator.token)
    try:
        task = await client.create_task("WEB", "Fix login", marker="m1", description="Plain")
    finally:
        await client.close()
    assert task.description == "Plain"
    (create,) = [r for r in emulator.requests if r.method == "POST"]
    assert create.path == "/rest/api/2/issue" and json.loads(create.body)["fields"]["description"]
    assert create.authorization == f"Bearer {emulator.token}"


async def test_closing_takes_the_transition_into_the_done_category(
    emulator: JiraEmulator, jira: JiraTaskTracker
) -> None:
    task = await jira.create_task("WEB", "Done soon", marker="m1")
    await jira.close_task("WEB", task.key)
    issue = emulator.issue(task.key)
    assert (issue.status.name, issue.status.category) == ("Done", "done")


async def test_a_required_custom_field_is_named(jira: JiraTaskTracker) -> None:
    with pytest.raises(IntegrationError) as caught:
        await jira.create_task("SEC", "Rotate keys", marker="m1")
    assert caught.value.system == "Jira" and "“Team” (customfield_10010)" in caught.value.message
    assert not caught.value.retryable


async def test_a_missing_permission_says_which(jira: JiraTaskTracker) -> None:
    with pytest.raises(IntegrationError) as caught:
        await jira.create_task("HR", "Hire", marker="m1")
    assert "may not do this" in caught.value.message and "Create issues" in caught.value.message


async def test_rejected_credentials_name_the_settings_not_the_token(
    emulator: JiraEmulator,
) -> None:
    assert emulator.url is not None
    client = JiraTaskTracker(emulator.url, "wrong-token-xyz", email=emulator.email)
    try:
        with pytest.raises(IntegrationError) as caught:
            await client.version()
    finally:
        await client.close()
    assert "OPSLOOP_JIRA_TOKEN" in caught.value.message
    assert "wrong-token-xyz" not in str(caught.value)


async def test_rate_limits_are_waited_out_by_retry_after(
    emulator: JiraEmulator, jira: JiraTaskTracker
) -> None:
    emulator.limit_rate(2, 1.0)
    started = time.monotonic()
    for _ in range(4):
        assert await jira.person_by_email(ALICE.email) is not None
    assert time.monotonic() - started >= 0.9  # it waited rather than failing
    assert any(r for r in emulator.requests)


async def test_a_create_without_an_answer_is_outcome_unknown_then_found(
    emulator: JiraEmulator,
) -> None:
    assert emulator.url is not None
    client = JiraTaskTracker(emulator.url, emulator.token, email=emulator.email, timeout=0.5)
    emulator.hold("/rest/api/3/issue", 2.0, method="POST", after_handling=True)
    since = time.time()
    try:
        with pytest.raises(OutcomeUnknown):
            await client.create_task("WEB", "Maybe filed", marker="opsloopheld")
        found = await client.find_task("WEB", "opsloopheld", since)
    finally:
        await client.close()
    assert found is not None and found.title == "Maybe filed"
    assert len(_creates(emulator)) == 1


async def test_jira_down_is_retryable_and_named(
    emulator: JiraEmulator, jira: JiraTaskTracker
) -> None:
    emulator.fail(503, times=100)
    with pytest.raises(IntegrationError) as caught:
        await jira.list_tasks("WEB")
    assert caught.value.system == "Jira" and caught.value.retryable


async def test_opsloop_check_asks_jira_who_opsloop_is(emulator: JiraEmulator) -> None:
    assert emulator.url is not None
    for email, version in ((emulator.email, "3"), (None, "2")):
        env = {"OPSLOOP_JIRA_URL": emulator.url, "OPSLOOP_JIRA_TOKEN": emulator.token}
        if email:
            env["OPSLOOP_JIRA_EMAIL"] = email
        settings = load_settings(OPSLOOP_CONFIG_FILE=None, **env)
        assert emulator.token not in repr(settings)
        provided = PLUGIN.start(settings, OpsConfig())
        try:
            assert (await provided.check()).endswith("answers")
            assert emulator.requests[-1].path == f"/rest/api/{version}/myself"
        finally:
            await provided.close()
    wrong = load_settings(
        OPSLOOP_CONFIG_FILE=None, OPSLOOP_JIRA_URL=emulator.url, OPSLOOP_JIRA_TOKEN="nope"
    )
    with pytest.raises(RuntimeError, match="401"):
        await PLUGIN.start(wrong, OpsConfig()).check()
