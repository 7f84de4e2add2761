"""What bot/deploys relies on from any deployer (bot/deploys/ports.py), held against each one.

Every test runs once per deployer: Docker on a real dockerd (tests/dockerd_server.py),
GitLab through python-gitlab against the GitLab emulator, and Kubernetes (a plain Deployment
and its canary; an Argo Rollout) through kubernetes-asyncio against the Kubernetes emulator.
A deployer is made the way the bot makes it: its system's plugin
(integrations/<system>/plugin.py) is started on settings that point at the test's system, and
the factory it provides for the service's `deployer:` value makes it. A new deployer joins by
adding a `System` below (its plugin and settings, its service, and how to see what it changed)
to `SYSTEMS`.

Three kinds of deployer are told apart by what they can say: one that runs units by count
(containers, pods) reports `running_versions`, which must match `plan()`; one that runs a
pipeline reports None, and its snapshot shows the job each step and rollback played; one whose
system's own controller walks the steps (Argo Rollouts) reports None while a canary is under
way, and its system says where the controller stands (`Controller.at_step`). Where the
contract does not fit a controller, its test says why and leaves it out.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pytest

from bot.config_file import OpsConfig, Service
from bot.deploys.ports import Deployer, DeployerFactory, Snapshot, plan
from bot.deploys.rollout import Rollout
from bot.errors import IntegrationError, UserError
from bot.plugins import Plugin, Provided
from bot.sandbox.emulators.gitlab import GitLabEmulator, JobSpec
from bot.settings import load_settings
from integrations.docker.config import DockerService
from integrations.docker.plugin import PLUGIN as DOCKER
from integrations.docker.shapes import LABEL_SERVICE
from integrations.gitlab.config import GitLabService
from integrations.gitlab.plugin import PLUGIN as GITLAB
from integrations.kubernetes.config import KubernetesService
from integrations.kubernetes.plugin import PLUGIN as KUBERNETES
from tests.dockerd_server import DockerEngine
from tests.kube_cluster import Cluster, running_cluster

STEP_TIMEOUT = 30.0
NOT_A_VERSION = (
    "`{}` is not a version: a Docker tag is letters, digits, `_`, `.` and `-`, at most 128 "
    "characters, not starting with `.` or `-`."
)
_names = itertools.count(1)


class System(Protocol):
    """One deployer's world, as the suite needs it."""

    @property
    def factory(self) -> DeployerFactory:
        """How the bot makes this kind of deployer: what its started plugin provides."""
        ...

    @property
    def service(self) -> Any:
        """The service's settings: two steps; a rollback job where the deployer plays jobs."""
        ...

    @property
    def name(self) -> str:
        """The service's name."""
        ...

    def rollout(self) -> Rollout:
        """A rollout of the service from its stable version to a new one."""
        ...

    def mark(self) -> Any:
        """Now, for `changes_since`."""
        ...

    def changes_since(self, mark: Any) -> list[str]:
        """What the deployer changed in its system since `mark` (reads do not count)."""
        ...

    def broken_rollout(self) -> Rollout:
        """A rollout whose first step fails until `mend` is called."""
        ...

    def mend(self) -> None:
        """Remove the cause of `broken_rollout`'s failure, as a person would."""
        ...


def started(plugin: Plugin, name: str, service: Service, **env: Any) -> Provided:
    """The plugin started as the bot starts it, on settings from `env` and a YAML file with
    the one service."""
    settings = load_settings(OPSLOOP_CONFIG_FILE=None, **env)
    config = OpsConfig(services={name: service})
    assert plugin.configured(settings, config)
    return plugin.start(settings, config)


def new_rollout(service: str, version: str, stable: str, percents: list[int]) -> Rollout:
    return Rollout(
        id=f"D-{next(_names)}",
        service=service,
        version=version,
        stable=stable,
        percents=percents,
        approvals_needed=1,
        started_by="U0ALICE",
        channel="C0DEPLOYS",
        started_at=time.time(),
    )


# -- Docker: containers on a real dockerd -----------------------------------------------------


