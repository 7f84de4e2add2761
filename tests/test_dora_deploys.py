"""The hooks record real rollouts and alerts: deploys of a GitLab service through the signed
command and clicks (the GitLab emulator runs its pipelines and answers the compare), alerts
through /hooks/alertmanager; then `/ops dora` answers from what was recorded."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from bot.config_file import AlertRoute, Alerts, OpsConfig, Roles
from bot.feedback.ports import RefMissing
from bot.sandbox.emulators.gitlab import JobSpec
from integrations.gitlab.adapter import GitLabClient
from integrations.gitlab.config import GitLabService
from tests.alert_payloads import TOKEN, alert, notification
from tests.harness import BotUnderTest, gitlab_env, running_bot, running_gitlab
from tests.waiting import eventually

CHANNEL = "C0DEPLOYS"
JOBS = [
    JobSpec("build", "build"),
    JobSpec("rollback", "deploy", when="manual"),
    JobSpec("production", "deploy", when="manual", allow_failure=False),
]


def config() -> OpsConfig:
    api = GitLabService.model_validate(
        {
            "deployer": "gitlab",
            "project": "acme/api",
            "ref": "main",
            "steps": [{"percent": 100, "job": "production"}],
            "rollback_job": "rollback",
            "channel": CHANNEL,
            "alert_labels": {"service": "api"},
        }
    )
    return OpsConfig(
        roles=Roles(deployers=["U0ALICE"], approvers=["U0BOB"]),
        services={"api": api},
        alerts=Alerts(routes=[AlertRoute(channel="C0ALERTS")]),
    )


def shown(bot: BotUnderTest, version: str) -> str:
    found = [m for m in bot.emulator.messages(CHANNEL) if f" {version} (" in m.text]
    return found[-1].text if found else ""


async def deploy(bot: BotUnderTest, version: str, *, reject: bool = False) -> None:
    await bot.driver.command("/deploy", f"api {version}", user="U0ALICE", channel=CHANNEL)
    await eventually(lambda: "waiting for approval" in shown(bot, version), within=20)
    message = [m for m in bot.emulator.messages(CHANNEL) if f" {version} (" in m.text][-1]
    await bot.driver.click("Reject" if reject else "Approve", user="U0BOB", message=message)
    end = "rolled back" if reject else "complete"
    await eventually(lambda: end in shown(bot, version), within=20, what=f"{version} {end}")


async def alertmanager(bot: BotUnderTest, body: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            bot.base_url + "/hooks/alertmanager",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as resp,
    ):
        assert resp.status < 300


async def test_real_deploys_and_alerts_are_recorded_and_measured(redis_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)  # GitLab's dates carry milliseconds
    async with running_gitlab() as gitlab:
        gitlab.pipeline_step_seconds = 0.05
        gitlab.set_pipeline_jobs("acme/api", JOBS)
        gitlab.add_tag("acme/api", "1.0.0", "main")
        gitlab.push("acme/api", "main", "Faster search", at=now - timedelta(hours=3))
        gitlab.push("acme/api", "main", "Fix typo", at=now - timedelta(hours=1))
        gitlab.add_tag("acme/api", "1.1.0", "main")
        env = gitlab_env(gitlab)
        async with running_bot(
            redis_url,
            config=config(),
            OPSLOOP_DEPLOY_POLL_SECONDS="0.1",
            OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=TOKEN,
            **env,
        ) as bot:
            history = bot.deps.store.history
            await deploy(bot, "1.0.0")  # the first: nothing to compare with
            # An alert on the service right after it: 1.0.0 counts as a failed change.
            started = datetime.now(UTC)
            await alertmanager(bot, notification([alert("api-1", started=started)]))
            await eventually(lambda: bot.emulator.messages("C0ALERTS"), what="the alert")
            await alertmanager(bot, notification([alert("api-1", started=started, resolved=True)]))
            resolved = await eventually(
                lambda: _resolved(history, "AL-1"), what="the incident's resolution recorded"
            )
            assert resolved.fired_at == started.timestamp()

            await deploy(bot, "1.1.0")
            await deploy(bot, "9.9.9")  # no such tag in GitLab
            await deploy(bot, "2.0.0", reject=True)

            async def leads() -> list[Any]:
                h = await history.since("api", 0)
                found = [h.leads.get(r.id) for r in h.rollouts if r.completed_at]
                return found if len(found) == 3 and all(found) else []

            first, second, missing = await eventually(leads, what="three lead times")
            assert first.seconds is None and "a first deploy" in first.reason
            assert second.commits == 2 and second.project == "acme/api"
            assert second.oldest_commit_at == (now - timedelta(hours=3)).timestamp()
            assert 3 * 3600 <= second.seconds < 3 * 3600 + 60
            assert missing.seconds is None
            assert missing.reason == "no tag `1.1.0` or `9.9.9` in acme/api"

            h = await history.since("api", 0)
            by_version = {r.version: r for r in h.rollouts}
            assert [r.version for r in h.rollouts] == ["1.0.0", "1.1.0", "9.9.9", "2.0.0"]
            assert by_version["1.1.0"].previous == "1.0.0"
            assert by_version["1.1.0"].approved_by == ["U0BOB"]
            assert by_version["2.0.0"].outcome == "rejected"
            assert by_version["2.0.0"].ended_by == "U0BOB"
            assert by_version["9.9.9"].outcome == "completed"

            await bot.driver.command("/ops", "dora api 1", user="U0ALICE", channel=CHANNEL)
            answer = await eventually(
                lambda: [
                    e.text for e in bot.emulator.ephemerals(user="U0ALICE") if "Delivery" in e.text
                ],
                what="/ops dora",
            )
            text = answer[0]
            # 3 complete; 4 ended, of which 1.0.0 (the alert) and 2.0.0 (rejected) failed.
            assert "*api*: 3 deployments (3.00/day, 21.0/week)" in text
            assert re.search(r"lead time 3h(?: [0-9]+m)? \(p90 3h(?: [0-9]+m)?, 1 measured\)", text)
            assert "failure rate 50% (2 of 4)" in text
            assert "Lead time not measured for 2 rollouts" in text
            assert "`1.0.0`: a first deploy" in text
            assert "`9.9.9`: no tag `1.1.0` or `9.9.9` in acme/api" in text


async def _resolved(history: Any, ref: str) -> Any:
    incident = await history.incident("api", ref)
    return incident if incident is not None and incident.resolved_at is not None else None


async def test_the_gitlab_adapter_reads_the_compare(redis_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with running_gitlab() as gitlab:
        gitlab.add_tag("acme/web", "v1", "main")
        gitlab.push("acme/web", "main", "One", at=now - timedelta(hours=5))
        gitlab.push("acme/web", "main", "Two", at=now - timedelta(hours=4))
        gitlab.add_tag("acme/web", "v2", "main")
        client = GitLabClient(gitlab.base_url, gitlab.token)
        try:
            commits = await client.commits_between("acme/web", "v1", "v2")
            assert [c.title for c in commits] == ["One", "Two"]
            assert commits[0].committed_at == now - timedelta(hours=5)
            assert await client.commits_between("acme/web", "v2", "v2") == []
            try:
                await client.commits_between("acme/web", "v1", "v404")
            except RefMissing:
                pass
            else:
                raise AssertionError("a missing tag should be RefMissing")
        finally:
            await client.close()
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{gitlab.base_url}/api/v4/projects/acme%2Fweb/repository/compare",
                params={"from": "v1", "to": "v2"},
                headers={"PRIVATE-TOKEN": gitlab.token},
            ) as resp,
        ):
            body = await resp.json()
        assert resp.status == 200
        assert {"commit", "commits", "diffs", "compare_timeout", "compare_same_ref"} <= set(body)
        assert body["commit"]["title"] == "Two" and body["compare_same_ref"] is False
        assert {"id", "created_at", "committed_date", "title"} <= set(body["commits"][0])
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{gitlab.base_url}/api/v4/projects/acme%2Fweb/repository/compare",
                params={"from": "v1", "to": "nope"},
                headers={"PRIVATE-TOKEN": gitlab.token},
            ) as resp,
        ):
            assert resp.status == 404
            assert (await resp.json()) == {"message": "404 Ref Not Found"}
