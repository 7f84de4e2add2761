"""The shapes shared by every Web API method: its arguments in, Slack's answer out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .blockkit import slack_messages, validate_blocks
from .models import JSON

MAX_TEXT = 40_000


@dataclass(frozen=True)
class Call:
    """One Web API call's arguments (token removed) and the emulator's public base URL."""

    args: JSON
    base_url: str

    def str_arg(self, name: str) -> str | None:
        """An argument as a non-empty string, or None."""
        value = self.args.get(name)
        if value is None or value == "":
            return None
        return value if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class ApiResult:
    """What a Web API method answers: the JSON body, HTTP status and extra headers."""

    body: JSON
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        """Slack's error string, when the call failed."""
        error = self.body.get("error")
        return error if isinstance(error, str) else None


def ok(**fields: Any) -> ApiResult:
    """A successful answer."""
    return ApiResult({"ok": True, **fields})


def fail(error: str, *, status: int = 200, **extra: Any) -> ApiResult:
    """A failed answer; Slack says most failures with HTTP 200 and `ok: false`."""
    return ApiResult({"ok": False, "error": error, **extra}, status=status)


def rate_limited(retry_after: int) -> ApiResult:
    """Slack's 429: wait `retry_after` seconds before calling the method again."""
    return ApiResult(
        {"ok": False, "error": "ratelimited"},
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


def invalid(error: str, problems: list[str]) -> ApiResult:
    """A refusal that lists each problem, in `errors` and in `response_metadata.messages`."""
    return fail(error, errors=problems, response_metadata={"messages": slack_messages(problems)})


def as_bool(value: Any) -> bool:
    """A boolean argument as form posts (`"true"`, `"1"`) and JSON bodies send it."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


@dataclass(frozen=True)
class Content:
    """A message's text, blocks and attachments, each None when the caller left it out."""

    text: str | None
    blocks: list[JSON] | None
    attachments: list[JSON] | None

    @property
    def empty(self) -> bool:
        """Whether there is nothing to show (Slack's `no_text`)."""
        return not self.text and not self.blocks and not self.attachments


def message_content(args: JSON) -> Content | ApiResult:
    """The content of chat.* arguments or a response_url body, or Slack's refusal of it."""
    text = args.get("text")
    if text is not None and not isinstance(text, str):
        text = str(text)
    blocks = args.get("blocks")
    if blocks is not None:
        problems = validate_blocks(blocks)
        if problems:
            return invalid("invalid_blocks", problems)
    attachments = args.get("attachments")
    if attachments is not None and not isinstance(attachments, list):
        return fail("invalid_attachments")
    if text is not None and len(text) > MAX_TEXT:
        return fail("msg_too_long")
    return Content(text=text, blocks=blocks, attachments=attachments)
