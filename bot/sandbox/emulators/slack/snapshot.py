"""The workspace as JSON for the sandbox page (`GET /_emulator/state`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .models import JSON, Message

if TYPE_CHECKING:
    from .emulator import SlackEmulator


def message_dict(emu: SlackEmulator, msg: Message) -> JSON:
    """A message as the page draws it; replies carry an empty `replies` list."""
    return {
        "ts": msg.ts,
        "user": msg.user,
        "user_name": emu.user_name(msg.user),
        "is_bot": msg.user == emu.bot_user_id,
        "text": msg.text,
        "blocks": msg.blocks,
        "attachments": msg.attachments,
        "thread_ts": msg.thread_ts,
        "subtype": msg.subtype,
        "reply_count": len(msg.replies),
        "edited": msg.edited_ts is not None,
        "reactions": [
            {"name": name, "users": list(users), "count": len(users)}
            for name, users in msg.reactions.items()
        ],
        "replies": [message_dict(emu, reply) for reply in msg.replies],
    }


def state_snapshot(emu: SlackEmulator) -> JSON:
    """Everything the page shows, with the version it was taken at."""
    channels: list[JSON] = [{"id": cid, "name": name} for cid, name in emu.channels.items()]
    channels += [
        {"id": dm, "name": emu.user_name(uid), "is_im": True, "user": uid}
        for dm, uid in emu.dm_channels.items()
    ]
    return {
        "version": emu.version,
        "team": {"id": emu.team_id, "domain": emu.team_domain, "name": emu.team_name},
        "bot_user_id": emu.bot_user_id,
        "bot_name": emu.bot_name,
        "users": [
            {
                "id": u.id,
                "name": u.name,
                "real_name": u.real_name or u.name,
                "approver": emu.is_approver(u.id),
            }
            for u in emu.users.values()
            if not u.is_bot
        ],
        "usergroups": [
            {"id": gid, "handle": emu.group_handle(gid), "members": list(m)}
            for gid, m in emu.usergroups.items()
        ],
        "channels": channels,
        "messages": {
            c["id"]: [message_dict(emu, m) for m in emu.messages(c["id"])] for c in channels
        },
        "ephemerals": [
            {
                "channel": e.channel,
                "user": e.user,
                "text": e.text,
                "blocks": e.blocks,
                "ts": e.ts,
                "thread_ts": e.thread_ts,
                "sender": e.sender,
            }
            for e in emu.ephemerals()
        ],
        "views": [
            {"id": v.id, "user": v.user, "view": v.view, "errors": v.errors}
            for v in emu.views.values()
            if v.is_open
        ],
    }
