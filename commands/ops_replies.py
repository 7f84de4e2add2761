"""Wording and Block Kit of `/ops`: help, status and the audit log."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bot.deps import CommandHelp
from bot.replies import Reply, clock, context, counted, mrkdwn_section, sections, usage
from bot.store import AuditEntry

REFRESH_STATUS = "ops_status_refresh"


def help_reply(commands: list[CommandHelp]) -> Reply:
    parts = [usage(c) for c in commands]
    text = "*opsloop commands*\n\n" + "\n\n".join(parts)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "opsloop commands"}}
    ]
    for part in parts:
        blocks.append(mrkdwn_section(part))
    blocks.append(context("Every command also answers `help`, e.g. `/ops help`."))
    return Reply(text=text, blocks=blocks)


@dataclass(frozen=True)
class StatusCheck:
    name: str
    ok: bool
    detail: str


def status_reply(checks: list[StatusCheck], *, replace: bool = False) -> Reply:
    lines = [f"{':white_check_mark:' if c.ok else ':x:'} *{c.name}*: {c.detail}" for c in checks]
    healthy = all(c.ok for c in checks)
    headline = "opsloop is healthy" if healthy else "opsloop has a problem"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline}},
        mrkdwn_section("\n".join(lines)),
        {
            "type": "actions",
            "block_id": "ops_status",
            "elements": [
                {
                    "type": "button",
                    "action_id": REFRESH_STATUS,
                    "text": {"type": "plain_text", "text": "Refresh"},
                    "value": "refresh",
                }
            ],
        },
        context(f"Checked at {clock(time.time(), seconds=True)}"),
    ]
    return Reply(text=headline + "\n" + "\n".join(lines), blocks=blocks, replace_original=replace)


def _who(who: str) -> str:
    return f"<@{who}>" if who[:1] in ("U", "W") and who.isalnum() else who


def audit_reply(entries: list[AuditEntry], asked: int) -> Reply:
    if not entries:
        return Reply(text="The audit log is empty: no decisions have been recorded yet.")
    lines = []
    for e in entries:
        subject = f" `{e.subject}`" if e.subject else ""
        lines.append(f"{clock(e.at, seconds=True, day=True)} {_who(e.who)} *{e.action}*{subject}")
    title = f"Last {counted(len(entries), 'audit entry', 'audit entries')}" + (
        f" (of the {asked} asked for)" if len(entries) < asked else ""
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}}
    ]
    blocks += sections(lines)
    return Reply(text=title + "\n" + "\n".join(lines), blocks=blocks[:50])
