"""An Argo Rollout as opsloop reads it, and the patches `kubectl argo rollouts` sends.

Pure functions over the Rollout as the API server returns it (a dict; argo-rollouts'
pkg/apis/rollouts/v1alpha1/types.go). The approval points are the canary's indefinite pauses
(`pause: {}`); the new version's share at each is the last `setWeight` before it. The phase is
read as `kubectl argo rollouts` reads it (utils/rollout/rolloututil.go `GetRolloutPhase`):
"Progressing" until the controller has observed the spec and while an unpause is under way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from integrations.kubernetes import pods

# The patches of `kubectl argo rollouts` (pkg/kubectl-argo-rollouts/cmd/{promote,abort,retry}),
# each a JSON merge patch, sent to the status subresource first and to the object on 404.
UNPAUSE_SPEC = {"spec": {"paused": False}}
CLEAR_PAUSE = {"status": {"pauseConditions": None}}
UNPAUSE_BOTH = {"spec": {"paused": False}, "status": {"pauseConditions": None}}
ABORT = {"status": {"abort": True}}
RETRY = {"status": {"abort": False}}
PROMOTE_FULL = {"status": {"promoteFull": True}}

CANARY_PAUSE = "CanaryPauseStep"
# Argo's PauseReason values for an analysis or experiment that could not decide.
INCONCLUSIVE = frozenset({"InconclusiveAnalysisRun", "InconclusiveExperiment"})


@dataclass(frozen=True)
class PausePoint:
    """An indefinite pause of the canary's steps: where opsloop asks for approval."""

    index: int  # in spec.strategy.canary.steps
    weight: int  # the new version's share there, percent


def steps(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    return [s for s in ((strategy.get("canary") or {}).get("steps") or []) if isinstance(s, dict)]


def pause_points(rollout: dict[str, Any]) -> list[PausePoint]:
    points, weight = [], 0
    for index, step in enumerate(steps(rollout)):
        if isinstance(step.get("setWeight"), int):
            weight = int(step["setWeight"])
        pause = step.get("pause")
        if isinstance(pause, dict) and pause.get("duration") in (None, "", 0):
            points.append(PausePoint(index, weight))
    return points


def percents(rollout: dict[str, Any]) -> list[int]:
    """The new version's share at each approval point, then 100."""
    return [p.weight for p in pause_points(rollout)] + [100]


def is_canary(rollout: dict[str, Any]) -> bool:
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    return "canary" in strategy


@dataclass(frozen=True)
class Seen:
    """What opsloop reads of a Rollout."""

    version: str  # the tag of the deployed container's image in the spec
    observed: bool  # the controller has seen the spec (status.observedGeneration)
    phase: str  # Healthy, Progressing, Paused, Degraded
    message: str
    pause_reasons: tuple[str, ...]
    step_index: int | None  # status.currentStepIndex
    aborted: bool  # status.abort
    abort_done: bool  # the controller reconciled the abort (status.abortedAt)
    fully_promoted: bool  # status.stableRS == status.currentPodHash
    spec_paused: bool
    weight: int | None  # the canary's traffic weight, when Argo reports or implies one
    replicas: int
    updated: int
    ready: int
    available: int

    def paused_at(self, index: int) -> bool:
        """Paused by Argo at canary step `index` (an indefinite pause), and nothing else."""
        return (
            self.observed
            and not self.aborted
            and CANARY_PAUSE in self.pause_reasons
            and self.step_index == index
        )

    @property
    def retrying(self) -> bool:
        """A retry (abort cleared) that the controller has not reconciled yet: what the
        status says about the abort is old news."""
        return not self.aborted and self.abort_done

    @property
    def inconclusive(self) -> bool:
        return any(r in INCONCLUSIVE for r in self.pause_reasons)

    @property
    def healthy(self) -> bool:
        return self.observed and self.phase == "Healthy" and self.fully_promoted

    def fingerprint(self) -> str:
        """What the message shows of the Rollout, as a short digest."""
        shown = json.dumps([self.version, self.phase, self.message, self.pause_reasons,
                            self.step_index, self.aborted, self.weight, self.replicas,
                            self.updated, self.ready, self.available])  # fmt: skip
        return hashlib.sha256(shown.encode()).hexdigest()[:16]


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) else 0


