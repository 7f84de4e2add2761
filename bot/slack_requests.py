"""The parts of Slack's requests that jobs need, as plain JSON-safe data.

A delivery's identity is Slack's own `trigger_id` (one per command invocation or click, the same
on a retry of that delivery), else the event's `event_id`, else a hash of the body; it becomes the
job id, so a retried delivery never acts twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    """`data[key]` when it is an object, else {}. The HTTP boundary has checked the shapes
    (bot.slack_shapes); Socket Mode envelopes reach Bolt unchecked."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _first_action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        return actions[0]
    return {}


def delivery_id(body: dict[str, Any]) -> str:
    for key in ("trigger_id", "event_id"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SlashRequest:
    """A slash command as the job sees it."""

    command: str
    text: str
    user_id: str
    user_name: str
    channel_id: str
    team_id: str
    response_url: str
    trigger_id: str

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SlashRequest:
        return cls(
            command=str(body.get("command", "")),
            text=str(body.get("text", "")).strip(),
            user_id=str(body.get("user_id", "")),
            user_name=str(body.get("user_name", "")),
            channel_id=str(body.get("channel_id", "")),
            team_id=str(body.get("team_id", "")),
            response_url=str(body.get("response_url", "")),
            trigger_id=str(body.get("trigger_id", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        # On the ack path: dataclasses.asdict deep-copies each field, several times slower.
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlashRequest:
        return cls(**{k: str(data.get(k, "")) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ActionRequest:
    """A button click or select (block_actions) as the job sees it."""

    action_id: str
    block_id: str
    value: str
    user_id: str
    user_name: str
    channel_id: str
    message_ts: str
    is_ephemeral: bool
    response_url: str
    trigger_id: str

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ActionRequest:
        action = _first_action(body)
        value = action.get("value")
        if value is None:
            value = _object(action, "selected_option").get("value")
        container = _object(body, "container")
        user = _object(body, "user")
        channel = _object(body, "channel")
        return cls(
            action_id=str(action.get("action_id", "")),
            block_id=str(action.get("block_id", "")),
            value=str(value or ""),
            user_id=str(user.get("id", "")),
            user_name=str(user.get("username") or user.get("name") or ""),
            channel_id=str(channel.get("id") or container.get("channel_id") or ""),
            message_ts=str(container.get("message_ts") or ""),
            is_ephemeral=bool(container.get("is_ephemeral", False)),
            response_url=str(body.get("response_url", "")),
            trigger_id=str(body.get("trigger_id", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionRequest:
        fields = cls.__dataclass_fields__
        values: dict[str, Any] = {k: str(data.get(k, "")) for k in fields}
        values["is_ephemeral"] = bool(data.get("is_ephemeral", False))
        return cls(**values)


@dataclass(frozen=True)
class ViewRequest:
    """A modal submitted (view_submission) as the job sees it."""

    user_id: str
    user_name: str
    view_id: str
    callback_id: str
    private_metadata: str
    trigger_id: str

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ViewRequest:
        view = _object(body, "view")
        user = _object(body, "user")
        return cls(
            user_id=str(user.get("id", "")),
            user_name=str(user.get("username") or user.get("name") or ""),
            view_id=str(view.get("id", "")),
            callback_id=str(view.get("callback_id", "")),
            private_metadata=str(view.get("private_metadata", "")),
            trigger_id=str(body.get("trigger_id", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViewRequest:
        return cls(**{k: str(data.get(k, "")) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ShortcutRequest:
    """A message shortcut (message_action) as the job sees it."""

    callback_id: str
    user_id: str
    user_name: str
    channel_id: str
    message_ts: str
    thread_ts: str
    message_text: str
    message_user: str
    response_url: str
    trigger_id: str

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ShortcutRequest:
        message = _object(body, "message")
        user = _object(body, "user")
        channel = _object(body, "channel")
        return cls(
            callback_id=str(body.get("callback_id", "")),
            user_id=str(user.get("id", "")),
            user_name=str(user.get("username") or user.get("name") or ""),
            channel_id=str(channel.get("id", "")),
            message_ts=str(message.get("ts") or body.get("message_ts") or ""),
            thread_ts=str(message.get("thread_ts") or ""),
            message_text=str(message.get("text", "")),
            message_user=str(message.get("user") or message.get("bot_id") or ""),
            response_url=str(body.get("response_url", "")),
            trigger_id=str(body.get("trigger_id", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShortcutRequest:
        return cls(**{k: str(data.get(k, "")) for k in cls.__dataclass_fields__})
