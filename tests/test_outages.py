"""A Redis outage, seen from the log: one line when it goes down, one when it is back, and no
traceback for each request refused meanwhile."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from bot.outages import REDIS
from tests.harness import BotUnderTest, running_bot
from tests.servers import own_redis
from tests.waiting import eventually

HOOK_SECRET = "gitlab-hook-secret"
AM_TOKEN = "alertmanager-hook-token"
REFUSED = 4  # of each kind of request, while Redis is stopped
NOTIFICATION = {
    "version": "4",
    "groupKey": "{}:{alertname=DiskFull}",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull"},
            "startsAt": "2026-11-21T10:00:00Z",
        }
    ],
}
PIPELINE = {
    "object_kind": "pipeline",
    "object_attributes": {"id": 7, "status": "running"},
    "project": {"path_with_namespace": "acme/web"},
}


def outage_lines(caplog: pytest.LogCaptureFixture, words: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.outages" and words in r.getMessage()]


async def requests_needing_redis(bot: BotUnderTest, http: aiohttp.ClientSession) -> list[int]:
    """A slash command, both webhooks and /readyz: the statuses they got (204 for a command
    acked empty, once its job is stored)."""
    command = await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
    # While Redis is away the person is told so in the ack; else the ack is empty.
    statuses = [command.status if command.body else 204]
    alert = {"Authorization": f"Bearer {AM_TOKEN}"}
    async with http.post(
        bot.base_url + "/hooks/alertmanager", json=NOTIFICATION, headers=alert
    ) as r:
        statuses.append(r.status)
    gitlab = {"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Token": HOOK_SECRET}
    async with http.post(bot.base_url + "/hooks/gitlab", json=PIPELINE, headers=gitlab) as r:
        statuses.append(r.status)
    async with http.get(bot.base_url + "/readyz") as r:
        statuses.append(r.status)
    return statuses


async def test_a_redis_outage_logs_one_line_down_and_one_back_and_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    env = {
        "OPSLOOP_GITLAB_WEBHOOK_SECRET": HOOK_SECRET,
        "OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN": AM_TOKEN,
    }
    async with (
        own_redis(tmp_path) as server,
        running_bot(server.url, worker=False, **env) as bot,
        aiohttp.ClientSession() as http,
    ):
        ok = await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        assert (ok.status, ok.body) == (200, "")  # stored; an earlier test's outage is over
        caplog.clear()

        server.stop()
        for _ in range(REFUSED):
            assert await requests_needing_redis(bot, http) == [200, 503, 503, 503]
        answer = (await bot.driver.command("/ops", "help", user="U0ALICE")).json["text"]
        down = outage_lines(caplog, f"{REDIS} is down")
        assert len(down) == 1 and down[0].levelno == logging.WARNING, caplog.text
        # Every refusal during the outage shows the reference of its one log line.
        reference = down[0].getMessage().rpartition("reference ")[2].rstrip(")")
        assert f"reference `{reference}`" in answer
        assert not [r for r in caplog.records if r.exc_info], caplog.text
        assert "Traceback" not in caplog.text

        server.start()  # the same port again

        async def stored() -> bool:
            resp = await bot.driver.command("/ops", "help", user="U0ALICE")
            return (resp.status, resp.body) == (200, "")

        await eventually(stored, what="a command stored once Redis is back")
        assert await requests_needing_redis(bot, http) == [204, 202, 200, 200]
        back = outage_lines(caplog, f"{REDIS} is back")
        assert len(back) == 1 and back[0].levelno == logging.INFO, caplog.text
        assert len(outage_lines(caplog, f"{REDIS} is down")) == 1
        assert not [r for r in caplog.records if r.exc_info], caplog.text
