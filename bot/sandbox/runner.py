"""`opsloop sandbox`: the bot, the Slack emulator and the web page in one process.

The page and the emulator share the port a newcomer opens (`--port`, else OPSLOOP_PORT); the
bot's own HTTP server (Slack endpoint, webhooks, health, metrics) listens on a free port beside
it, and the emulator delivers signed requests there exactly as Slack would. The page's "Fire
sample alert" control (bot/sandbox/alerts.py) posts Alertmanager webhooks to that server too. An
emulated GitLab (bot/sandbox/emulators/gitlab) on another free port answers the bot's /task and
/build calls and runs the acme/api pipelines that `/deploy api` plays. When a Docker Engine
answers, `/deploy web` runs real containers on it (bot/sandbox/deploys.py).
"""

from __future__ import annotations

import logging

from pydantic import SecretStr

from bot.app import create_app
from bot.cli import start_site, stop_signals
from bot.config_file import OpsConfig
from bot.jobs import WorkerRunner
from bot.runtime import Runtime
from bot.sandbox import deploys
from bot.sandbox.alerts import SANDBOX_WEBHOOK_TOKEN, SandboxAlerts, add_alert_routes
from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.sandbox.emulators.slack import SlackEmulator
from bot.sandbox.page import add_page_routes
from bot.sandbox.sample import CHANNELS, USERGROUPS, USERS, sample_config
from bot.settings import Settings, config_path, load_config
from commands import shortcuts

log = logging.getLogger("opsloop.sandbox")

BOT_TOKEN = "xoxb-sandbox-not-a-secret"
GITLAB_TOKEN = "glpat-sandbox-not-a-secret"
GITLAB_HOOK_SECRET = "sandbox-gitlab-hook-secret"
SIGNING_SECRET = "sandbox-signing-secret"
# Seconds between looks at a deploy's GitLab job, unless OPSLOOP_DEPLOY_POLL_SECONDS says
# otherwise: the emulated runner moves a job every second, and a person is watching.
DEPLOY_POLL_SECONDS = 0.5


async def run_sandbox(settings: Settings) -> None:
    """Serve the sandbox until Ctrl-C."""
    stop = stop_signals()
    own_config = config_path(settings) is not None
    docker: deploys.DockerCheck | None = None
    if own_config:
        config = load_config(settings)
    else:
        docker = await deploys.check_docker(settings.docker_host)
        config = sample_config(docker=docker.available)
    approvers = set(config.roles.approvers)
    emulator = SlackEmulator(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        users=USERS,
        channels=CHANNELS,
        usergroups=USERGROUPS,
        approvers=approvers,
    )
    page_app = emulator.make_app()
    add_page_routes(page_app)
    sample_alerts = SandboxAlerts(config)
    # The page offers the app's message shortcuts on every message, as Slack's menu would.
    sample_alerts.extra_info["shortcuts"] = [
        {"name": s.name, "callback_id": s.callback_id} for s in shortcuts()
    ]
    sample_alerts.extra_info["examples"] = deploys.example_commands(config)
    add_alert_routes(page_app, sample_alerts)
    page_runner = await start_site(page_app, settings.host, settings.port)
    page_url = f"http://{settings.host}:{page_runner.addresses[0][1]}"
    emulator.base_url = page_url

    # An emulated GitLab too, unless the person points the sandbox at a real one.
    gitlab = None if settings.gitlab_url else GitLabEmulator(token=GITLAB_TOKEN)
    gitlab_runner = None
    if gitlab is not None:
        gitlab_runner = await start_site(gitlab.make_app(), settings.host, 0)
        gitlab.base_url = f"http://{settings.host}:{gitlab_runner.addresses[0][1]}"
        deploys.prepare_gitlab(gitlab)
    gitlab_settings: dict[str, object] = {}
    if gitlab is not None:
        gitlab_settings = {
            "gitlab_url": gitlab.base_url,
            "gitlab_token": SecretStr(GITLAB_TOKEN),
            "gitlab_webhook_secret": SecretStr(GITLAB_HOOK_SECRET),
        }
    bot_settings = settings.model_copy(
        update={
            **gitlab_settings,
            "slack_bot_token": SecretStr(BOT_TOKEN),
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "slack_api_url": page_url + "/api/",
            # Keep sandbox data apart from a real bot's data in the same directory.
            "data_dir": settings.data_dir / "sandbox",
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
    runtime = Runtime.start(bot_settings, config)
    # The emulated Slack starts empty each time; groups and jobs of an earlier run would
    # point at messages that no longer exist.
    await runtime.deps.store.reset()
    bot_runner = None
    workers = WorkerRunner(runtime.deps, runtime.deps.jobs)
    try:
        bot_runner = await start_site(create_app(bot_settings, runtime.deps), settings.host, 0)
        bot_url = f"http://{settings.host}:{bot_runner.addresses[0][1]}"
        emulator.bot_events_url = bot_url + "/slack/events"
        if gitlab is not None:  # GitLab tells the bot about pipelines, as a project hook would
            for project in config.projects.values():
                gitlab.add_hook(project.gitlab, bot_url + "/hooks/gitlab", GITLAB_HOOK_SECRET)
        sample_alerts.token = bot_settings.secret("alertmanager_webhook_token")
        sample_alerts.hook_url = bot_url + "/hooks/alertmanager"
        await workers.start()
        print(f"opsloop sandbox: open {page_url}/ in your browser", flush=True)
        print(f"  (the bot itself listens on {bot_url}; Ctrl-C stops everything)", flush=True)
        if gitlab is not None:
            print(f"  (emulated GitLab: {gitlab.base_url})", flush=True)
        for line in _deploy_lines(config, docker, emulated_gitlab=gitlab is not None):
            print(line, flush=True)
        await stop.wait()
    finally:
        if bot_runner is not None:
            await bot_runner.cleanup()
        await page_runner.cleanup()
        if gitlab_runner is not None:
            await gitlab_runner.cleanup()
        await workers.stop()
        await runtime.close()
        if docker is not None and docker.available:
            # The next sandbox starts with empty state: leave no containers it would not know.
            await deploys.remove_sandbox_containers(settings.docker_host)


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
    lines = [f"  deploys: api through {gitlab}: yes (try /deploy api 1.2.0)"]
    if docker.available:
        lines.append(f"  deploys: web on Docker: yes, {docker.why} (try /deploy web 1)")
        if docker.removed:
            lines.append(f"  (removed {docker.removed} web container(s) an earlier sandbox left)")
    else:
        lines.append(
            f"  deploys: web on Docker: no, {docker.why}; to enable it, {deploys.HOW_TO_ENABLE}"
        )
    return lines
