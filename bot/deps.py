"""What handlers and jobs need, built once per process and passed down (never imported)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.alerting.ports import Silencer
from bot.config_file import OpsConfig
from bot.jobs import JobQueue, JobRegistry
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack_out import SlackOut
from bot.store import Store
from integrations.docker import ContainerEngine
from integrations.gitlab import GitLabPort


@dataclass(frozen=True)
class CommandHelp:
    """One slash-command family as `/ops help` and the manifest describe it."""

    command: str
    summary: str
    usage: tuple[str, ...]


@dataclass(frozen=True)
class Shortcut:
    """A message shortcut as the manifest declares it."""

    name: str
    callback_id: str
    description: str


@dataclass
class Deps:
    """The process's settings, YAML config and clients."""

    settings: Settings
    config: OpsConfig
    store: Store
    queue: JobQueue
    slack: SlackOut
    metrics: Metrics
    jobs: JobRegistry
    commands: list[CommandHelp] = field(default_factory=list)
    alertmanager: Silencer | None = None
    gitlab: GitLabPort | None = None
    docker: ContainerEngine | None = None
