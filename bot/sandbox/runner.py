"""`opsloop sandbox`: the bot, the Slack emulator and the web page in one process.

The page and the emulator share the port a newcomer opens (`--port`, else OPSLOOP_PORT); the
bot's own HTTP server (Slack endpoint, webhooks, health, metrics) listens on a free port beside
it, and the emulator delivers signed requests there exactly as Slack would. The page's "Fire
sample alert" control (bot/sandbox/alerts.py) posts Alertmanager webhooks to that server too. An
emulated GitLab (bot/sandbox/emulators/gitlab) on another free port answers the bot's /task and
/build calls and runs the acme/api pipelines that `/deploy api` plays. An emulated Kubernetes
(bot/sandbox/cluster.py) on another free port holds the Argo Rollout `/deploy shop` walks and the
Deployment `/deploy cart` canaries; its kubeconfig is in the sandbox's data directory. When a
Docker Engine answers, `/deploy web` runs real containers on it (bot/sandbox/deploys.py).

The sandbox knows the bot only as the `Bot` it is handed (bot/cli.py builds it) and through HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from bot.config_file import OpsConfig
from bot.config_load import load_config
from bot.errors import SettingsError
from bot.sandbox import cluster, deploys
from bot.sandbox import jenkins as sandbox_jenkins
from bot.sandbox.alerts import SANDBOX_WEBHOOK_TOKEN, SandboxAlerts, add_alert_routes
from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.sandbox.emulators.jira import JiraEmulator
from bot.sandbox.emulators.prometheus import PrometheusEmulator
from bot.sandbox.emulators.slack import SlackEmulator
from bot.sandbox.page import add_page_routes
from bot.sandbox.sample import CHANNELS, USERGROUPS, USERS, sample_config
from bot.serving import served
from bot.settings import Settings, config_path

log = logging.getLogger("opsloop.sandbox")

BOT_TOKEN = "xoxb-sandbox-not-a-secret"
GITLAB_TOKEN = "glpat-sandbox-not-a-secret"
GITLAB_HOOK_SECRET = "sandbox-gitlab-hook-secret"
SIGNING_SECRET = "sandbox-signing-secret"
# Seconds between looks at a deploy's GitLab job, unless OPSLOOP_DEPLOY_POLL_SECONDS says
# otherwise: the emulated runner moves a job every second, and a person is watching.
DEPLOY_POLL_SECONDS = 0.5


class Shortcut(Protocol):
    """A message shortcut the bot's manifest declares, as the page's message menu shows it."""

    @property
    def name(self) -> str: ...

    @property
    def callback_id(self) -> str: ...


@dataclass(frozen=True)
class Bot:
    """All the sandbox is handed of the bot; the rest it learns over HTTP."""

    # Runs the bot with these settings and YAML config on an empty store, its job worker
    # running, and yields the base URL of its HTTP server; stops it all on exit.
    start: Callable[[Settings, OpsConfig], AbstractAsyncContextManager[str]]
    # The manifest's message shortcuts: Slack offers them on every message, so the page does.
    shortcuts: Sequence[Shortcut] = ()
    # The manifest's slash commands ("/ops", ...): Slack answers any other itself, never
    # asking the app; empty: every command reaches the bot.
    commands: Sequence[str] = ()


async def run_sandbox(settings: Settings, stop: asyncio.Event, bot: Bot) -> None:
    """Serve the sandbox until `stop` is set."""
    own_config = config_path(settings) is not None
    docker: deploys.DockerCheck | None = None
    if own_config:
        config = load_config(settings)
    else:
        docker = await deploys.check_docker(settings.docker_host)
        config = sample_config(docker=docker.available)
    try:
        async with AsyncExitStack() as stack:
            await _serve_everything(stack, settings, config, docker, bot)
            await stop.wait()
    finally:
        if docker is not None and docker.available:
            # The next sandbox starts with empty state: leave no containers it would not know.
            await deploys.remove_sandbox_containers(settings.docker_host)


async def _serve_everything(
    stack: AsyncExitStack,
    settings: Settings,
    config: OpsConfig,
    docker: deploys.DockerCheck | None,
    bot: Bot,
) -> None:
    """Start the page, the emulators and the bot on `stack`, and say where they are."""
    emulator = SlackEmulator(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        users=USERS,
        channels=CHANNELS,
        usergroups=USERGROUPS,
        approvers=set(config.roles.approvers),
        commands=bot.commands,
    )
    page_app = emulator.make_app()
    add_page_routes(page_app)
    sample_alerts = SandboxAlerts(config)
    sample_alerts.extra_info["shortcuts"] = [
        {"name": s.name, "callback_id": s.callback_id} for s in bot.shortcuts
    ]
    sample_alerts.extra_info["examples"] = deploys.example_commands(config)
    add_alert_routes(page_app, sample_alerts)
    try:
        page_url = await stack.enter_async_context(served(page_app, settings.host, settings.port))
    except OSError as e:
        where = f"{settings.host}:{settings.port}"
        raise SettingsError(f"OPSLOOP_PORT: cannot listen on {where}: {e.strerror}") from None
    emulator.base_url = page_url

    # An emulated GitLab too, unless the person points the sandbox at a real one.
    gitlab = None if settings.gitlab_url else GitLabEmulator(token=GITLAB_TOKEN)
    if gitlab is not None:
        await stack.enter_async_context(gitlab.serve(settings.host, 0))
        deploys.prepare_gitlab(gitlab)
    # The emulated Kubernetes, unless the person's own YAML file (then `docker` is None) is
    # meant for their cluster (OPSLOOP_KUBECONFIG); the sample services never reach a real one.
    sample = docker is not None
    kube = None
    if sample or settings.kubeconfig is None:
        kube = await cluster.start_cluster(stack, _state_dir(settings))
    jira = await _start_jira(stack, settings, config)
    bot_settings = _bot_settings(settings, page_url, gitlab, kube, jira)
    # An emulated Prometheus for the sample `api`'s canary evidence, unless the person has one.
    prometheus = PrometheusEmulator() if sample and not settings.prometheus_url else None
    if prometheus is not None:
        url = await stack.enter_async_context(prometheus.serve(settings.host, 0))
        bot_settings = bot_settings.model_copy(update={"prometheus_url": url})
    # An emulated Jenkins for the sample project `legacy`, unless the person has one.
    jenkins = await sandbox_jenkins.start(stack, settings)
    bot_settings = sandbox_jenkins.point_at(bot_settings, jenkins)
    bot_url = await stack.enter_async_context(bot.start(bot_settings, config))
    emulator.bot_events_url = bot_url + "/slack/events"
    if gitlab is not None:  # GitLab tells the bot about pipelines, as a project hook would
        for path in (p.gitlab for p in config.projects.values() if p.gitlab):
            gitlab.add_hook(path, bot_url + "/hooks/gitlab", GITLAB_HOOK_SECRET)
    sandbox_jenkins.notify_bot(jenkins, bot_url)  # as its Notification plugin would
    sample_alerts.token = bot_settings.secret("alertmanager_webhook_token")
    sample_alerts.hook_url = bot_url + "/hooks/alertmanager"
    print(f"opsloop sandbox: open {page_url}/ in your browser", flush=True)
    print(f"  (the bot itself listens on {bot_url}; Ctrl-C stops everything)", flush=True)
    if gitlab is not None:
        print(f"  (emulated GitLab: {gitlab.base_url})", flush=True)
    for line in sandbox_jenkins.lines(jenkins):
        print(line, flush=True)
    if jira is not None:
        print(f"  (emulated Jira: {jira.url}, for the projects with `jira:`)", flush=True)
    for line in kube.lines() if kube is not None else []:
        print(line, flush=True)
    for line in _deploy_lines(config, docker, emulated_gitlab=gitlab is not None):
        print(line, flush=True)


async def _start_jira(
    stack: AsyncExitStack, settings: Settings, config: OpsConfig
) -> JiraEmulator | None:
    """An emulated Jira for the projects with `jira:`, unless the person points at a real one."""
    if settings.jira_url or not any(p.jira for p in config.projects.values()):
        return None
    jira = JiraEmulator()
    await stack.enter_async_context(jira.serve(settings.host, 0))
    return jira


def _state_dir(settings: Settings) -> Path:
    """The sandbox's own files (its Redis, the emulated cluster's kubeconfig): apart from a
    real bot's data in the same directory."""
    return settings.data_dir / "sandbox"


