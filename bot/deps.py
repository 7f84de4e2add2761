"""What handlers and jobs need, built once per process and passed down (never imported)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.alerting.ports import Silencer
from bot.builds.ports import CISystem
from bot.config_file import OpsConfig
from bot.jobs import JobQueue, JobRegistry
from bot.metrics import Metrics
from bot.plugins import Deployers, Systems
from bot.settings import Settings
from bot.slack_out import SlackOut
from bot.store import Store
from bot.tasks.ports import TaskTracker


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
    """The process's settings, YAML config and clients; the outside systems as capabilities,
    whichever systems provide them (bot/plugins.py)."""

    settings: Settings
    config: OpsConfig
    store: Store
    queue: JobQueue
    slack: SlackOut
    metrics: Metrics
    jobs: JobRegistry
    commands: list[CommandHelp] = field(default_factory=list)
    tasks: TaskTracker | None = None
    ci: CISystem | None = None
    deployers: Deployers = field(default_factory=Deployers)  # by the YAML's `deployer:`
    silencer: Silencer | None = None
    systems: Systems = field(default_factory=Systems)  # the started ones: check, status, close
