"""Property tests: arbitrary signed Slack bodies and token-bearing webhook bodies, sent over HTTP
to one bot, are answered 2xx or 4xx, never 5xx, and log no traceback.

The bodies mix what Slack and the webhooks' senders do send with a wrong type in any field, so
that most of them get past the first check and reach the deeper readers (Bolt's, the
listeners', the jobs'). The bot runs in a thread with its own event loop, since hypothesis
drives a plain function.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.alerting.messages import AlertAction
from bot.builds.messages import BuildAction
from bot.config_file import OpsConfig, Project
from bot.deploys.flagger_gate import HOOK_TYPES
from bot.deploys.messages import DeployAction
from bot.store.keys import QUEUE
from bot.tasks.messages import MODAL_CALLBACK, SHORTCUT_CALLBACK, Field, TaskAction
from integrations.flagger.config import FlaggerService
from tests.grafana_payloads import SECRET as GRAFANA_SECRET
from tests.grafana_payloads import signature
from tests.harness import BotUnderTest, running_bot

T = TypeVar("T")
EXAMPLES = 150
HOOK_SECRET = "gitlab-hook-secret"
AM_TOKEN = "alertmanager-hook-token"
FLAGGER_TOKEN = "flagger-hook-token"
CONFIG = OpsConfig(
    projects={"web": Project(gitlab="acme/web", channel="C0GENERAL")},
    services={
        "checkout": FlaggerService.model_validate(
            {
                "deployer": "flagger",
                "namespace": "shop",
                "canary": "checkout",
                "channel": "C0GENERAL",
            }
        )
    },
)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class ThreadedBot:
    """A bot (HTTP app and worker) served from its own event loop in a thread."""

    def __init__(self, bot: BotUnderTest, loop: asyncio.AbstractEventLoop) -> None:
        self.bot = bot
        self.loop = loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def drain(self) -> None:
        """Wait until every job the bodies stored has run (those due by now: a deferred one,
        such as an approval request's expiry, runs long after the test)."""

        async def drained() -> None:
            redis = self.bot.deps.store.redis
            while await redis.zcount(QUEUE, 0, int(time.time() * 1000)):
                await asyncio.sleep(0.05)

        self.run(drained(), timeout=40)


@contextmanager
def threaded_bot(redis_url: str, **env: Any) -> Iterator[ThreadedBot]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    context = running_bot(redis_url, config=CONFIG, **env)
    try:
        bot = asyncio.run_coroutine_threadsafe(context.__aenter__(), loop).result(20)
        try:
            yield ThreadedBot(bot, loop)
        finally:
            asyncio.run_coroutine_threadsafe(context.__aexit__(None, None, None), loop).result(20)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    faults = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]
    assert not faults, faults
    assert "Traceback" not in caplog.text


# -- strategies ---------------------------------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
)


