"""The cluster's side of the Kubernetes cases of `bench.deploy_flow`: the two kinds of service,
their objects on the Kubernetes emulator (opsloop's and kubectl's twins), when the cluster
stands at a step, when a step's first write arrived, and kubectl, the floor.

Everything here reads the emulator in the bench's own process (`emu.object`, `emu.requests`,
whose `at` is each request's wall-clock arrival) and runs the real kubectl as a person would.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import base_env
from bench._kube_report import KubectlStep
from bench._kube_stack import NS
from bench.deploy_flow import NEW, OLD, RoundMiss
from bot.deploys.ports import canary_count
from bot.sandbox.emulators.kubernetes import KubernetesEmulator
from integrations.kubernetes import argo, canary

REGISTRY = "registry.example.com"
CLUSTER_POLL = 0.02  # seconds between two looks at the emulator's objects
KUBECTL_TIMEOUT = 30.0
PROMOTE = {"status": {"pauseConditions": None}}
WRITES = frozenset({"PATCH", "PUT", "POST", "DELETE"})


@dataclass(frozen=True)
class KubeKind:
    """One kind of Kubernetes service: opsloop's object and kubectl's twin."""

    name: str  # "argo" or "deployment"
    service: str  # opsloop's service and object
    percents: tuple[int, ...]

    @property
    def floor(self) -> str:
        return f"{self.service}-kubectl"


ARGO = KubeKind("argo", "shop", (25, 50, 75, 100))
DEPLOYMENT = KubeKind("deployment", "cart", (25, 50, 100))
KINDS = {k.name: k for k in (ARGO, DEPLOYMENT)}


def kinds_of(choice: str) -> list[KubeKind]:
    """The Kubernetes kinds `--kind` names (all, kubernetes: both)."""
    if choice in ("all", "kubernetes"):
        return [ARGO, DEPLOYMENT]
    return [KINDS[choice]] if choice in KINDS else []


def missing() -> str | None:
    """Why the Kubernetes cases cannot run here, or None."""
    return None if shutil.which("kubectl") else "no kubectl on PATH (the floor the bench times)"


def argo_steps() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for percent in ARGO.percents[:-1]:
        out += [{"setWeight": percent}, {"pause": {}}]
    return out


def image(kind: KubeKind, version: str) -> str:
    return f"{REGISTRY}/{kind.service}:{version}"


def arrange(emu: KubernetesEmulator, replicas: int) -> None:
    """opsloop's objects at version 1; kubectl's twins (the Deployment's canary at 25% already:
    made by hand before the timed steps)."""
    for name in (ARGO.service, ARGO.floor):
        emu.add_rollout(NS, name, image=image(ARGO, OLD), replicas=replicas, steps=argo_steps())
    first = canary_count(DEPLOYMENT.percents[0], replicas)
    emu.add_deployment(NS, DEPLOYMENT.service, image=image(DEPLOYMENT, OLD), replicas=replicas)
    emu.add_deployment(
        NS, DEPLOYMENT.floor, image=image(DEPLOYMENT, OLD), replicas=replicas - first
    )
    emu.add_deployment(
        NS, canary.canary_name(DEPLOYMENT.floor), image=image(DEPLOYMENT, NEW), replicas=first
    )


# -- the cluster's own view -----------------------------------------------------------------


def _find(emu: KubernetesEmulator, kind: str, name: str) -> dict[str, Any] | None:
    try:
        return emu.object(kind, NS, name)
    except KeyError:
        return None


def at_step(emu: KubernetesEmulator, kind: KubeKind, name: str, step: int, replicas: int) -> bool:
    """Object `name` stands where step `step` of version 2 puts it, its pods available."""
    if kind is ARGO:
        obj = emu.object("Rollout", NS, name)
        seen = argo.read(obj, None, name)
        points = argo.pause_points(obj)
        if seen.version != NEW:
            return False
        return seen.healthy if step >= len(points) else seen.paused_at(points[step].index)
    new = canary_count(kind.percents[step], replicas)
    stable = _find(emu, "Deployment", name)
    found = _find(emu, "Deployment", canary.canary_name(name))
    if stable is None:
        return False
    if new >= replicas:
        return found is None and canary.count(stable, None, name).runs(NEW, replicas)
    return (
        found is not None
        and canary.count(found, None, name).runs(NEW, new)
        and canary.count(stable, None, name).runs(OLD, replicas - new)
    )


def available(emu: KubernetesEmulator, kind: KubeKind, name: str) -> int:
    """Pods of the service available now (a Deployment's: with its canary's)."""
    if kind is ARGO:
        names = [("Rollout", name)]
    else:
        names = [("Deployment", name), ("Deployment", canary.canary_name(name))]
    found = [_find(emu, k, n) for k, n in names]
    return sum(int((o.get("status") or {}).get("availableReplicas") or 0) for o in found if o)


@dataclass
class Reached:
    seconds: float  # from t0 until the cluster stood at the step; NaN: not in time
    min_available: int  # fewest pods of the service available on the way


async def cluster_at(
    emu: KubernetesEmulator, kind: KubeKind, name: str, step: int, replicas: int, t0: float,
    within: float,
) -> Reached:  # fmt: skip
    """When the cluster stands at the step (from `t0`, perf_counter), and the fewest pods
    available until then."""
    low = available(emu, kind, name)
    while not at_step(emu, kind, name, step, replicas):
        if time.perf_counter() - t0 > within:
            return Reached(math.nan, low)
        await asyncio.sleep(CLUSTER_POLL)
        low = min(low, available(emu, kind, name))
    return Reached(time.perf_counter() - t0, low)


def first_write(emu: KubernetesEmulator, kind: KubeKind, name: str, since: float) -> float:
    """Seconds from `since` (time.time) until the step's first write to `name` arrived."""
    if kind is ARGO:
        path = re.compile(rf"/rollouts/{re.escape(name)}/status$")
    else:
        path = re.compile(rf"/deployments/{re.escape(name)}(-canary)?(/[a-z]+)?$")
    for r in list(emu.requests):
        if r.at < since or r.method not in WRITES or not path.search(r.path):
            continue
        if kind is not ARGO or r.body == PROMOTE:
            return r.at - since
    return math.nan


