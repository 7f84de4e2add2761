"""The outside systems a process can use, as plugins, and what the configured ones provide.

Each system's package has a plugin (integrations/<system>/plugin.py): when the system is
configured, how to start it, and what a started one provides: the capabilities of the ports
(a `TaskTracker`, a `CISystem`, deployers by `deployer:` value, a `Silencer`), its
`opsloop check` probe and its `/ops status` words. integrations/__init__.py lists the plugins
(PLUGINS), the one place that names the systems; bot/runtime.py starts the configured ones into
`Systems` and hands their capabilities to the families through Deps, so no family knows which
system serves it. Nothing here imports a system: a plugin's `start` imports its client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import aiohttp

from bot.alerting.ports import AlertSource, Silencer
from bot.builds.ports import CISystem
from bot.builds.router import CIRouter
from bot.config_file import OpsConfig
from bot.config_types import Service
from bot.deploys.ports import (
    Annotator,
    Deployer,
    DeployerFactory,
    Measures,
    ServiceSettings,
    VersionRule,
)
from bot.errors import UserError
from bot.settings import Settings
from bot.tasks.ports import TaskTracker

log = logging.getLogger(__name__)

# The capabilities a feature may find missing; deployers are asked for by `deployer:` value.
Capability = Literal["tasks", "ci", "silencer"]

# What a feature says when no plugin of this process offers the capability at all.
_NO_PLUGIN: Mapping[Capability, str] = {
    "tasks": "No task tracker is configured, so opsloop cannot file tasks.",
    "ci": "No CI system is configured, so opsloop cannot run pipelines.",
    "silencer": "No silencer is configured, so opsloop cannot silence alerts.",
}


async def _nothing_to_close() -> None:
    return None


@dataclass(frozen=True)
class DeployerKind:
    """One `deployer:` value a plugin serves."""

    name: str  # the YAML's `deployer` value, e.g. "docker"
    model: type[Service]  # its `services.<name>` settings, with `deployer: Literal[name]`
    versions: VersionRule  # what its deployers take as a version, known without the system
    # Said when a service of this kind is deployed while its system is not configured;
    # `{service}` is the service's name.
    not_configured: str


@dataclass(frozen=True)
class Provided:
    """What a started system gives the process."""

    status: str  # its part of `/ops status`'s Integrations line, e.g. "GitLab configured"
    check: Callable[[], Awaitable[str]]  # `opsloop check`: a few words, or raises
    tasks: TaskTracker | None = None
    ci: CISystem | None = None
    # Which projects `ci` builds, by their path; None: every project no other system claims.
    ci_serves: Callable[[str], bool] | None = None
    silencer: Silencer | None = None
    measures: Measures | None = None  # the canary's evidence (a metrics system)
    annotator: Annotator | None = None  # deploy steps marked on its dashboards
    deployers: Mapping[str, DeployerFactory] = field(default_factory=dict)
    close: Callable[[], Awaitable[None]] = _nothing_to_close  # releases its connections


@dataclass(frozen=True)
class Plugin:
    """One outside system, as the wiring sees it."""

    name: str  # as `opsloop check` shows it, e.g. "gitlab"
    configured: Callable[[Settings, OpsConfig], bool]
    start: Callable[[Settings, OpsConfig], Provided]  # cheap: clients connect on first use
    status_when_off: str  # its part of `/ops status` while not configured
    deployers: tuple[DeployerKind, ...] = ()
    # Webhooks it sends alerts to, served whether or not it is configured (unset secret: 404).
    alert_sources: tuple[AlertSource, ...] = ()
    # What a feature needing one of its capabilities says while it is not configured.
    not_configured: Mapping[Capability, str] = field(default_factory=dict)


def deployer_kinds(plugins: Iterable[Plugin]) -> dict[str, DeployerKind]:
    """Every `deployer:` value the plugins serve; two plugins may not serve the same one."""
    kinds: dict[str, DeployerKind] = {}
    for plugin in plugins:
        for kind in plugin.deployers:
            if kind.name in kinds:
                raise ValueError(f"two plugins serve `deployer: {kind.name}`")
            kinds[kind.name] = kind
    return kinds


@dataclass(frozen=True)
class Deployers:
    """The deployers a process can make, by `deployer:` value."""

    kinds: Mapping[str, DeployerKind] = field(default_factory=dict)  # every known value
    factories: Mapping[str, DeployerFactory] = field(default_factory=dict)  # of started systems

    def make(self, name: str, service: ServiceSettings, step_timeout: float) -> Deployer:
        """Service `name`'s deployer; a UserError when its system is not configured."""
        factory = self.factories.get(service.deployer)
        if factory is not None:
            return factory(name, service, step_timeout)
        kind = self.kinds.get(service.deployer)
        if kind is None:
            raise UserError(
                f"{name} deploys with `{service.deployer}`, which opsloop does not know."
            )
        raise UserError(kind.not_configured.format(service=name))

    def check_version(self, deployer: str | None, version: str) -> None:
        """Refuse (UserError) a version a service of kind `deployer` cannot run, without
        making its deployer. For an unknown service (None), refuse only a version no kind
        takes: that the service is unknown is the job's to say."""
        kind = self.kinds.get(deployer) if deployer is not None else None
        if kind is not None:
            kind.versions.check(version)
            return
        rules = [k.versions for k in self.kinds.values()]
        if rules and not any(rule.allows(version) for rule in rules):
            rules[0].check(version)


