"""What the deploys capability needs from a deployer, and the little a deployer reads back.

A deployer makes a step of a rollout true in the world and says what runs. Every call is safe
to repeat (a job may run twice after a crash): `apply` converges on the step, it does not add
to what is there. A deployer module needs only this one, bot/errors.py and its plugin's model of
a service (integrations/<system>/config.py): the rollout reaches it through the read-only view
below, and `plan` turns a step into the {version: count} a deployer that runs units by count
should run.

Implementations: integrations/docker/deployer.py (containers on a Docker Engine),
integrations/gitlab/deployer.py (manual jobs of a GitLab pipeline) and
integrations/kubernetes/ (an Argo Rollout, which also has the optional capabilities below, or
a plain Deployment and its `-canary` copy); each system's plugin
(integrations/<system>/plugin.py) offers its factory. tests/test_deployer_contract.py holds
every deployer to the behaviour this module describes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from bot.errors import UserError


@dataclass(frozen=True)
class Unit:
    """One thing a service runs, for the approval message: a container or a pipeline job."""

    name: str
    version: str
    status: str  # a few words: "running, healthy", "manual", "success"
    ok: bool
    url: str | None = None
    count: int = 1  # how many like things the row stands for (a Deployment's available pods)


@dataclass(frozen=True)
class Snapshot:
    """What runs now, as the deployer's system reports it."""

    units: tuple[Unit, ...] = ()
    link: str | None = None  # e.g. the pipeline
    # How the message heads the units ("Pods"; None: containers, or a pipeline's jobs), and a
    # few lines of the system's own view above them (a controller's phase, step and weight).
    heading: str | None = None
    detail: str | None = None


class RolloutView(Protocol):
    """The parts of a rollout (bot/deploys/rollout.py) a deployer reads."""

    @property
    def id(self) -> str:
        """D-<n>: names the rollout in what the deployer makes (a pipeline's marker)."""
        ...

    @property
    def version(self) -> str:
        """The version being rolled out."""
        ...

    @property
    def stable(self) -> str | None:
        """What ran before; None for a first deploy."""
        ...

    @property
    def percents(self) -> Sequence[int]:
        """The new version's share at each step."""
        ...

    @property
    def first(self) -> bool:
        """Nothing ran before: the version goes straight to full size."""
        ...

    @property
    def started_at(self) -> float:
        """When the rollout started (epoch seconds)."""
        ...

    @property
    def target(self) -> int:
        """The step being applied while promoting."""
        ...

    @property
    def ended_by(self) -> str | None:
        """Who rejected or rolled back (a failed rollback is retried as a rollback)."""
        ...

    @property
    def pipeline_id(self) -> int | None:
        """What `prepare` recorded for a deployer that runs a pipeline per rollout."""
        ...

    @property
    def pipeline_url(self) -> str | None: ...

    @property
    def size(self) -> int | None:
        """What `prepare` recorded as the units at 100%, for a deployer that reads it from
        its system when the rollout starts."""
        ...

    @property
    def pipeline_asked_at(self) -> float | None: ...


class StepSettings(Protocol):
    """One canary step of a service (`services.<name>.steps[n]`)."""

    @property
    def percent(self) -> int: ...


class ServiceSettings(Protocol):
    """A service's settings from the YAML file (`services.<name>`), as every deployer gets them.

    Each deployer reads its own keys from its plugin's model of the service (a container
    deployer `image` and `replicas`, a pipeline deployer `project` and the steps' `job`), and
    refuses (ValueError) a service of another model.
    """

    @property
    def deployer(self) -> str:
        """The YAML's `deployer` value."""
        ...

    @property
    def steps(self) -> Sequence[StepSettings]: ...


class Deployer(Protocol):
    """Where one service's rollouts run."""

    kind: str  # the YAML's `deployer` value

    def validate_version(self, version: str) -> None:
        """Refuse (UserError) a version this deployer cannot run; no I/O, so the ack can ask."""
        ...

    async def running_versions(self) -> dict[str, int] | None:
        """Ready units per version, or None when the deployer cannot tell (a pipeline)."""
        ...

    def planned(self, rollout: RolloutView, step: int) -> dict[str, int] | None:
        """The ready units per version `running_versions` should report once `step` of
        `rollout` is applied (step -1: none yet); None when the deployer cannot tell."""
        ...

    async def prepare(self, rollout: RolloutView) -> dict[str, Any]:
        """Whatever a rollout needs before its first step (e.g. a pipeline with VERSION); the
        fields to record on the rollout. Called before every step, and again after each
        record, until it returns {}."""
        ...

    async def apply(self, rollout: RolloutView, step: int) -> None:
        """Make `rollout.percents[step]` of the service run the new version (idempotent)."""
        ...

    async def revert(self, rollout: RolloutView) -> None:
        """Make the service run its stable version only (idempotent)."""
        ...

    async def retry(self, rollout: RolloutView) -> None:
        """A person asked (`/deploy promote`) to try the failed change of `rollout` again: undo
        whatever would make `apply` or `revert` fail the same way at once (idempotent)."""
        ...

    async def snapshot(self, rollout: RolloutView | None) -> Snapshot:
        """What runs, for the message and `/deploy status`."""
        ...


