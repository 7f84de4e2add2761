"""What a newcomer reads in their first hour, said once and plainly: an alert's title once, every
time as Slack's date token (each reader's own zone, UTC where a client cannot), counts with
their nouns. Signed requests in, what the Slack emulator recorded out."""

from __future__ import annotations

import re
from typing import Any

from tests.alert_payloads import TOKEN, alert_config, sample
from tests.harness import running_bot
from tests.test_alerts_webhook import INCIDENT, post_hook
from tests.waiting import eventually

DATE_TOKEN = re.compile(r"<!date\^\d+\^[^|>]+\|[^>]+ UTC>")


def block_texts(blocks: Any) -> list[str]:
    """Every text a person reads in these blocks."""
    found: list[str] = []
    if isinstance(blocks, dict):
        for key, value in blocks.items():
            if key == "text" and isinstance(value, str):
                found.append(value)
            else:
                found += block_texts(value)
    elif isinstance(blocks, list):
        for item in blocks:
            found += block_texts(item)
    return found


def plain_times(text: str) -> list[str]:
    """Clock times written out rather than as a date token."""
    return re.findall(r"\d\d:\d\d", DATE_TOKEN.sub("", text))


async def test_an_alert_says_its_title_once_and_every_time_as_a_date_token(
    redis_url: str,
) -> None:
    config = alert_config()
    async with running_bot(
        redis_url, config=config, OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=TOKEN
    ) as bot:
        status, _ = await post_hook(bot, sample("alertmanager-firing.json"))
        assert status == 202
        [parent] = await eventually(lambda: bot.emulator.messages(INCIDENT), what="the alert")
        texts = block_texts(parent.blocks)
        read = [re.sub(r"<[^|>]+\|([^>]*)>", r"\1", t) for t in texts]  # links: their labels
        assert sum(t.count("HighLatency") for t in read) == 1, texts
        started = next(t for t in texts if t.startswith("*Started*"))
        assert DATE_TOKEN.search(started) and "{time}" in started, started

        await bot.driver.command("/ack", "AL-1 looking", user="U0BOB", channel=INCIDENT)
        await eventually(
            lambda: any("Acknowledged by" in t for t in block_texts(parent.blocks)),
            what="the acknowledgement on the message",
        )
        shown = "\n".join(block_texts(parent.blocks))
        assert "Acknowledged by <@U0BOB> at <!date^" in shown
        assert plain_times(shown) == [], shown

        await bot.driver.command("/ops", "status", user="U0BOB", channel=INCIDENT)
        await bot.driver.command("/ops", "audit 5", user="U0BOB", channel=INCIDENT)

        def answer(words: str) -> Any:
            return next((e for e in bot.emulator.ephemerals(user="U0BOB") if words in e.text), None)

        status_reply = await eventually(lambda: answer("opsloop is"), what="/ops status")
        audit_reply = await eventually(lambda: answer("audit entr"), what="/ops audit")
        checked = "\n".join(block_texts(status_reply.blocks))
        assert "Checked at <!date^" in checked and "{time_secs}" in checked
        assert plain_times(checked) == [], checked
        audit = "\n".join(block_texts(audit_reply.blocks))
        assert "Last 1 audit entry" in audit and "entries" not in audit
        assert "{date_num} {time_secs}" in audit and plain_times(audit) == [], audit
