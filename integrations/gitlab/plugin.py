"""GitLab as the wiring sees it: used when OPSLOOP_GITLAB_URL is set; with its token, it is the
task tracker, the CI system and the `deployer: gitlab` deployers, through one GitLabClient."""

from __future__ import annotations

from bot.config_file import OpsConfig
from bot.deploys.ports import IMAGE_TAG
from bot.plugins import DeployerKind, Plugin, Provided, answers
from bot.settings import Settings
from integrations.gitlab.config import GitLabService

_SET_IT = "set OPSLOOP_GITLAB_URL and OPSLOOP_GITLAB_TOKEN."


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return bool(settings.gitlab_url)


def _start(settings: Settings, config: OpsConfig) -> Provided:
    url = settings.gitlab_url or ""
    token = settings.secret("gitlab_token")

    async def check() -> str:
        return await answers(url.rstrip("/") + "/api/v4/version", {"PRIVATE-TOKEN": token or ""})

    status = "GitLab configured"
    if not token:  # `opsloop check` says what GitLab thinks of that; the features refuse
        return Provided(status=status, check=check)
    # Here, not above: python-gitlab is loaded only by a process that uses GitLab.
    from integrations.gitlab.adapter import GitLabClient
    from integrations.gitlab.deployer import gitlab_deployers

    client = GitLabClient(
        url,
        token,
        timeout=min(10.0, settings.gitlab_call_seconds / 2),
        budget=settings.gitlab_call_seconds,
    )
    return Provided(
        status=status,
        check=check,
        tasks=client,
        ci=client,
        deployers={"gitlab": gitlab_deployers(client, settings.deploy_poll_seconds)},
        close=client.close,
    )


PLUGIN = Plugin(
    name="gitlab",
    configured=_configured,
    start=_start,
    status_when_off="GitLab not configured",
    deployers=(
        DeployerKind(
            name="gitlab",
            model=GitLabService,
            versions=IMAGE_TAG,
            not_configured="{service} deploys through GitLab, which is not configured: " + _SET_IT,
        ),
    ),
    not_configured={
        "tasks": "GitLab is not configured, so opsloop cannot file tasks: " + _SET_IT,
        "ci": "GitLab is not configured, so opsloop cannot run pipelines: " + _SET_IT,
    },
)