@runtime_checkable
class HandsOver(Protocol):
    """A deployer whose rollouts a controller in the cluster runs (Flagger): `/deploy` only
    hands it the version, and the controller asks opsloop for approval at its gates."""

    async def hand_over(self, version: str) -> str:
        """Give the controller `version` to roll out (idempotent); what to tell the person.
        A UserError when opsloop cannot, saying how the person starts it instead. The deploy
        flow records who asked beforehand, so the controller's next request is theirs (four
        eyes), and forgets it after a UserError or an IntegrationError that is not
        `retryable`: raise those only when nothing was changed."""
        ...


# -- what some deployers can do besides (each checked with isinstance, so a deployer that
# cannot leaves them out) -----------------------------------------------------------------------


@runtime_checkable
class OwnSteps(Protocol):
    """A deployer whose system holds the canary's steps (an Argo Rollout's pauses)."""

    async def own_steps(self) -> list[int] | None:
        """The new version's share at each approval point, ending at 100, read from the
        system when a rollout starts; None: the service's `steps` apply."""
        ...


@runtime_checkable
class StartsOver(Protocol):
    """A deployer whose system keeps a reverted change and can run it again (Argo's retry of
    an aborted Rollout): `/deploy promote` of a rolled-back or failed rollout then starts it
    again from its first step."""

    async def start_over(self, rollout: RolloutView) -> bool:
        """Make the system run the change of `rollout` again from its first step, when it
        can (safe to repeat); True when it does (or already did), so the rollout restarts at
        step 0; False: `retry` applies, or nothing can be started again."""
        ...


@dataclass(frozen=True)
class Change:
    """What a following deployer saw of its system."""

    seen: str  # a fingerprint of what the message shows: a new one means "render again"
    # The system gave up on the rollout by itself (Argo aborted it, or it is Degraded): the
    # system's own words, and the rollout fails with them.
    failure: str | None = None


@runtime_checkable
class Follows(Protocol):
    """A deployer whose system moves by itself between the bot's steps (a controller), so
    the rollout's message follows it while the rollout is active."""

    async def next_change(self, rollout: RolloutView, seen: str | None, wait: float) -> Change:
        """Once what the message shows differs from `seen` (None: at once), or after `wait`
        seconds, what the system shows now."""
        ...


class Measures(Protocol):
    """A metrics system's instant queries, for the canary's evidence on the approval message
    (bot/deploys/evidence.py). Implementation: integrations/prometheus/."""

    async def value(self, query: str) -> float | None:
        """The one number `query` gives now; None when it gives nothing (no series, or not a
        number). An IntegrationError when the system fails or refuses the query, saying why in
        words a person can read; it answers (or fails) within a few seconds."""
        ...


# How a deployer is made for one service: (service name, its settings, seconds a step may
# take) -> the deployer. A deployer's system (its client, connections) is bound in beforehand.
DeployerFactory = Callable[[str, ServiceSettings, float], Deployer]


def canary_count(percent: int, replicas: int) -> int:
    """Units running the new version at `percent`: max(1, round(p/100 * replicas))."""
    if percent >= 100:
        return replicas
    return min(replicas, max(1, round(percent / 100 * replicas)))


def plan(rollout: RolloutView, step: int, replicas: int) -> dict[str, int]:
    """{version: units} at `step`: the canary's share of `replicas`, the rest stable."""
    if step < 0:  # no step applied yet: only what ran before
        return {rollout.stable: replicas} if rollout.stable is not None else {}
    percent = rollout.percents[step]
    if rollout.stable is None or rollout.first or percent >= 100:
        return {rollout.version: replicas}
    canary = canary_count(percent, replicas)
    result = {rollout.version: canary}
    if replicas - canary > 0:
        result[rollout.stable] = replicas - canary
    return result


@dataclass(frozen=True)
class VersionRule:
    """What a kind of deployer takes as a version: a pattern the whole version matches, and
    the rule in a person's words. Known without the deployer's system, so the ack can check."""

    pattern: re.Pattern[str]
    words: str

    def allows(self, version: str) -> bool:
        return self.pattern.fullmatch(version) is not None

    def check(self, version: str) -> None:
        """Refuse (UserError) `version` unless the rule allows it."""
        if not self.allows(version):
            raise UserError(f"`{version}` is not a version: {self.words}.")


# A container image's tag: what runs is an image, and its tag names the version. Deployers of
# other things (a pipeline's VERSION) take it too, as the tag their pipeline deploys.
IMAGE_TAG = VersionRule(
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
    "a Docker tag is letters, digits, `_`, `.` and `-`, at most 128 characters, "
    "not starting with `.` or `-`",
)


__all__ = [
    "IMAGE_TAG",
    "Change",
    "Deployer",
    "DeployerFactory",
    "Follows",
    "HandsOver",
    "Measures",
    "OwnSteps",
    "RolloutView",
    "ServiceSettings",
    "Snapshot",
    "StartsOver",
    "StepSettings",
    "Unit",
    "VersionRule",
    "canary_count",
    "plan",
]


class Annotator(Protocol):
    """Marks on a metrics system's dashboards where each deploy step landed (e.g. Grafana's
    annotations), so that a graph shows which change came before its curve moved."""

    system: str  # its name in messages, e.g. "Grafana"

    async def annotate(
        self,
        service: str,
        version: str,
        text: str,
        at: float,
        *,
        marker: str,
        intend: Callable[[], Awaitable[None]],
    ) -> str:
        """Add one mark at `at` (Unix seconds) tagged with the service and version, carrying
        `marker` so that a re-run finds it; await `intend` right before the request that
        makes it (bot/once.py). Returns the mark's id."""
        ...

    async def find_annotation(self, marker: str) -> str | None:
        """The id of the mark carrying `marker`, if one was made."""
        ...
