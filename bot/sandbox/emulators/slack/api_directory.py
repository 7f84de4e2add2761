"""auth.test and the lookups of people, groups and channels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .api_result import ApiResult, Call, fail, ok

if TYPE_CHECKING:
    from .emulator import SlackEmulator


def auth_test(emu: SlackEmulator, call: Call) -> ApiResult:
    """auth.test: who the bot token belongs to (Bolt reads bot_id and user_id from it)."""
    return ok(
        url=f"{call.base_url}/",
        team=emu.team_name,
        user=emu.bot_name,
        team_id=emu.team_id,
        user_id=emu.bot_user_id,
        bot_id=emu.bot_id,
        is_enterprise_install=False,
    )


def users_info(emu: SlackEmulator, call: Call) -> ApiResult:
    """users.info: a user's profile."""
    user = emu.users.get(call.str_arg("user") or "")
    if user is None:
        return fail("user_not_found")
    return ok(user=user.to_slack(emu.team_id))


def users_lookup_by_email(emu: SlackEmulator, call: Call) -> ApiResult:
    """users.lookupByEmail: a user by e-mail address, case-insensitively."""
    email = (call.str_arg("email") or "").lower()
    for user in emu.users.values():
        if email and user.email.lower() == email:
            return ok(user=user.to_slack(emu.team_id))
    return fail("users_not_found")


def usergroup_members(emu: SlackEmulator, call: Call) -> ApiResult:
    """usergroups.users.list: the members of a user group (S...)."""
    group = call.str_arg("usergroup") or ""
    if group not in emu.usergroups:
        return fail("no_such_subteam")
    return ok(users=emu.group_members(group))


def conversation_info(emu: SlackEmulator, call: Call) -> ApiResult:
    """conversations.info: a channel's name and kind."""
    channel = emu.resolve_channel(call.args.get("channel"))
    if channel is None:
        return fail("channel_not_found")
    if channel in emu.dm_channels:
        info = {"id": channel, "is_im": True, "is_channel": False, "user": emu.dm_channels[channel]}
    else:
        info = {
            "id": channel,
            "name": emu.channels[channel],
            "is_channel": True,
            "is_im": False,
            "is_private": False,
            "is_archived": False,
            "is_member": True,
        }
    return ok(channel={"created": 1700000000, "context_team_id": emu.team_id, **info})
