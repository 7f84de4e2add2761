"""The things a Slack workspace holds, as the emulator records them."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

# The user id Slack's own notices come from.
SLACKBOT = "USLACKBOT"


@dataclass(frozen=True)
class EmulatorUser:
    """A member of the emulated workspace."""

    id: str
    name: str
    real_name: str = ""
    email: str = ""
    is_bot: bool = False
    tz: str = "Europe/Berlin"

    def to_slack(self, team_id: str) -> JSON:
        """The user object as users.info returns it."""
        real_name = self.real_name or self.name
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": real_name,
            "deleted": False,
            "is_bot": self.is_bot,
            "is_admin": False,
            "tz": self.tz,
            "profile": {
                "email": self.email,
                "real_name": real_name,
                "display_name": self.name,
            },
        }


@dataclass(frozen=True)
class MessageVersion:
    """A message as it was before an edit replaced it."""

    text: str
    blocks: list[JSON]
    attachments: list[JSON]


@dataclass
class Message:
    """A message in a channel or a thread, with its replies, edits and reactions."""

    ts: str
    channel: str
    user: str
    text: str
    blocks: list[JSON] = field(default_factory=list)
    thread_ts: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    team: str | None = None
    attachments: list[JSON] = field(default_factory=list)
    subtype: str | None = None
    metadata: JSON | None = None
    edited_ts: str | None = None
    edits: list[MessageVersion] = field(default_factory=list)
    replies: list[Message] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)

    def to_slack(self) -> JSON:
        """The message as Slack's API and interaction payloads carry it."""
        out: JSON = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts}
        if self.subtype:
            out["subtype"] = self.subtype
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.app_id:
            out["app_id"] = self.app_id
        if self.team:
            out["team"] = self.team
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.replies:
            out["reply_count"] = len(self.replies)
            out["reply_users"] = sorted({r.user for r in self.replies})
            out["latest_reply"] = self.replies[-1].ts
        if self.edited_ts:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        return out


@dataclass
class Ephemeral:
    """A message only one user sees."""

    ts: str
    channel: str
    user: str
    text: str
    blocks: list[JSON] = field(default_factory=list)
    thread_ts: str | None = None
    attachments: list[JSON] = field(default_factory=list)
    edits: list[MessageVersion] = field(default_factory=list)
    # Who shows it: None for the app; SLACKBOT when Slack itself answers (an unknown command).
    sender: str | None = None


@dataclass
class View:
    """A modal (or home tab) and where it stands in its user's view stack."""

    id: str
    user: str
    view: JSON
    trigger_id: str | None
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    external_id: str | None = None
    errors: dict[str, str] | None = None
    is_open: bool = True
    history: list[JSON] = field(default_factory=list)


@dataclass(frozen=True)
class RecordedCall:
    """One Web API call or response_url post, as the emulator answered it."""

    method: str
    args: JSON
    ok: bool
    error: str | None
    status: int
    at: float
    response: Any = None


@dataclass(frozen=True)
class Delivery:
    """One request the driver made to the bot, and how the bot answered."""

    kind: str
    body: str
    status: int
    answer: str
    elapsed_ms: float
    at: float
    retry_num: int | None = None
    note: str | None = None
    transport: str = "http"  # "socket": an envelope over Socket Mode, body is its JSON
