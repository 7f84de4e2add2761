"""What handlers and jobs need, built once per process and passed down (never imported)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.alerting.ports import Silencer
from bot.builds.ports import CISystem
from bot.config_file import OpsConfig
from bot.deploys.ports import Annotator, Measures
from bot.help import CommandHelp, Shortcut
from bot.job_queue import JobQueue
from bot.metrics import Metrics
from bot.plugins import Deployers, Systems
from bot.settings import Settings
from bot.slack_out import SlackOut
from bot.store import Store
from bot.tasks.ports import TaskTracker

# Re-exported: the command families declare their help and shortcuts with these.
__all__ = ["CommandHelp", "Deps", "Shortcut"]


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
    commands: list[CommandHelp] = field(default_factory=list)
    tasks: TaskTracker | None = None
    ci: CISystem | None = None
    deployers: Deployers = field(default_factory=Deployers)  # by the YAML's `deployer:`
    silencer: Silencer | None = None
    # By the source a group came from (AlertGroup.source): where its silences are made.
    silencers: Mapping[str, Silencer] = field(default_factory=dict)
    annotator: Annotator | None = None  # deploy steps marked on dashboards; None: not marked
    measures: Measures | None = None  # the canary's evidence; None: approvals carry none
    systems: Systems = field(default_factory=Systems)  # the started ones: check, status, close
