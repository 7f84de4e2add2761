"""Jira as the wiring sees it: used when OPSLOOP_JIRA_URL is set; with its token (and, for
Cloud, the account's e-mail) it is the task tracker of every project with `jira: KEY`, while
GitLab keeps serving the projects without one."""

from __future__ import annotations

import base64

from bot.config_file import OpsConfig
from bot.plugins import Plugin, Provided, answers
from bot.settings import Settings

_SET_IT = (
    "set OPSLOOP_JIRA_URL and OPSLOOP_JIRA_TOKEN (and, for Jira Cloud, OPSLOOP_JIRA_EMAIL: "
    "the e-mail of the account the API token belongs to)."
)


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return bool(settings.jira_url)


def _start(settings: Settings, config: OpsConfig) -> Provided:
    url = (settings.jira_url or "").rstrip("/")
    token = settings.secret("jira_token")
    email = settings.jira_email or None
    if email:
        basic = base64.b64encode(f"{email}:{token or ''}".encode()).decode()
        probe, header = f"{url}/rest/api/3/myself", f"Basic {basic}"
    else:
        probe, header = f"{url}/rest/api/2/myself", f"Bearer {token or ''}"

    async def check() -> str:
        return await answers(probe, {"Authorization": header, "Accept": "application/json"})

    status = "Jira configured" + (" (Cloud)" if email else " (Data Center)")
    if not token:  # `opsloop check` says what Jira thinks of that; /task refuses
        return Provided(status=status, check=check)
    from integrations.jira.tasks import JiraTaskTracker

    tracker = JiraTaskTracker(
        url,
        token,
        email=email,
        timeout=min(10.0, settings.gitlab_call_seconds / 2),
        budget=settings.gitlab_call_seconds,
    )
    return Provided(status=status, check=check, tasks=tracker, close=tracker.close)


PLUGIN = Plugin(
    name="jira",  # also the project key naming its projects: `projects.<alias>.jira`
    configured=_configured,
    start=_start,
    status_when_off="Jira not configured",
    not_configured={
        "tasks": "Jira is not configured, so opsloop cannot file tasks in Jira projects: " + _SET_IT
    },
)
