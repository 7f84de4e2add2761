"""Bad input through the real HTTP path: signed Slack bodies of the wrong shape, webhook bodies
a job could not use, and clicks or modals carrying values opsloop did not make.

Each gets a 400 that says what is wrong, or a message the person can act on; never a 5xx,
never "Something went wrong", never a traceback in the log.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest

from bot.builds.messages import BuildAction
from bot.config_file import OpsConfig, Project
from bot.replies import button
from bot.sandbox.emulators.slack.payloads import encode_payload
from bot.tasks import messages as task_messages
from bot.tasks.messages import Field, TaskAction
from integrations.flagger.config import FlaggerService
from tests.harness import BotUnderTest, running_bot
from tests.waiting import eventually

GENERAL = "C0GENERAL"
HOOK_SECRET = "gitlab-hook-secret"
ALICE = {"id": "U0ALICE", "username": "alice", "name": "alice", "team_id": "T0SANDBOX"}


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records that carry a traceback, for the assertion message."""
    return [r.getMessage() for r in caplog.records if r.exc_info] + (
        ["Traceback in the log"] if "Traceback" in caplog.text else []
    )


async def send_payload(bot: BotUnderTest, payload: Any) -> tuple[int, str]:
    resp = await bot.driver.send_raw(encode_payload(payload), sign=True)
    return resp.status, resp.body


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        # The smallest bodies that got a 500 or a 503 (issue 14, item 7).
        ({"type": "block_actions", "user": 1}, "`user` must be an object"),
        ({"type": "block_actions", "actions": []}, "`user` is missing"),
        ({"type": "view_submission", "team": 1}, "`team` must be an object"),
        # And one wrong field at a time, the rest as Slack sends it.
        (
            {"type": "block_actions", "user": ALICE, "actions": []},
            "`actions` must be a list of at least one action",
        ),
        (
            {"type": "block_actions", "user": ALICE, "actions": [{"value": "x"}]},
            "`actions[0].action_id` is missing",
        ),
        (
            {"type": "block_actions", "user": ALICE, "actions": [{"action_id": 7}]},
            "`actions[0].action_id` must be a string",
        ),
        (
            {"type": "block_actions", "user": {"id": 5}, "actions": [{"action_id": "x"}]},
            "`user.id` must be a string",
        ),
        (
            {"type": "block_actions", "user": ALICE, "actions": [{"action_id": "x"}], "channel": 3},
            "`channel` must be an object",
        ),
        (
            {
                "type": "block_actions",
                "user": ALICE,
                "actions": [{"action_id": "x"}],
                "container": [],
            },
            "`container` must be an object",
        ),
        (
            {"type": "block_actions", "authorizations": "x"},
            "`authorizations` must be a list of objects",
        ),
        ({"type": "block_actions", "enterprise": [1]}, "`enterprise` must be an object"),
        ({"type": "block_actions", "message": "hi"}, "`message` must be an object"),
        ({"type": "view_submission", "user": ALICE, "view": "v"}, "`view` must be an object"),
        (
            {"type": "view_submission", "user": ALICE, "view": {"type": "modal"}},
            "`view.callback_id` is missing",
        ),
        (
            {"type": "view_closed", "user": ALICE, "view": {"callback_id": "task_modal"}},
            "`view.type` is missing",
        ),
        ({"type": "message_action", "user": ALICE}, "`callback_id` is missing"),
        ({"type": "shortcut", "user": ALICE, "callback_id": 1}, "`callback_id` must be a string"),
        ({"user": ALICE}, "`type` must be a string naming the kind of request"),
        ({"type": 5}, "`type` must be a string naming the kind of request"),
    ],
)
async def test_signed_payloads_of_the_wrong_shape_get_400_with_the_reason(
    redis_url: str, caplog: pytest.LogCaptureFixture, payload: dict[str, Any], reason: str
) -> None:
    async with running_bot(redis_url, worker=False) as bot:
        status, text = await send_payload(bot, payload)
        assert (status, text.strip()) == (400, f"Malformed Slack request: {reason}."), text
        assert await bot.deps.store.queue_depth() == 0
    assert not tracebacks(caplog)