@dataclass
class DockerSystem:
    engine: DockerEngine
    name: str = field(default_factory=lambda: f"contract{next(_names)}")
    tags: list[str] = field(default_factory=list)
    _broken: str | None = None

    def __post_init__(self) -> None:
        host = self.engine.url
        self.provided = started(DOCKER, self.name, self.service, OPSLOOP_DOCKER_HOST=host)

    @property
    def factory(self) -> DeployerFactory:
        return self.provided.deployers["docker"]

    @property
    def service(self) -> DockerService:
        return DockerService.model_validate(
            {"deployer": "docker", "image": "local/app", "replicas": 2, "steps": [50, 100]}
        )

    def rollout(self) -> Rollout:
        return new_rollout(self.name, "2", "1", [50, 100])

    def mark(self) -> Any:
        return time.time()

    def changes_since(self, mark: Any) -> list[str]:
        stream = self.engine.client.events(
            since=int(mark) - 1,
            until=int(time.time()) + 1,
            decode=True,
            filters={"type": "container", "label": f"{LABEL_SERVICE}={self.name}"},
        )
        # Healthchecks run as exec_* events and report health_status; neither is a change.
        return [
            f"{e['Action']} {e['Actor']['Attributes'].get('name')}"
            for e in stream
            if e.get("timeNano", 0) >= mark * 1e9
            and not str(e.get("Action", "")).startswith(("exec_", "health_status"))
        ]

    def broken_rollout(self) -> Rollout:
        # A version whose image the engine lacks (and may not pull): the step fails at once.
        self._broken = f"retry-{uuid.uuid4().hex[:8]}"
        return new_rollout(self.name, self._broken, "1", [50, 100])

    def mend(self) -> None:
        assert self._broken is not None
        self.engine.client.images.get("local/app:2").tag("local/app", self._broken)
        self.tags.append(f"local/app:{self._broken}")

    def clean(self) -> None:
        for c in self.engine.client.api.containers(
            all=True, filters={"label": f"{LABEL_SERVICE}={self.name}"}
        ):
            self.engine.client.api.remove_container(c["Id"], force=True)
        for tag in self.tags:
            self.engine.client.images.remove(tag)


# -- GitLab: manual jobs of a pipeline on the GitLab emulator ---------------------------------

JOBS = [
    JobSpec("build", "build"),
    JobSpec("canary", "canary", when="manual", allow_failure=False),
    JobSpec("rollback", "canary", when="manual"),
    JobSpec("production", "production", when="manual", allow_failure=False),
]


@dataclass
class GitLabSystem:
    emulator: GitLabEmulator
    url: str
    name: str = "api"

    def __post_init__(self) -> None:
        self.provided = started(
            GITLAB,
            self.name,
            self.service,
            OPSLOOP_GITLAB_URL=self.url,
            OPSLOOP_GITLAB_TOKEN=self.emulator.token,
            OPSLOOP_DEPLOY_POLL_SECONDS=0.1,
        )

    @property
    def factory(self) -> DeployerFactory:
        return self.provided.deployers["gitlab"]

    @property
    def service(self) -> GitLabService:
        return GitLabService.model_validate(
            {
                "deployer": "gitlab",
                "project": "acme/api",
                "ref": "main",
                "steps": [{"percent": 10, "job": "canary"}, {"percent": 100, "job": "production"}],
                "rollback_job": "rollback",
            }
        )

    def rollout(self) -> Rollout:
        return new_rollout(self.name, "1.4.2", "1.4.1", [10, 100])

    def mark(self) -> Any:
        return len(self.emulator.requests)

    def changes_since(self, mark: Any) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.emulator.requests[mark:] if r.method != "GET"]

    def broken_rollout(self) -> Rollout:
        self.emulator.fail_job("canary", project="acme/api", times=1)
        return self.rollout()

    def mend(self) -> None:
        pass  # the job failed once; the one retry() runs succeeds


# -- Kubernetes: a plain Deployment, an Argo Rollout, on the Kubernetes emulator --------------


