"""Who a Slack user is in the task tracker: the YAML `users:` map, else the same e-mail address.

The match by e-mail asks Slack (users.info) and the tracker (person by e-mail) once, then is
cached in Redis for a day.
"""

from __future__ import annotations

from bot.deps import Deps
from bot.errors import IntegrationError, UserError
from bot.tasks.ports import TaskTracker


async def tracker_username(deps: Deps, tracker: TaskTracker, slack_user: str) -> str:
    """The tracker username of a Slack user; a UserError saying how to fix it when unknown."""
    override = deps.config.users.get(slack_user)
    # The `users:` map names accounts of the tracker of most projects; for another tracker
    # (Jira beside GitLab) an override that tracker does not know falls back to the e-mail.
    if override and (
        len(deps.systems.trackers) <= 1 or await tracker.person_by_username(override) is not None
    ):
        return override
    cached = await deps.store.tasks.cached_username(slack_user, tracker.system)
    if cached:
        return cached
    system = tracker.system
    try:
        info = await deps.slack.call("users.info", user=slack_user)
    except IntegrationError as e:
        raise UserError(
            f"I could not look up <@{slack_user}> in Slack ({e.message}).",
            _fix(slack_user, system),
        ) from e
    profile = (info.get("user") or {}).get("profile") or {}
    email = str(profile.get("email") or "")
    if not email:
        raise UserError(
            f"<@{slack_user}> has no e-mail address on their Slack profile, so I cannot find "
            f"them in {system}.",
            _fix(slack_user, system),
        )
    person = await tracker.person_by_email(email)
    if person is None:
        raise UserError(
            f"No {system} user has <@{slack_user}>'s e-mail address ({email}).",
            _fix(slack_user, system),
        )
    await deps.store.tasks.cache_username(slack_user, tracker.system, person.username)
    return person.username


def _fix(slack_user: str, system: str) -> str:
    return (
        f"Map them to their {system} username in the YAML file, e.g. "
        f"`users: {{{slack_user}: their-{system.lower()}-name}}`."
    )