async def test_signed_json_events_and_forms_of_the_wrong_shape_get_400(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cases = [
        (b'{"type": "event_callback", "event": null}', "`event` must be an object"),
        (b'{"type": "event_callback", "event": {"user": 1}}', "`event.user` must be an object"),
        (b'{"type": "event_callback", "event": {}}', "`event.type` is missing"),
        (b'{"type": "url_verification"}', "`challenge` is missing"),
        (b'{"type": "url_verification", "challenge": 1}', "`challenge` must be a string"),
        (b'{"type": "event_callback", "command": "/ops"}', "`command` belongs in a slash"),
        (b'{"type": "block_actions", "response_urls": "x"}', "`response_urls` must be a list"),
    ]
    deep = b'{"type": "event_callback", "event": ' + b'{"message": ' * 10 + b"{}" + b"}" * 11
    cases.append((deep, "is nested too deeply"))
    async with running_bot(redis_url, worker=False) as bot:
        for body, reason in cases:
            resp = await bot.driver.send_raw(body, content_type="application/json", sign=True)
            assert resp.status == 400 and reason in resp.body, (body, resp.status, resp.body)
        forms = [
            (b"command=ops&text=help", "`command` must start with /"),
            (b"command=&text=help", "`command` must start with /"),
            (b"ssl_check=1&authorizations=x", "`authorizations` must be a list of objects"),
            (b"ssl_check=1&event=x", "`event` must be an object"),
            (b"payload=" + b"%5B" * 100_000, "`payload` is not valid JSON"),
        ]
        for body, reason in forms:
            resp = await bot.driver.send_raw(body, sign=True)
            assert resp.status == 400 and reason in resp.body, (body[:40], resp.status, resp.body)
        # A command whose text makes it go on to Bolt (an inline subcommand or bad input) has
        # the rest of its form checked there.
        resp = await bot.driver.send_raw(b"command=/ops&text=frob&event=1", sign=True)
        assert resp.status == 400 and "`event` must be an object" in resp.body
        assert await bot.deps.store.queue_depth() == 0
    assert not tracebacks(caplog)


async def test_kinds_no_listener_takes_get_bolts_404_and_slacks_own_still_work(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot(redis_url, worker=False) as bot:
        # Kinds opsloop has no listener for; Bolt itself failed on some of these shapes.
        for payload in (
            {"type": "block_suggestion", "action_id": 5},
            {"type": "interactive_message", "callback_id": "x"},
            {"type": "workflow_step_edit", "callback_id": "x"},
        ):
            status, text = await send_payload(bot, payload)
            assert status == 404 and json.loads(text) == {"error": "unhandled request"}
        challenge = {"type": "url_verification", "challenge": "abc", "token": "t"}
        resp = await bot.driver.send_raw(
            json.dumps(challenge).encode(), content_type="application/json", sign=True
        )
        assert resp.status == 200 and resp.json == {"challenge": "abc"}
        # A click on a button opsloop has no listener for: Bolt's 404, not a 400.
        status, _ = await send_payload(
            bot, {"type": "block_actions", "user": ALICE, "actions": [{"action_id": "nope"}]}
        )
        assert status == 404
    assert not tracebacks(caplog)


# -- webhooks ---------------------------------------------------------------------------


async def post_hook(bot: BotUnderTest, event: str, body: Any) -> tuple[int, str]:
    headers = {"X-Gitlab-Event": event, "X-Gitlab-Token": HOOK_SECRET}
    async with (
        aiohttp.ClientSession() as http,
        http.post(bot.base_url + "/hooks/gitlab", json=body, headers=headers) as r,
    ):
        return r.status, await r.text()


async def test_gitlab_hooks_a_job_could_not_use_get_400_naming_the_field(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = {
        "object_kind": "pipeline",
        "object_attributes": {"id": 7, "status": "running"},
        "project": {"path_with_namespace": "acme/web"},
    }
    cases = [
        # The two accepted-then-crashed bodies of issue 14, item 8.
        ("Pipeline Hook", {"object_kind": "pipeline"}, "object_attributes: is missing"),
        ("Job Hook", {"project": ["acme/web"], "pipeline_id": 7}, "project: must be an object"),
        (
            "Pipeline Hook",
            {**pipeline, "object_attributes": {"id": "x"}},
            "object_attributes.id: must be a whole number",
        ),
        ("Pipeline Hook", {**pipeline, "project": {}}, "project.path_with_namespace: is missing"),
        (
            "Pipeline Hook",
            {**pipeline, "builds": [{"id": 1, "name": 5}]},
            "builds.0.name: must be a string",
        ),
        (
            "Pipeline Hook",
            {**pipeline, "object_attributes": {"id": 7, "duration": 1e300}},
            "object_attributes.duration: must be a number of seconds from 0 to 100000000",
        ),
        ("Job Hook", {"pipeline_id": "seven"}, "pipeline_id: must be a whole number"),
    ]
    env = {"OPSLOOP_GITLAB_WEBHOOK_SECRET": HOOK_SECRET}
    async with running_bot(redis_url, **env) as bot:
        for event, body, reason in cases:
            status, text = await post_hook(bot, event, body)
            assert (status, text.strip()) == (400, f"Invalid payload: {reason}"), (body, text)
        assert await bot.deps.store.queue_depth() == 0
        # What GitLab does send is still accepted, and its job runs without a fault.
        assert (await post_hook(bot, "Pipeline Hook", pipeline))[0] == 200
        assert (await post_hook(bot, "Job Hook", {"pipeline_id": 7}))[0] == 200
        ignored = {"object_kind": "pipeline", "object_attributes": None}
        assert (await post_hook(bot, "Deployment Hook", ignored))[0] == 200
        await eventually(lambda: _drained(bot), what="the hook jobs to run")
    assert not tracebacks(caplog)


async def test_flagger_calls_a_gate_could_not_use_get_400_naming_the_field(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = "flagger-hook-token"
    call = {
        "name": "checkout",
        "namespace": "shop",
        "phase": "Waiting",
        "checksum": "a1b2",
        "metadata": {"token": token},
    }
    cases: list[tuple[str, Any, str]] = [
        ("confirm-rollout", "[]", "the body must be a JSON object"),
        ("confirm-rollout", {**call, "metadata": {"token": token, "cmd": 1}}, "metadata: must"),
        ("confirm-rollout", {**call, "checksum": 7}, "checksum: must be a string"),
        ("confirm-rollout", {**call, "name": ""}, "name: must not be empty"),
        ("confirm-promotion", {**call, "namespace": None}, "namespace: is missing"),
        ("post-rollout", call, "unknown webhook type 'post-rollout'"),
    ]
    service = FlaggerService.model_validate(
        {"deployer": "flagger", "namespace": "shop", "canary": "checkout", "channel": GENERAL}
    )
    config = OpsConfig(services={"checkout": service})
    env = {"OPSLOOP_FLAGGER_WEBHOOK_TOKEN": token}
    async with running_bot(redis_url, config=config, **env) as bot, aiohttp.ClientSession() as http:
        for hook, body, reason in cases:
            data = body if isinstance(body, str) else json.dumps(body)
            url = f"{bot.base_url}/hooks/flagger?type={hook}"
            async with http.post(url, data=data) as r:
                text = await r.text()
                assert (r.status, text.startswith(f"Invalid payload: {reason}")) == (400, True), (
                    text
                )
        # What Flagger does send is answered (403: waiting), and its job runs without a fault.
        async with http.post(f"{bot.base_url}/hooks/flagger?type=confirm-rollout", json=call) as r:
            assert r.status == 403
        [message] = await eventually(
            lambda: bot.emulator.messages(GENERAL), what="the approval request"
        )
        await eventually(
            lambda: bot.emulator.thread(GENERAL, message.ts), what="the gate's job to finish"
        )
    assert not tracebacks(caplog)


async def _drained(bot: BotUnderTest) -> bool:
    return await bot.deps.store.queue_depth() == 0


# -- clicks and modals ------------------------------------------------------------------


def ephemeral_texts(bot: BotUnderTest, user: str = "U0ALICE") -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


async def click_odd_button(bot: BotUnderTest, label: str, action_id: str, value: str) -> str:
    """Clicks a button that carries `value`, on a message as the bot posts them; returns
    what the person is then told."""
    msg = bot.emulator.post(
        GENERAL,
        user=bot.emulator.bot_user_id,
        text="a message with a button",
        blocks=[{"type": "actions", "elements": [button(label, action_id, value)]}],
    )
    before = len(ephemeral_texts(bot))
    resp = await bot.driver.click(label, user="U0ALICE", message=msg)
    assert resp.status == 200
    texts = await eventually(lambda: ephemeral_texts(bot)[before:], what=f"answer to {label}")
    return texts[0]


@pytest.mark.parametrize(
    ("label", "action_id", "value", "instead"),
    [
        ("Retry", BuildAction.RETRY, "acme/web|x", "/build status"),
        ("Cancel", BuildAction.CANCEL, "acme/web", "/build status"),
        ("Close", TaskAction.CLOSE, "", "/task close"),
        ("Assign to me", TaskAction.ASSIGN_ME, "web#x", "/task close"),
        ("Acknowledge", "alert_ack", "AL-one", "/ack AL-"),
        ("Create task", "alert_create_task", "", "/ack AL-"),
        ("Approve", "deploy_approve", "web", "/deploy status"),
    ],
)
async def test_clicks_with_values_opsloop_did_not_make_get_a_clear_message(
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
    label: str,
    action_id: str,
    value: str,
    instead: str,
) -> None:
    async with running_bot(redis_url) as bot:
        text = await click_odd_button(bot, label, action_id, value)
    assert "This button is not one opsloop made" in text and "nothing was done" in text
    assert instead in text
    assert "Something went wrong" not in text
    assert not tracebacks(caplog)


TASK_CONFIG = OpsConfig(projects={"web": Project(gitlab="acme/web", channel=GENERAL)})


def task_modal_submission(values: dict[str, Any], metadata: Any) -> dict[str, Any]:
    """A view_submission of the /task modal as Slack sends it, with the given inputs' state."""
    view = task_messages.modal(TASK_CONFIG.projects, channel=GENERAL, initial_project="web")
    view.update(id="V0TASK", private_metadata=metadata, state={"values": values})
    return {
        "type": "view_submission",
        "team": {"id": "T0SANDBOX", "domain": "opsloop-sandbox"},
        "user": ALICE,
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "view": view,
        "response_urls": [],
    }


GOOD_INPUTS = {
    Field.TITLE: {"value": {"type": "plain_text_input", "value": "Fix the login"}},
    Field.PROJECT: {
        "value": {"type": "static_select", "selected_option": {"value": "web"}},
    },
}


@pytest.mark.parametrize(
    ("inputs", "metadata", "errors"),
    [
        # The two of issue 14, item 8: broken private_metadata, a number as the title.
        ({}, "{", {Field.TITLE: task_messages.ODD_METADATA}),
        ({}, json.dumps({"channel": 5}), {Field.TITLE: task_messages.ODD_METADATA}),
        ({}, "", {Field.TITLE: task_messages.ODD_METADATA}),  # filed, then nowhere to say so
        ({}, 12, None),  # not even a string: the boundary refuses it (below)
        (
            {Field.TITLE: {"value": {"type": "plain_text_input", "value": 42}}},
            json.dumps({"channel": GENERAL}),
            {Field.TITLE: task_messages.ODD_INPUT},
        ),
        (
            {Field.PROJECT: {"value": {"type": "static_select", "selected_option": ["web"]}}},
            json.dumps({"channel": GENERAL}),
            {Field.PROJECT: task_messages.ODD_INPUT},
        ),
        (
            {Field.ASSIGNEE: {"value": {"type": "users_select", "selected_user": {"id": 1}}}},
            json.dumps({"channel": GENERAL}),
            {Field.ASSIGNEE: task_messages.ODD_INPUT},
        ),
    ],
)
async def test_task_modals_with_odd_contents_get_field_errors(
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
    inputs: dict[str, Any],
    metadata: Any,
    errors: dict[str, str] | None,
) -> None:
    payload = task_modal_submission({**GOOD_INPUTS, **inputs}, metadata)
    async with running_bot(redis_url, config=TASK_CONFIG, worker=False) as bot:
        status, text = await send_payload(bot, payload)
        if errors is None:
            assert status == 400 and "`view.private_metadata` must be a string" in text
        else:
            assert status == 200, text
            assert json.loads(text) == {"response_action": "errors", "errors": errors}
        assert await bot.deps.store.queue_depth() == 0  # nothing was filed
    assert not tracebacks(caplog)


async def test_a_number_for_an_inputs_whole_state_is_refused_at_the_boundary(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    payload = task_modal_submission(
        {**GOOD_INPUTS, Field.TITLE: {"value": 42}}, json.dumps({"channel": GENERAL})
    )
    async with running_bot(redis_url, config=TASK_CONFIG, worker=False) as bot:
        status, text = await send_payload(bot, payload)
    assert status == 400
    assert "`view.state.values.title.value` must be an object" in text
    assert not tracebacks(caplog)


async def test_a_well_formed_task_modal_is_still_accepted(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    payload = task_modal_submission(GOOD_INPUTS, json.dumps({"channel": GENERAL}))
    async with running_bot(redis_url, config=TASK_CONFIG, worker=False) as bot:
        status, text = await send_payload(bot, payload)
        assert (status, text) == (200, "")
        assert await bot.deps.store.queue_depth() == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
