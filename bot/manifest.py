"""The Slack app manifest, generated from the registered command families so it stays true."""

from __future__ import annotations

from typing import Any

import yaml

from bot.help import CommandHelp, Shortcut

PLACEHOLDER_URL = "https://opsloop.example.com"
# The fewest scopes the bot's calls need; the README's "Slack app set-up" says why each.
BOT_SCOPES = [
    "chat:write",  # chat.postMessage, chat.update, chat.postEphemeral, chat.getPermalink
    "chat:write.public",  # post to public channels the bot was not invited to
    "commands",  # slash commands and the message shortcut
    # Reading a channel back finds a message a crashed job posted (bot/slack_once.py).
    "channels:history",
    "groups:history",
    "usergroups:read",  # usergroups.users.list: members of approvers/deployers groups
    "users:read",  # users.info
    "users:read.email",  # the profile's e-mail, to find the same person in GitLab
]


def _usage_hint(help_: CommandHelp) -> str:
    hints = [u.removeprefix(help_.command).split("  ")[0].strip() for u in help_.usage]
    return " | ".join(h for h in hints if h)[:100]


def manifest(
    commands: list[CommandHelp],
    base_url: str = PLACEHOLDER_URL,
    shortcuts: list[Shortcut] | None = None,
) -> dict[str, Any]:
    events_url = base_url.rstrip("/") + "/slack/events"
    features: dict[str, Any] = {
        "bot_user": {"display_name": "opsloop", "always_online": True},
        "slash_commands": [
            {
                "command": c.command,
                "url": events_url,
                "description": c.summary[:100],
                "usage_hint": _usage_hint(c),
                "should_escape": True,
            }
            for c in commands
        ],
    }
    if shortcuts:
        features["shortcuts"] = [
            {
                "name": s.name,
                "type": "message",
                "callback_id": s.callback_id,
                "description": s.description,
            }
            for s in shortcuts
        ]
    return {
        "display_information": {
            "name": "opsloop",
            "description": "ChatOps for the whole DevOps loop: tasks, builds, deploys, alerts",
            "background_color": "#1d3557",
        },
        "features": features,
        "oauth_config": {"scopes": {"bot": BOT_SCOPES}},
        "settings": {
            "interactivity": {"is_enabled": True, "request_url": events_url},
            "org_deploy_enabled": False,
            "socket_mode_enabled": False,
            "token_rotation_enabled": False,
        },
    }


def manifest_yaml(
    commands: list[CommandHelp],
    base_url: str = PLACEHOLDER_URL,
    shortcuts: list[Shortcut] | None = None,
) -> str:
    header = (
        "# Slack app manifest for opsloop. Regenerate with:\n"
        f"#   opsloop manifest --url {base_url}\n"
    )
    data = manifest(commands, base_url, shortcuts)
    body = yaml.safe_dump(data, sort_keys=False, width=100)
    return header + body
