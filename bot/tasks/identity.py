"""Who a Slack user is in GitLab: the YAML `users:` map, else the same e-mail address.

The match by e-mail asks Slack (users.info) and GitLab (user search) once, then is cached in
Redis for a day.
"""

from __future__ import annotations

from bot.deps import Deps
from bot.errors import IntegrationError, UserError
from integrations.gitlab import TasksPort


async def gitlab_username(deps: Deps, gitlab: TasksPort, slack_user: str) -> str:
    """The GitLab username of a Slack user; a UserError saying how to fix it when unknown."""
    override = deps.config.users.get(slack_user)
    if override:
        return override
    cached = await deps.store.tasks.cached_username(slack_user)
    if cached:
        return cached
    try:
        info = await deps.slack.call("users.info", user=slack_user)
    except IntegrationError as e:
        raise UserError(
            f"I could not look up <@{slack_user}> in Slack ({e.message}).",
            _fix(slack_user),
        ) from e
    profile = (info.get("user") or {}).get("profile") or {}
    email = str(profile.get("email") or "")
    if not email:
        raise UserError(
            f"<@{slack_user}> has no e-mail address on their Slack profile, so I cannot find "
            "them in GitLab.",
            _fix(slack_user),
        )
    user = await gitlab.user_by_email(email)
    if user is None:
        raise UserError(
            f"No GitLab user has <@{slack_user}>'s e-mail address ({email}).", _fix(slack_user)
        )
    await deps.store.tasks.cache_username(slack_user, user.username)
    return user.username


def _fix(slack_user: str) -> str:
    return (
        "Map them to their GitLab username in the YAML file, e.g. "
        f"`users: {{{slack_user}: their-gitlab-name}}`."
    )
