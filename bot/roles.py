"""Who holds a role: Slack user IDs, or members of Slack user groups (S...), from the YAML."""

from __future__ import annotations

from collections.abc import Iterable

from bot.deps import Deps
from bot.errors import IntegrationError


async def holds(deps: Deps, user: str, principals: Iterable[str]) -> bool:
    """Is `user` one of `principals`, directly or through a user group?"""
    groups = []
    for principal in principals:
        if principal == user:
            return True
        if principal.startswith("S"):
            groups.append(principal)
    for group in groups:
        if user in await members(deps, group):
            return True
    return False


async def members(deps: Deps, group: str) -> list[str]:
    """A user group's members (usergroups.users.list), cached for ten minutes."""
    cached = await deps.store.builds.usergroup_members(group)
    if cached is not None:
        return cached
    try:
        data = await deps.slack.call("usergroups.users.list", usergroup=group)
    except IntegrationError:
        return []  # a group Slack cannot resolve grants nothing
    users = [str(u) for u in data.get("users", [])]
    await deps.store.builds.cache_usergroup(group, users)
    return users


async def approves_anything(deps: Deps, user: str) -> bool:
    """Is `user` an approver: in `roles.approvers` or in any service's `approvers`?"""
    config = deps.config
    principals = [*config.roles.approvers]
    for service in config.services.values():
        principals += service.approvers or []
    return await holds(deps, user, principals)