@dataclass
class KubeSystem:
    kube: Cluster
    spec: dict[str, Any]
    name: str = "cart"
    _broken: str | None = None

    def __post_init__(self) -> None:
        env = self.kube.env
        self.provided = started(KUBERNETES, self.name, self.service, **env)

    @property
    def factory(self) -> DeployerFactory:
        return self.provided.deployers["kubernetes"]

    @property
    def service(self) -> KubernetesService:
        return KubernetesService.model_validate(self.spec)

    def rollout(self) -> Rollout:
        return new_rollout(self.name, "2", "1", [50, 100])

    def mark(self) -> Any:
        return len(self.kube.emu.requests)

    def changes_since(self, mark: Any) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.kube.emu.requests[mark:] if r.method != "GET"]

    def broken_rollout(self) -> Rollout:
        # Pods of this version never become available, until a person fixes the image.
        self._broken = f"retry-{uuid.uuid4().hex[:8]}"
        self.kube.emu.fail_image(self._broken)
        return new_rollout(self.name, self._broken, "1", [50, 100])

    def mend(self) -> None:
        assert self._broken is not None
        self.kube.emu.failing_images.discard(self._broken)


class ArgoSystem(KubeSystem):
    """An Argo Rollout with one indefinite pause at 50%: its steps are [50, 100]."""

    def rollout(self) -> Rollout:
        return new_rollout(self.name, "2", "1", [50, 100])

    async def at_step(self, d: Deployer, r: Rollout, step: int) -> None:
        """Argo stands where step `step` of `r` put it: paused at its pause, or Healthy."""
        status = self.kube.emu.object("Rollout", "shop", self.name)["status"]
        if step == len(r.percents) - 1:
            assert status["phase"] == "Healthy" and await d.running_versions() == {"2": 2}
            return
        assert [c["reason"] for c in status["pauseConditions"]] == ["CanaryPauseStep"]
        assert status["currentStepIndex"] == 1 and await d.running_versions() is None

    async def reverted(self, d: Deployer, r: Rollout) -> None:
        status = self.kube.emu.object("Rollout", "shop", self.name)["status"]
        assert status["abort"] is True and status["availableReplicas"] >= 2
        assert "aborted" in str((await d.snapshot(r)).detail)


def controller(system: System) -> ArgoSystem | None:
    return system if isinstance(system, ArgoSystem) else None


SYSTEMS = ["docker", "gitlab", "deployment", "argo"]