def often(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly what the sender sends, sometimes anything at all."""
    return st.one_of(good, good, good, JUNK)


def obj(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional)


IDS = st.text(alphabet="ABCDEFGHUCTW0123456789", min_size=1, max_size=11)
TEXT = st.text(max_size=30)
USERS = st.sampled_from(["U0ALICE", "U0BOB", "U0NOBODY"]) | IDS
USER = obj(
    {"id": often(USERS)},
    {"username": often(TEXT), "name": often(TEXT), "team_id": often(IDS)},
)
TEAM = obj({"id": often(IDS)}, {"domain": often(TEXT), "enterprise_id": often(IDS)})
CHANNEL = obj({"id": often(st.sampled_from(["C0GENERAL", "C0NOWHERE"]) | IDS)}, {"name": TEXT})
AUTHORIZATION = obj(
    {},
    {
        "team_id": often(IDS),
        "enterprise_id": often(IDS),
        "user_id": often(IDS),
        "is_enterprise_install": JUNK,
    },
)
ACTION_IDS = [
    *BuildAction,
    *TaskAction,
    *AlertAction,
    *DeployAction,
    "ops_refresh_status",
    "unknown",
]
VALUES = st.sampled_from(["acme/web|12", "acme/web|x", "", "web#3", "AL-1", "web|r1|0", "|||"])
OPTION = obj({"value": often(TEXT | VALUES)}, {"text": JUNK})
ACTION = obj(
    {"action_id": often(st.sampled_from([str(a) for a in ACTION_IDS]))},
    {
        "block_id": often(TEXT),
        "value": often(VALUES | TEXT),
        "selected_option": often(OPTION),
        "type": often(st.just("button")),
        "action_ts": often(TEXT),
    },
)
CONTAINER = obj(
    {},
    {
        "type": often(st.just("message")),
        "channel_id": often(IDS),
        "message_ts": often(TEXT),
        "thread_ts": often(TEXT),
        "is_ephemeral": often(st.booleans()),
    },
)
MESSAGE = obj(
    {},
    {
        "ts": often(TEXT),
        "thread_ts": often(TEXT),
        "text": often(TEXT),
        "user": often(USERS),
        "bot_id": often(IDS),
    },
)
ELEMENT = obj(
    {"type": often(st.sampled_from(["plain_text_input", "static_select", "users_select"]))},
    {
        "value": often(TEXT | st.just("Fix the login")),
        "selected_option": often(st.none() | OPTION),
        "selected_user": often(st.none() | USERS),
    },
)
INPUTS = st.dictionaries(
    st.sampled_from([*Field, "other"]),
    often(st.dictionaries(st.sampled_from(["value", "other"]), often(ELEMENT), max_size=2)),
    max_size=5,
)
METADATA = st.sampled_from(['{"channel": "C0GENERAL"}', "{", "5", "[]", '{"channel": 5}', ""])
VIEW = obj(
    {
        "callback_id": often(st.sampled_from([MODAL_CALLBACK, "other"])),
        "type": often(st.just("modal")),
    },
    {
        "id": often(IDS),
        "private_metadata": often(METADATA),
        "state": often(obj({"values": often(INPUTS)}, {})),
        "hash": often(TEXT),
        "team_id": often(IDS),
        "app_installed_team_id": often(IDS),
    },
)
EVENT = obj(
    {"type": often(st.sampled_from(["message", "app_mention", "app_uninstalled", "x"]))},
    {
        "user": often(USERS),
        "channel": often(IDS),
        "text": often(TEXT),
        "bot_id": often(IDS),
        "subtype": often(TEXT),
        "channel_type": often(st.just("im")),
        "thread_ts": often(TEXT),
        "message": often(MESSAGE),
        "user_team": often(IDS),
        "function_execution_id": often(IDS),
    },
)
# What every interaction carries: always present, often as Slack sends it.
COMMON = {
    "user": often(USER),
    "team": often(TEAM),
    "trigger_id": often(TEXT),
}
OPTIONAL = {
    "enterprise": often(st.none() | TEAM),
    "channel": often(CHANNEL),
    "authorizations": often(st.lists(AUTHORIZATION, max_size=2)),
    "is_enterprise_install": JUNK,
    "response_url": often(TEXT),
    "response_urls": often(st.lists(obj({"response_url": often(TEXT)}, {}), max_size=2)),
    "api_app_id": often(TEXT),
    "token": often(TEXT),
}
# Each kind's own fields: (always present, sometimes present).
INTERACTIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "block_actions": (
        {
            "actions": often(st.lists(ACTION, min_size=1, max_size=2)),
            "container": often(CONTAINER),
        },
        {"message": often(MESSAGE), "view": often(VIEW), "state": JUNK},
    ),
    "view_submission": ({"view": often(VIEW)}, {}),
    "view_closed": ({"view": often(VIEW)}, {}),
    "message_action": (
        {
            "callback_id": often(st.sampled_from([SHORTCUT_CALLBACK, "other"])),
            "message": often(MESSAGE),
        },
        {"message_ts": often(TEXT)},
    ),
    "shortcut": ({"callback_id": often(st.sampled_from([SHORTCUT_CALLBACK, "other"]))}, {}),
    "block_suggestion": ({"action_id": JUNK}, {}),
}


@st.composite
def interaction_payload(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(INTERACTIONS)))
    required, optional = INTERACTIONS[kind]
    fields = {"type": often(st.just(kind)), **COMMON, **required}
    payload: dict[str, Any] = draw(obj(fields, {**OPTIONAL, **optional}))
    return payload


EVENT_BODY = obj(
    {"type": often(st.sampled_from(["event_callback", "url_verification", "app_rate_limited"]))},
    {
        "event": often(EVENT),
        "challenge": often(TEXT),
        "team_id": often(IDS),
        "event_id": often(IDS),
        "authorizations": OPTIONAL["authorizations"],
        "is_ext_shared_channel": often(st.booleans()),
        "enterprise_id": often(IDS),
    },
)
COMMANDS = st.sampled_from(["/ops", "/task", "/build", "/deploy", "/alerts", "/ack", "/nope", "x"])
SLASH_TEXT = st.sampled_from(["", "help", "status", "audit 5", "list", "close web#1", "frob"])
SLASH_FORM = obj(
    {"command": COMMANDS | TEXT, "text": SLASH_TEXT | TEXT},
    {
        "user_id": IDS,
        "user_name": TEXT,
        "channel_id": IDS,
        "team_id": IDS,
        "trigger_id": TEXT,
        "response_url": TEXT,
        "authorizations": TEXT,
        "event": TEXT,
        "view": TEXT,
        "payload": TEXT,
    },
)


def form(fields: dict[str, Any]) -> bytes:
    return urlencode({k: str(v) for k, v in fields.items()}).encode()


SLACK_BODIES = st.one_of(
    interaction_payload().map(
        lambda p: (form({"payload": json.dumps(p)}), "application/x-www-form-urlencoded")
    ),
    EVENT_BODY.map(lambda b: (json.dumps(b).encode(), "application/json")),
    SLASH_FORM.map(lambda f: (form(f), "application/x-www-form-urlencoded")),
)


# -- Slack ------------------------------------------------------------------------------


def test_signed_arbitrary_slack_bodies_get_2xx_or_4xx_and_no_traceback(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    statuses: list[int] = []
    # No worker: the bodies' jobs would answer made-up response_urls; this is the boundary's
    # and the listeners' test (the jobs' own checks are tested in test_bad_input.py).
    with threaded_bot(redis_url, worker=False) as bot:

        @FUZZ
        @given(SLACK_BODIES)
        def answered(sent: tuple[bytes, str]) -> None:
            body, content_type = sent
            resp = bot.run(bot.bot.driver.send_raw(body, content_type=content_type, sign=True))
            statuses.append(resp.status)
            assert 200 <= resp.status < 500, (resp.status, resp.body, body[:300])
            if resp.status == 400:
                assert resp.body.startswith("Malformed Slack request: "), resp.body
                assert "could not read it" not in resp.body, resp.body

        answered()
    assert_no_traceback(caplog)
    # The mix reached past the first check: some were accepted, some refused.
    assert any(s == 200 for s in statuses) and any(s == 400 for s in statuses)


# -- webhooks -----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
TIMES = st.sampled_from(
    [
        "2026-11-21T10:00:00Z",
        "2026-11-21 10:00:00 UTC",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "yesterday",
    ]
)
LABELS = st.dictionaries(st.sampled_from(["alertname", "severity", "service"]), TEXT, min_size=1)
ALERT = obj(
    {
        "status": often(st.sampled_from(["firing", "resolved"])),
        "labels": often(LABELS),
        "startsAt": often(TIMES),
    },
    {
        "endsAt": often(TIMES),
        "annotations": often(st.dictionaries(TEXT, TEXT, max_size=2)),
        "fingerprint": often(TEXT),
        "generatorURL": often(TEXT),
    },
)
NOTIFICATION = obj(
    {
        "version": often(st.sampled_from(["4", "1"])),
        "groupKey": often(st.sampled_from(["{}:{alertname=a}", "{}:{alertname=b}"]) | TEXT),
        "status": often(st.sampled_from(["firing", "resolved"])),
        "alerts": often(st.lists(ALERT, min_size=1, max_size=3)),
    },
    {
        "receiver": often(TEXT),
        "groupLabels": often(LABELS),
        "commonLabels": often(LABELS),
        "commonAnnotations": often(st.dictionaries(TEXT, TEXT, max_size=2)),
        "externalURL": often(TEXT),
        "truncatedAlerts": often(st.integers()),
    },
)
GRAFANA_ALERT = st.builds(
    lambda alert, extra: {**alert, **extra},
    ALERT,
    obj(
        {},
        {
            "values": often(st.dictionaries(TEXT, st.floats(allow_nan=False) | st.none())),
            "dashboardURL": often(st.just("https://grafana/d/x?orgId=1") | TEXT),
            "panelURL": often(st.just("https://grafana/d/x?viewPanel=2") | TEXT),
            "silenceURL": often(
                st.just("https://grafana/alerting/silence/new?matcher=__alert_rule_uid__%3Dr1")
                | TEXT
            ),
            "ruleUID": often(TEXT),
        },
    ),
)
GRAFANA_NOTIFICATION = st.builds(
    lambda body, alerts: {**body, "version": "1", "alerts": alerts},
    NOTIFICATION,
    often(st.lists(GRAFANA_ALERT, min_size=1, max_size=3)),
)
BUILD = obj(
    {"id": often(st.integers(min_value=1, max_value=10**6))},
    {
        "name": often(TEXT),
        "stage": often(TEXT),
        "status": often(st.sampled_from(["success", "failed", "running"])),
        "failure_reason": often(TEXT),
        "allow_failure": often(st.booleans()),
    },
)
PROJECT = obj({"path_with_namespace": often(st.just("acme/web"))}, {"web_url": often(TEXT)})
PIPELINE_HOOK = obj(
    {
        "object_kind": often(st.just("pipeline")),
        "object_attributes": often(
            obj(
                {"id": often(st.integers(min_value=1, max_value=10**6))},
                {
                    "status": often(st.sampled_from(["running", "failed", "success"])),
                    "ref": often(TEXT),
                    "sha": often(TEXT),
                    "url": often(TEXT),
                    "created_at": often(TIMES),
                    "finished_at": often(TIMES),
                    "duration": often(st.floats(min_value=0, max_value=10**5)),
                },
            )
        ),
        "project": often(PROJECT),
    },
    {"builds": often(st.lists(BUILD, max_size=3))},
)
JOB_HOOK = obj({"object_kind": st.just("build")}, {"project": often(PROJECT), "pipeline_id": JUNK})
GITLAB_EVENTS = st.sampled_from(["Pipeline Hook", "Job Hook", "Deployment Hook", "Push Hook"])
# Flagger's metadata is a map of strings; junk in it is the body's (`often` on the map).
FLAGGER_METADATA = obj(
    {"token": st.sampled_from([FLAGGER_TOKEN, FLAGGER_TOKEN, FLAGGER_TOKEN, "guess"])},
    {
        "type": st.sampled_from(HOOK_TYPES),
        "eventMessage": TEXT,
        "eventType": st.sampled_from(["Normal", "Warning"]),
    },
)
FLAGGER_CALL = obj(
    {
        "name": often(st.sampled_from(["checkout", "checkout", "cart"])),
        "namespace": often(st.just("shop")),
        "checksum": often(st.sampled_from(["5d8f7c9b4", "77aa01"]) | TEXT),
        "metadata": often(FLAGGER_METADATA),
    },
    {"phase": often(st.sampled_from(["Waiting", "Progressing", "Succeeded", "Failed"]))},
)
FLAGGER_TYPES = (
    often(st.sampled_from(HOOK_TYPES)) | st.sampled_from(["pre-rollout", ""]) | st.none()
)


def test_token_bearing_arbitrary_webhook_bodies_get_2xx_or_4xx_and_no_traceback(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = {
        "OPSLOOP_GITLAB_WEBHOOK_SECRET": HOOK_SECRET,
        "OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN": AM_TOKEN,
        "OPSLOOP_FLAGGER_WEBHOOK_TOKEN": FLAGGER_TOKEN,
        "OPSLOOP_GRAFANA_WEBHOOK_SECRET": GRAFANA_SECRET,
    }
    statuses: list[int] = []
    # With the worker: an accepted body must not fail later in its job either.
    with threaded_bot(redis_url, **env) as bot:

        async def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
            async with (
                aiohttp.ClientSession() as http,
                http.post(bot.bot.base_url + path, data=body, headers=headers) as r,
            ):
                return r.status, await r.text()

        def check(path: str, body: bytes, headers: dict[str, str]) -> None:
            headers = {"Content-Type": "application/json", **headers}
            status, text = bot.run(post(path, body, headers))
            statuses.append(status)
            assert 200 <= status < 500, (path, status, text, body[:300])

        @FUZZ
        @given(st.one_of(NOTIFICATION, JSON))
        def alertmanager(body: Any) -> None:
            headers = {"Authorization": f"Bearer {AM_TOKEN}"}
            check("/hooks/alertmanager", json.dumps(body).encode(), headers)

        @FUZZ
        @given(GITLAB_EVENTS, st.one_of(PIPELINE_HOOK, JOB_HOOK, JSON))
        def gitlab(event: str, body: Any) -> None:
            headers = {"X-Gitlab-Event": event, "X-Gitlab-Token": HOOK_SECRET}
            check("/hooks/gitlab", json.dumps(body).encode(), headers)

        @FUZZ
        @given(FLAGGER_TYPES, st.one_of(FLAGGER_CALL, FLAGGER_CALL, JSON))
        def flagger(hook: str | None, body: Any) -> None:
            query = "" if hook is None else "?" + urlencode({"type": hook})
            check("/hooks/flagger" + query, json.dumps(body).encode(), {})

        @FUZZ
        @given(st.one_of(GRAFANA_NOTIFICATION, GRAFANA_NOTIFICATION, NOTIFICATION, JSON))
        def grafana(body: Any) -> None:
            raw = json.dumps(body).encode()
            check("/hooks/grafana", raw, {"X-Grafana-Alerting-Signature": signature(raw)})

        alertmanager()
        gitlab()
        flagger()
        grafana()
        bot.drain()
    assert_no_traceback(caplog)
    assert any(s < 300 for s in statuses) and any(s == 400 for s in statuses)
