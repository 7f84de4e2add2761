"""Wording shared by every command: errors, usage and help. Family-specific text lives in
`commands/<family>_replies.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.errors import IntegrationError, OutcomeUnknown, UserError
from bot.help import CommandHelp


@dataclass(frozen=True)
class Reply:
    """What a command or click answers: ephemeral unless `in_channel`."""

    text: str
    blocks: list[dict[str, Any]] | None = field(default=None)
    in_channel: bool = False
    replace_original: bool = False


def clock(ts: float, *, seconds: bool = False, day: bool = False) -> str:
    """A moment as every reader sees it in their own time zone: Slack's date token, whose text
    after `|` (UTC) shows where a client cannot format it. The one way opsloop shows a time."""
    moment = datetime.fromtimestamp(ts, UTC)
    token = "{time_secs}" if seconds else "{time}"
    fallback = moment.strftime("%H:%M:%S" if seconds else "%H:%M")
    if day:
        token, fallback = "{date_num} " + token, f"{moment:%Y-%m-%d} {fallback}"
    return f"<!date^{int(ts)}^{token}|{fallback} UTC>"


def counted(n: int, one: str, many: str | None = None) -> str:
    """`1 approval`, `2 approvals`: a count with its noun, never `approval(s)`."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def escape(text: str) -> str:
    """Outside text (alert labels, issue titles) in mrkdwn: Slack reads `<!channel>`, `<@U..>`
    and `<url|text>` in it as mentions and links, so those characters are escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    """A Block Kit button; `style` is "primary", "danger" or None for the plain one."""
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style is not None:
        element["style"] = style
    return element


def sections(lines: list[str], more: str = "") -> list[dict[str, Any]]:
    """Lines as mrkdwn sections, each under Slack's 3000 characters, no line split."""
    blocks: list[dict[str, Any]] = []
    chunk: list[str] = []
    for line in lines:
        if sum(len(c) + 1 for c in chunk) + len(line) > 2900:
            blocks.append(mrkdwn_section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk or more:
        blocks.append(mrkdwn_section("\n".join(chunk) + more))
    return blocks


def user_error(e: UserError) -> Reply:
    text = f":warning: {e.problem}"
    if e.hint:
        text += f"\n{e.hint}"
    return Reply(text=text)


def integration_error(e: IntegrationError) -> Reply:
    return Reply(text=f":x: {e.system}: {e.message}")


def unexpected_error(reference: str) -> Reply:
    # A fault can come after part of the work was done, so this never says nothing was.
    return Reply(
        text=(
            f":x: Something went wrong on opsloop's side (reference `{reference}`). Part of "
            "this request may have been done: check the channel or `/ops audit` before "
            "trying again, and give the reference to whoever runs opsloop."
        )
    )


def outcome_unknown(e: OutcomeUnknown) -> Reply:
    """Another system did not confirm in time: whether it acted is not known yet."""
    text = f":hourglass: {e.message}. opsloop keeps checking and will answer here once it knows"
    if e.check:
        text += f"; check {e.check} before trying again"
    return Reply(text=text + ".")


def usage(help_: CommandHelp) -> str:
    lines = [f"*{help_.command}*: {escape(help_.summary)}"]
    lines += [f"• `{escape(line)}`" for line in help_.usage]
    return "\n".join(lines)


def usage_error(help_: CommandHelp, problem: str) -> UserError:
    """A UserError that ends with the family's usage, so the person sees what to type."""
    # Usage lines hold placeholders like <ref>; unescaped, Slack would read them as links.
    lines = "\n".join(f"• `{escape(u)}`" for u in help_.usage)
    return UserError(problem, "Usage:\n" + lines)


def unknown_button(expected: str, instead: str) -> UserError:
    """A click whose value opsloop did not write (a tampered or foreign message): nothing was
    done; `expected` shows the value's shape, `instead` the command that does the same."""
    return UserError(
        f"This button is not one opsloop made (its value should be {expected}), "
        "so nothing was done.",
        f"Use {instead} instead.",
    )