def _observed(rollout: dict[str, Any], status: dict[str, Any]) -> bool:
    observed = str(status.get("observedGeneration", ""))
    generation = (rollout.get("metadata") or {}).get("generation")
    if not observed.isdigit() or not isinstance(generation, int):
        return True  # Argo before v0.10 stored a hash here: nothing to compare
    return int(observed) >= generation


def read(rollout: dict[str, Any], container: str | None, what: str) -> Seen:
    spec = rollout.get("spec") or {}
    status = rollout.get("status") or {}
    _, wanted = pods.pick(spec.get("template") or {}, container, what)
    reasons = tuple(
        str(c.get("reason", "")) for c in status.get("pauseConditions") or [] if isinstance(c, dict)
    )
    observed = _observed(rollout, status)
    phase, message = str(status.get("phase", "")), str(status.get("message", ""))
    if not observed:
        phase, message = "Progressing", "waiting for rollout spec update to be observed"
    elif status.get("controllerPause") and not reasons:
        phase, message = "Progressing", "waiting for rollout to unpause"
    index = status.get("currentStepIndex")
    stable, current = status.get("stableRS"), status.get("currentPodHash")
    return Seen(
        version=pods.tag(str(wanted.get("image", ""))),
        observed=observed,
        phase=phase or "Progressing",
        message=message,
        pause_reasons=reasons,
        step_index=index if isinstance(index, int) else None,
        aborted=bool(status.get("abort")),
        abort_done=status.get("abortedAt") is not None,
        fully_promoted=bool(stable) and stable == current,
        spec_paused=bool(spec.get("paused")),
        weight=_weight(rollout, status, index if isinstance(index, int) else None),
        replicas=_int(spec.get("replicas", 1)),
        updated=_int(status.get("updatedReplicas")),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
    )


def _weight(rollout: dict[str, Any], status: dict[str, Any], index: int | None) -> int | None:
    """Traffic routers report the canary's weight; without one it is the last setWeight
    reached (Argo scales the canary's pods to it)."""
    reported = ((status.get("canary") or {}).get("weights") or {}).get("canary") or {}
    if isinstance(reported.get("weight"), int):
        return int(reported["weight"])
    if status.get("stableRS") and status.get("stableRS") == status.get("currentPodHash"):
        return None  # nothing is being rolled out
    if status.get("abort"):
        return 0
    weight = 0
    for step in steps(rollout)[: (index or 0) + 1]:
        if isinstance(step.get("setWeight"), int):
            weight = int(step["setWeight"])
    return weight


def promote_patches(
    seen: Seen,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any]]:
    """(spec patch, status patch, the unified patch for a Rollout without a status
    subresource): what `kubectl argo rollouts promote` sends for a Rollout paused at a step."""
    spec = UNPAUSE_SPEC if seen.spec_paused else None
    status = CLEAR_PAUSE if seen.pause_reasons else None
    return spec, status, UNPAUSE_BOTH


def past_inconclusive(seen: Seen, step_count: int) -> dict[str, Any]:
    """Promote's status patch for a Rollout Argo paused on an inconclusive analysis: clear the
    pause and go on to the next step (kubectl's `clearPauseConditionsAndControllerPausePatch`)."""
    index = seen.step_index or 0
    return {
        "status": {
            "pauseConditions": None,
            "controllerPause": False,
            "currentStepIndex": min(index + 1, step_count),
        }
    }


def describe(seen: Seen, points: list[PausePoint]) -> str:
    """The Rollout in a few words for the message: phase, step, weight, pods."""
    phase = f"*{seen.phase}*"
    if seen.inconclusive:
        phase += " by Argo: its analysis was inconclusive, not an approval point"
    elif seen.pause_reasons:
        phase += f" ({', '.join(seen.pause_reasons)})"
    elif seen.message and seen.phase in ("Degraded", "Progressing"):
        phase += f": {seen.message}"
    parts = [phase]
    at = [n for n, p in enumerate(points) if seen.paused_at(p.index)]
    if at:
        parts.append(f"approval point {at[0] + 1} of {len(points)}")
    elif seen.step_index is not None and not seen.fully_promoted:
        parts.append(f"canary step {seen.step_index + 1}")
    if seen.weight is not None:
        parts.append(f"canary weight {seen.weight}%")
    parts.append(
        f"pods: {seen.ready} ready of {seen.replicas} ({seen.updated} of `{seen.version}`)"
    )
    if seen.phase == "Degraded" and seen.message and seen.message not in phase:
        parts.append(seen.message)
    return " · ".join(parts)