@dataclass
class Systems:
    """The plugins a process knows, and what the configured ones provided when started."""

    plugins: tuple[Plugin, ...] = ()
    started: dict[str, Provided] = field(default_factory=dict)  # by plugin name, in order

    @classmethod
    def start(cls, settings: Settings, config: OpsConfig, plugins: Sequence[Plugin]) -> Systems:
        """Start every configured system."""
        deployer_kinds(plugins)  # refuse a doubly served `deployer:` before starting anything
        systems = cls(tuple(plugins))
        for plugin in plugins:
            if plugin.configured(settings, config):
                systems.started[plugin.name] = plugin.start(settings, config)
        return systems

    @property
    def tasks(self) -> TaskTracker | None:
        return next((p.tasks for p in self.started.values() if p.tasks is not None), None)

    @property
    def trackers(self) -> dict[str, TaskTracker]:
        """The started task trackers by plugin name, which is also the project key that sends
        a project's tasks to it (`projects.<alias>.gitlab`, `projects.<alias>.jira`)."""
        return {name: p.tasks for name, p in self.started.items() if p.tasks is not None}

    @property
    def ci(self) -> CISystem | None:
        """The CI system; with several, one routing each project to its own (CIRouter)."""
        started = [(p.ci_serves, p.ci) for p in self.started.values() if p.ci is not None]
        if not started:
            return None
        if len(started) == 1 and started[0][0] is None:
            return started[0][1]
        return CIRouter(started, self.missing("ci"))

    @property
    def silencer(self) -> Silencer | None:
        return next((p.silencer for p in self.started.values() if p.silencer is not None), None)

    @property
    def silencers(self) -> dict[str, Silencer]:
        """The started silencers by the name of the source whose groups they silence."""
        return {n: p.silencer for n, p in self.started.items() if p.silencer is not None}

    def missing_silencer(self, source: str) -> str:
        """What silencing a group from `source` says while its system is not started."""
        plugin = next((p for p in self.plugins if p.name == source), None)
        words = plugin.not_configured.get("silencer") if plugin is not None else None
        return words or self.missing("silencer")

    def alert_sources(self) -> list[AlertSource]:
        """Every plugin's alert webhooks, configured or not."""
        return [s for p in self.plugins for s in p.alert_sources]

    @property
    def annotator(self) -> Annotator | None:
        return next((p.annotator for p in self.started.values() if p.annotator), None)

    @property
    def measures(self) -> Measures | None:
        return next((p.measures for p in self.started.values() if p.measures is not None), None)

    def deployers(self) -> Deployers:
        factories: dict[str, DeployerFactory] = {}
        for provided in self.started.values():
            factories.update(provided.deployers)
        return Deployers(deployer_kinds(self.plugins), factories)

    def missing(self, capability: Capability, system: str | None = None) -> str:
        """What a feature that needs `capability` (of plugin `system`, if one is meant) says
        while no started system provides it."""
        for plugin in self.plugins:
            if system is not None and plugin.name != system:
                continue
            words = plugin.not_configured.get(capability)
            if words:
                return words
        return _NO_PLUGIN[capability]

    def status(self) -> list[str]:
        """Each plugin's part of `/ops status`, in the plugins' order."""
        return [
            self.started[p.name].status if p.name in self.started else p.status_when_off
            for p in self.plugins
        ]

    async def close(self) -> None:
        """Close every started system, each even if another fails."""
        failed: BaseException | None = None
        for name, provided in self.started.items():
            try:
                await provided.close()
            except Exception as e:
                log.warning("closing %s: %s", name, e)
                failed = failed or e
        if failed is not None:
            raise failed


async def answers(url: str, headers: Mapping[str, str] | None = None) -> str:
    """A check probe for a system with an HTTP API: GET `url`; "<host> answers", or raises
    saying what went wrong."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=dict(headers or {})) as response,
    ):
        if response.status == 401:
            raise RuntimeError("the token was rejected (401)")
        if response.status >= 400:
            raise RuntimeError(f"answered HTTP {response.status}")
        return f"{urlsplit(url).netloc.rsplit('@', 1)[-1]} answers"  # not its userinfo
