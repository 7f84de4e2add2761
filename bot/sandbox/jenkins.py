"""The sandbox's Jenkins: the emulator (bot/sandbox/emulators/jenkins) with the sample project
`legacy`'s job, its Notification plugin pointed at the bot, and the bot's settings for it;
none of it when the person points the sandbox at a real Jenkins (OPSLOOP_JENKINS_URL)."""

from __future__ import annotations

from contextlib import AsyncExitStack

from pydantic import SecretStr

from bot.sandbox.emulators.jenkins import JenkinsEmulator
from bot.settings import Settings

JENKINS_TOKEN = "11sandbox0not0a0secret0000000000aa"
JENKINS_HOOK_TOKEN = "sandbox-jenkins-hook-token"
STAGE_SECONDS = 3.0  # slow enough for a person to watch the stages go by


async def start(stack: AsyncExitStack, settings: Settings) -> JenkinsEmulator | None:
    """The emulated Jenkins, serving until `stack` closes (jobs `folder/legacy-build`, which
    takes BRANCH, DEPLOY_ENV and OPSLOOP_REQUEST, and `plain`); None with a real one."""
    if settings.jenkins_url:
        return None
    jenkins = JenkinsEmulator(token=JENKINS_TOKEN)
    jenkins.step_seconds = STAGE_SECONDS
    await stack.enter_async_context(jenkins.serve(settings.host, 0))
    return jenkins


def point_at(settings: Settings, jenkins: JenkinsEmulator | None) -> Settings:
    """The bot's settings, with the emulated Jenkins' when there is one."""
    if jenkins is None:
        return settings
    return settings.model_copy(
        update={
            "jenkins_url": jenkins.url,
            "jenkins_user": jenkins.user,
            "jenkins_token": SecretStr(JENKINS_TOKEN),
            "jenkins_webhook_token": SecretStr(JENKINS_HOOK_TOKEN),
        }
    )


def notify_bot(jenkins: JenkinsEmulator | None, bot_url: str) -> None:
    """The Notification plugin's endpoint: the bot's /hooks/jenkins with its token."""
    if jenkins is not None:
        jenkins.notify(f"{bot_url}/hooks/jenkins?token={JENKINS_HOOK_TOKEN}")


def lines(jenkins: JenkinsEmulator | None) -> list[str]:
    if jenkins is None:
        return []
    return [f"  (emulated Jenkins: {jenkins.url}; try /build legacy develop in #legacy)"]
