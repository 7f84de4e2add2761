"""Jenkins as the wiring sees it: used when OPSLOOP_JENKINS_URL is set; with a user and API
token, it builds the projects whose YAML names a Jenkins job (`projects.<alias>.jenkins`)."""

from __future__ import annotations

import base64

from bot.config_file import OpsConfig
from bot.plugins import Plugin, Provided, answers
from bot.settings import Settings

_SET_IT = "set OPSLOOP_JENKINS_URL, OPSLOOP_JENKINS_USER and OPSLOOP_JENKINS_TOKEN."


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return bool(settings.jenkins_url)


def _start(settings: Settings, config: OpsConfig) -> Provided:
    url = (settings.jenkins_url or "").rstrip("/")
    user = settings.jenkins_user or ""
    token = settings.secret("jenkins_token")
    basic = base64.b64encode(f"{user}:{token or ''}".encode()).decode()

    async def check() -> str:
        return await answers(url + "/me/api/json", {"Authorization": f"Basic {basic}"})

    status = "Jenkins configured"
    if not token or not user:
        return Provided(status=status, check=check)
    from integrations.jenkins.ci import JenkinsCI
    from integrations.jenkins.client import JenkinsHTTP

    jobs = frozenset(p.jenkins for p in config.projects.values() if p.jenkins)
    client = JenkinsCI(JenkinsHTTP(url, user, token))
    return Provided(
        status=status,
        check=check,
        ci=client,
        ci_serves=lambda project: project in jobs,
        close=client.close,
    )


PLUGIN = Plugin(
    name="jenkins",
    configured=_configured,
    start=_start,
    status_when_off="Jenkins not configured",
    not_configured={
        "ci": "Jenkins is not configured, so opsloop cannot run its jobs: " + _SET_IT,
    },
)