@pytest.fixture(params=SYSTEMS)
async def system(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[System]:
    if request.param in ("deployment", "argo"):
        async with running_cluster(tmp_path) as kube:
            if request.param == "argo":
                kube.emu.add_rollout(
                    "shop", "cart", image="reg.example.com/cart:1", replicas=2,
                    steps=[{"setWeight": 50}, {"pause": {}}], progress_deadline_seconds=100,
                )  # fmt: skip
                spec = {"deployer": "kubernetes", "namespace": "shop", "rollout": "cart"}
                kube_system: KubeSystem = ArgoSystem(kube, spec)
            else:
                kube.emu.add_deployment(
                    "shop", "cart", image="reg.example.com/cart:1", replicas=2,
                    progress_deadline_seconds=100,
                )  # fmt: skip
                spec = {"deployer": "kubernetes", "namespace": "shop", "deployment": "cart",
                        "replicas": 2, "steps": [50, 100]}  # fmt: skip
                kube_system = KubeSystem(kube, spec)
            try:
                yield kube_system
            finally:
                await kube_system.provided.close()
        return
    if request.param == "docker":
        engine: DockerEngine = request.getfixturevalue("dockerd")
        docker = DockerSystem(engine)
        try:
            yield docker
        finally:
            await docker.provided.close()
            docker.clean()
        return
    emulator = GitLabEmulator()
    emulator.pipeline_step_seconds = 0.05
    emulator.set_pipeline_jobs("acme/api", JOBS)
    async with emulator.serve() as url:
        gitlab = GitLabSystem(emulator, url)
        try:
            yield gitlab
        finally:
            await gitlab.provided.close()


def deployer(system: System) -> Deployer:
    return system.factory(system.name, system.service, STEP_TIMEOUT)


async def prepared(d: Deployer, r: Rollout) -> Rollout:
    """The rollout with what `prepare` asked to record, recorded, as bot/deploys does."""
    for _ in range(5):
        fields = await d.prepare(r)
        if not fields:
            return r
        assert set(fields) <= set(Rollout.__dataclass_fields__), fields
        r = replace(r, **fields)
    raise AssertionError("prepare did not settle on {} within 5 calls")


def shows(snapshot: Snapshot, job: str | None) -> bool:
    """The snapshot has a successful unit called `job` (a pipeline's job)."""
    return any(u.name == job and u.ok for u in snapshot.units)


async def agrees_with_step(system: System, d: Deployer, r: Rollout, step: int) -> None:
    """What the deployer reports after step `step` of `r` is what bot/deploys expects."""
    if (argo := controller(system)) is not None:
        await argo.at_step(d, r, step)
        return
    running = await d.running_versions()
    snapshot = await d.snapshot(r)
    assert d.planned(r, step) == running  # what bot/deploys compares to restore a drifted step
    if running is None:  # a pipeline: its snapshot shows the step's job done
        assert shows(snapshot, system.service.steps[step].job), snapshot
        return
    wanted = plan(r, step, system.service.replicas)
    assert running == {v: n for v, n in wanted.items() if n}
    ready: dict[str, int] = {}
    for unit in snapshot.units:
        if unit.ok:
            ready[unit.version] = ready.get(unit.version, 0) + unit.count
    assert ready == running, snapshot


# -- the contract -----------------------------------------------------------------------------


async def test_a_version_is_a_tag_and_junk_is_refused_in_the_same_words(system: System) -> None:
    d = deployer(system)
    assert d.kind == system.service.deployer
    for good in ("1.4.2", "2.0.0-rc.1", "v1", "_latest", "a" * 128):
        d.validate_version(good)
    for junk in ("-1", ".1", "a" * 129, "1.4/2", "1:2", "version 2"):
        with pytest.raises(UserError) as refused:
            d.validate_version(junk)
        assert refused.value.problem == NOT_A_VERSION.format(junk)


async def test_prepare_settles_on_nothing_more_to_record(system: System) -> None:
    d = deployer(system)
    r = await prepared(d, system.rollout())
    mark = system.mark()
    assert await d.prepare(r) == {}
    assert system.changes_since(mark) == []


async def test_each_step_runs_what_the_plan_says(system: System) -> None:
    d = deployer(system)
    r = await prepared(d, system.rollout())
    for step in range(len(r.percents)):
        await d.apply(r, step)
        await agrees_with_step(system, d, r, step)


async def test_applying_a_step_twice_changes_nothing_more(system: System) -> None:
    d = deployer(system)
    r = await prepared(d, system.rollout())
    await d.apply(r, 0)
    before = await d.snapshot(r)
    mark = system.mark()
    await d.apply(r, 0)  # a job run again after a crash
    assert system.changes_since(mark) == []
    assert await d.snapshot(r) == before
    await agrees_with_step(system, d, r, 0)


async def test_revert_runs_the_stable_version_alone(system: System) -> None:
    d = deployer(system)
    r = await prepared(d, system.rollout())
    await d.apply(r, 0)
    await d.revert(r)
    running = await d.running_versions()
    if (argo := controller(system)) is not None:
        await argo.reverted(d, r)
    elif running is None:
        assert shows(await d.snapshot(r), system.service.rollback_job)
    else:
        assert running == {r.stable: system.service.replicas}
    mark = system.mark()
    await d.revert(r)  # again: harmless
    assert system.changes_since(mark) == []


async def test_a_failed_step_runs_again_after_retry(system: System) -> None:
    if controller(system) is not None:
        pytest.skip(
            "Argo keeps a canary whose pods do not come up where it is (Degraded, the stable "
            "pods serving), and its retry is `start_over`: tests/test_kubernetes_argo.py"
        )
    d = deployer(system)
    r = await prepared(d, system.broken_rollout())
    before = await d.running_versions()
    with pytest.raises(IntegrationError) as failed:
        await d.apply(r, 0)
    assert failed.value.message
    assert await d.running_versions() == before  # a failed step leaves what ran
    with pytest.raises(IntegrationError):  # by itself, a failure stays one
        await d.apply(r, 0)
    system.mend()
    await d.retry(r)  # /deploy promote
    await d.apply(r, 0)
    await agrees_with_step(system, d, r, 0)
    mark = system.mark()
    await d.retry(r)  # nothing failed now: nothing runs again
    assert system.changes_since(mark) == []
