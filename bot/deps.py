"""What handlers and jobs need, built once per process and passed down (never imported)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.alerting.ports import Silencer
from bot.config_file import OpsConfig
from bot.help import CommandHelp, Shortcut
from bot.job_queue import JobQueue
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack_out import SlackOut
from bot.store import Store

if TYPE_CHECKING:
    # Types only: what handles Slack's requests must not load the systems' SDKs.
    from integrations.docker import ContainerEngine
    from integrations.gitlab import GitLabPort

# Re-exported: the command families declare their help and shortcuts with these.
__all__ = ["CommandHelp", "Deps", "Shortcut"]


@dataclass
class Deps:
    """The process's settings, YAML config and clients."""

    settings: Settings
    config: OpsConfig
    store: Store
    queue: JobQueue
    slack: SlackOut
    metrics: Metrics
    commands: list[CommandHelp] = field(default_factory=list)
    alertmanager: Silencer | None = None
    gitlab: GitLabPort | None = None
    docker: ContainerEngine | None = None