def _bot_settings(
    settings: Settings,
    page_url: str,
    gitlab: GitLabEmulator | None,
    kube: cluster.SandboxCluster | None,
    jira: JiraEmulator | None = None,
) -> Settings:
    """The person's settings, pointed at the emulated Slack (GitLab, Kubernetes) with their
    secrets."""
    emulated: dict[str, object] = {}
    if gitlab is not None:
        emulated |= {
            "gitlab_url": gitlab.base_url,
            "gitlab_token": SecretStr(GITLAB_TOKEN),
            "gitlab_webhook_secret": SecretStr(GITLAB_HOOK_SECRET),
        }
    if jira is not None:
        emulated |= {
            "jira_url": jira.url,
            "jira_email": jira.email,
            "jira_token": SecretStr(jira.token),
        }
    if kube is not None:
        emulated |= {"kubeconfig": kube.kubeconfig, "kube_context": cluster.CONTEXT}
    return settings.model_copy(
        update={
            **emulated,
            "slack_bot_token": SecretStr(BOT_TOKEN),
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "slack_api_url": page_url + "/api/",
            "data_dir": _state_dir(settings),
            "deploy_poll_seconds": (
                settings.deploy_poll_seconds
                if "deploy_poll_seconds" in settings.model_fields_set
                else DEPLOY_POLL_SECONDS
            ),
            # The sample alert control posts to /hooks/alertmanager like Alertmanager would; a
            # token of the person's own (to point a real Alertmanager here) is kept.
            "alertmanager_webhook_token": settings.alertmanager_webhook_token
            or SecretStr(SANDBOX_WEBHOOK_TOKEN),
        }
    )


def _deploy_lines(
    config: OpsConfig, docker: deploys.DockerCheck | None, *, emulated_gitlab: bool
) -> list[str]:
    """What `/deploy` can do here, said once at start."""
    if docker is None:  # the person's own YAML file: its services, as they are
        services = deploys.describe_services(config)
        if not services:
            return ["  deploys: none (no `services:` in the YAML file)"]
        return [f"  deploys (from the YAML file): {'; '.join(services)}"]
    gitlab = "the emulated GitLab" if emulated_gitlab else "your GitLab (OPSLOOP_GITLAB_URL)"
    lines = [
        f"  deploys: api through {gitlab}: yes (try /deploy api 1.2.0, then /deploy api "
        "1.3.0-bad: its canary's numbers, from an emulated Prometheus, refuse Approve)"
    ]
    if cluster.is_sample(config):
        lines.append(cluster.deploy_line())
    if docker.available:
        lines.append(f"  deploys: web on Docker: yes, {docker.why} (try /deploy web 1)")
        if docker.removed:
            n = docker.removed
            containers = f"{n} web container{'' if n == 1 else 's'}"
            lines.append(f"  (removed {containers} an earlier sandbox left)")
    else:
        lines.append(
            f"  deploys: web on Docker: no, {docker.why}; to enable it, {deploys.HOW_TO_ENABLE}"
        )
    return lines