def step_read(
    emu: KubernetesEmulator, kind: KubeKind, name: str, since: float, until: float
) -> float:
    """Seconds from `since` until the last read of `name` (a Deployment's: or of its canary;
    a GET of the object itself) before `until`, the step's first write: when the step's job
    read it to decide the write. (The click's job reads it earlier, to show it.)"""
    if kind is ARGO:
        path = re.compile(rf"/rollouts/{re.escape(name)}$")
    else:
        path = re.compile(rf"/deployments/{re.escape(name)}(-canary)?$")
    found = math.nan
    for r in list(emu.requests):
        if since <= r.at <= until and r.method == "GET" and path.search(r.path):
            found = r.at - since
    return found


def promotes(emu: KubernetesEmulator, name: str) -> int:
    """The promote patches that reached rollouts/<name>/status."""
    return sum(
        1 for r in emu.requests_to(f"*/rollouts/{name}/status", "PATCH") if r.body == PROMOTE
    )


# -- kubectl, the floor ---------------------------------------------------------------------


class Kubectl:
    """The real kubectl on the emulator's kubeconfig, with a discovery cache of its own."""

    def __init__(self, kubeconfig: Path, home: Path) -> None:
        binary = shutil.which("kubectl")
        assert binary is not None
        self.binary = binary
        self.env = {
            **base_env(),
            "HOME": str(home),
            "KUBECONFIG": str(kubeconfig),
            "KUBECACHEDIR": str(home / "kube-cache"),
        }

    async def run(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            self.binary, *args, env=self.env, stdout=subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, err = await asyncio.wait_for(proc.communicate(), KUBECTL_TIMEOUT)
        except TimeoutError as e:
            proc.kill()
            await proc.wait()
            raise RoundMiss(f"kubectl {' '.join(args)} ran over {KUBECTL_TIMEOUT:g} s") from e
        if proc.returncode:
            raise RoundMiss(f"kubectl {' '.join(args)} failed: {err.decode().strip()}")

    def version(self) -> str:
        out = subprocess.run(
            [self.binary, "version", "--client", "-o", "json"], capture_output=True, text=True,
            env=self.env, check=False, timeout=10,
        ).stdout  # fmt: skip
        try:
            return str(json.loads(out)["clientVersion"]["gitVersion"])
        except (ValueError, KeyError, TypeError):
            return "unknown"


def kubectl_commands(kind: KubeKind, step: int, replicas: int) -> list[list[str]]:
    """What a person types to make step `step` (from the one before) on kubectl's twin."""
    name, ns = kind.floor, ["-n", NS]
    if kind is ARGO:
        body = json.dumps(PROMOTE, separators=(",", ":"))
        return [["patch", "rollout", name, *ns, "--subresource", "status", "--type", "merge",
                 "-p", body]]  # fmt: skip
    new = canary_count(kind.percents[step], replicas)
    twin = canary.canary_name(name)
    if new >= replicas:
        return [
            ["set", "image", f"deployment/{name}", f"app={image(kind, NEW)}", *ns],
            ["scale", "deployment", name, f"--replicas={replicas}", *ns],
            ["delete", "deployment", twin, *ns],
        ]
    return [
        ["scale", "deployment", twin, f"--replicas={new}", *ns],
        ["scale", "deployment", name, f"--replicas={replicas - new}", *ns],
    ]


async def start_floor(kubectl: Kubectl, emu: KubernetesEmulator, kind: KubeKind, args: Any) -> None:
    """kubectl's twin at the first step, untimed (the Rollout's canary starts with its image)."""
    if kind is ARGO:
        set_image = [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                      "value": image(kind, NEW)}]  # fmt: skip
        await kubectl.run(
            "patch", "rollout", kind.floor, "-n", NS, "--type", "json", "-p", json.dumps(set_image)
        )
    else:
        await kubectl.run("get", "deployments", "-n", NS)  # the discovery cache, warm
    t0 = time.perf_counter()
    reached = await cluster_at(emu, kind, kind.floor, 0, args.replicas, t0, args.step_timeout)
    if math.isnan(reached.seconds):
        raise RoundMiss(f"kubectl's {kind.floor} did not reach {kind.percents[0]}%")


async def kubectl_step(
    kubectl: Kubectl, emu: KubernetesEmulator, kind: KubeKind, step: int, number: int, args: Any
) -> KubectlStep:
    out = KubectlStep(kind.name, number, kind.percents[step])
    commands = kubectl_commands(kind, step, args.replicas)
    out.commands = len(commands)

    async def typed() -> float:
        for command in commands:
            await kubectl.run(*command)
        return time.perf_counter() - t0

    t0, t0_wall = time.perf_counter(), time.time()
    out.exit_s, reached = await asyncio.gather(
        typed(), cluster_at(emu, kind, kind.floor, step, args.replicas, t0, args.step_timeout)
    )
    out.cluster_s, out.min_available = reached.seconds, reached.min_available
    out.patch_s = first_write(emu, kind, kind.floor, t0_wall)
    return out
