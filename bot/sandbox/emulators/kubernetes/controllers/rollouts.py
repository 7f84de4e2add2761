"""Argo Rollouts' basic canary (no traffic routing), simulated after rollout/canary.go.

A pod-template change makes a ReplicaSet labelled `rollouts-pod-template-hash`, sets
`status.currentPodHash` and `currentStepIndex` 0, then walks `spec.strategy.canary.steps`:
`setWeight` scales canary and stable by Argo's rounding and moves on once their pods are
available; `pause: {}` adds the CanaryPauseStep pause condition and waits for the promote
patch (`{"status":{"pauseConditions":null}}`); `pause: {duration}` resumes by itself after
the duration × `emu.time_scale`. After the last step (or at once with `status.promoteFull`)
the canary becomes `stableRS`.
`status.abort` scales the canary to 0 (Degraded, RolloutAborted); clearing it retries from
step 0. The first template ever (no stable yet) and a return to the stable template skip
the steps, as Argo does. `spec.paused` holds everything where it is.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from ..models import JSON
from ..resources import ROLLOUTS
from ..store import now_iso, stable_hash
from . import canary
from .workloads import (
    available,
    ensure_replicaset,
    owned_by,
    replicas,
    revision_of,
    scale,
    set_condition,
    sync_pods,
)

if TYPE_CHECKING:
    from ..cluster import Cluster

HASH_LABEL = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
CANARY_PAUSE = "CanaryPauseStep"
INCONCLUSIVE = "InconclusiveAnalysisRun"  # Argo's PauseReasonInconclusiveAnalysis


def steps_of(rollout: JSON) -> list[JSON]:
    canary_spec = (rollout["spec"].get("strategy") or {}).get("canary") or {}
    return list(canary_spec.get("steps") or [])


class RolloutSync:
    """One pass of the controller over one Rollout."""

    def __init__(self, emu: Cluster, rollout: JSON) -> None:
        self.emu = emu
        self.rollout = rollout
        self.uid = rollout["metadata"]["uid"]
        self.status: JSON = copy.deepcopy(rollout.get("status") or {})
        self.steps = steps_of(rollout)
        self.wanted = replicas(rollout)
        self.pod_hash = stable_hash(rollout["spec"]["template"])
        self.now = time.monotonic()

    # -- timers kept beside the object (monotonic, so tests can scale time) ----------------

    def _progress_started(self) -> float:
        """When the current stretch of progress began: a new template, step, replica count
        or abort starts a new one, as does a resume (see `_restart_progress`)."""
        key = (
            self.pod_hash,
            self.wanted,
            self.status.get("currentStepIndex"),
            bool(self.status.get("abort")),
        )
        saved = self.emu.memory.get(("rollout-progress", self.uid))
        if saved is None or saved[0] != key:
            self.emu.memory[("rollout-progress", self.uid)] = saved = (key, self.now)
        return float(saved[1])

    def _restart_progress(self) -> None:
        self.emu.memory.pop(("rollout-progress", self.uid), None)

    # -- the pass -------------------------------------------------------------------------

    def run(self) -> None:
        replicasets = owned_by(self.emu, self.rollout)
        new = next(
            (rs for rs in replicasets if rs["metadata"]["labels"].get(HASH_LABEL) == self.pod_hash),
            None,
        )
        if new is None:
            revision = max((revision_of(rs, REVISION) for rs in replicasets), default=0) + 1
            new = ensure_replicaset(
                self.emu, self.rollout, ROLLOUTS, HASH_LABEL, self.pod_hash, REVISION, revision
            )
            replicasets.append(new)
        if self.status.get("currentPodHash") != self.pod_hash:
            self._new_template(replicasets)
        by_hash = {rs["metadata"]["labels"].get(HASH_LABEL): rs for rs in replicasets}
        stable = by_hash.get(self.status.get("stableRS"))
        if stable is None:  # the stable ReplicaSet is gone: start over from this template
            self.status["stableRS"] = self.pod_hash
            stable = new
        if self.status["stableRS"] == self.pod_hash:
            self._promoted(new, replicasets)
        elif self.status.get("abort"):
            self._aborted(new, stable)
        else:
            self._walk(new, stable, replicasets)
        synced = [sync_pods(self.emu, rs) for rs in owned_by(self.emu, self.rollout)]
        self._write(
            next(rs for rs in synced if rs["metadata"]["uid"] == new["metadata"]["uid"]), synced
        )

    def _new_template(self, replicasets: list[JSON]) -> None:
        for key in ("abort", "abortedAt", "pauseConditions", "controllerPause"):
            self.status.pop(key, None)
        self.status["currentPodHash"] = self.pod_hash
        stable = self.status.get("stableRS")
        known = {rs["metadata"]["labels"].get(HASH_LABEL) for rs in replicasets}
        if not stable or stable == self.pod_hash or stable not in known:
            self.status["stableRS"] = self.pod_hash  # nothing to canary against: 100% at once
            if self.steps:
                self.status["currentStepIndex"] = len(self.steps)
        elif self.steps:
            self.status["currentStepIndex"] = 0
        self._restart_progress()

    def _promoted(self, new: JSON, replicasets: list[JSON]) -> None:
        if self.steps:
            self.status["currentStepIndex"] = len(self.steps)
        new = sync_pods(self.emu, scale(self.emu, new, self.wanted))
        if available(new) >= self.wanted:
            for rs in replicasets:
                if rs["metadata"]["uid"] != new["metadata"]["uid"]:
                    scale(self.emu, rs, 0)

    def _aborted(self, new: JSON, stable: JSON) -> None:
        self.status.setdefault("abortedAt", now_iso())
        self.status.pop("pauseConditions", None)
        self.status.pop("controllerPause", None)
        if self.steps:
            self.status["currentStepIndex"] = 0
        scale(self.emu, new, 0)
        scale(self.emu, stable, self.wanted)

    def _walk(self, new: JSON, stable: JSON, replicasets: list[JSON]) -> None:
        if self.status.pop("abortedAt", None) is not None:  # retried after an abort
            self.status.pop("abort", None)
            self._restart_progress()
        if self.status.get("promoteFull"):  # `kubectl argo rollouts promote --full`
            for key in ("pauseConditions", "controllerPause"):
                self.status.pop(key, None)
            self.status["currentStepIndex"] = len(self.steps)
        index = int(self.status.get("currentStepIndex", 0))
        if index >= len(self.steps):
            new = sync_pods(self.emu, scale(self.emu, new, self.wanted))
            if available(new) >= self.wanted:
                self.status["stableRS"] = self.pod_hash
                self.status.pop("promoteFull", None)
                self._promoted(new, replicasets)
            return
        weight = canary.current_weight(self.steps, index)
        surge = canary.max_surge(self.rollout, self.wanted)
        canary_count, stable_count = canary.canary_stable_counts(self.wanted, weight, surge)
        new = sync_pods(self.emu, scale(self.emu, new, canary_count))
        stable = sync_pods(self.emu, scale(self.emu, stable, stable_count))
        pauses = self.status.get("pauseConditions") or []
        if self.rollout["spec"].get("paused") or any(
            p.get("reason") != CANARY_PAUSE for p in pauses
        ):
            self._restart_progress()  # time paused does not count against the deadline
            return
        if not pauses and self.status.get("controllerPause") and "pause" not in self.steps[index]:
            self.status.pop("controllerPause")  # a pause for another reason was lifted
        if self._step_done(self.steps[index], new, stable, canary_count, stable_count):
            self.status["currentStepIndex"] = index + 1
            self._restart_progress()

    def _step_done(
        self, step: JSON, new: JSON, stable: JSON, canary_count: int, stable_count: int
    ) -> bool:
        if "setWeight" in step:
            return available(new) >= canary_count and available(stable) >= stable_count
        if "pause" not in step:
            return True  # analysis, experiments, plugins: not simulated, they pass
        pauses: list[JSON] = self.status.get("pauseConditions") or []
        mine = next((p for p in pauses if p.get("reason") == CANARY_PAUSE), None)
        if mine is None and self.status.get("controllerPause"):
            self.status.pop("controllerPause")  # promoted: the pause condition was cleared
            self.status.pop("pauseConditions", None)
            return True
        if mine is None:
            self.status["pauseConditions"] = [
                *pauses,
                {"reason": CANARY_PAUSE, "startTime": now_iso()},
            ]
            self.status["controllerPause"] = True
            self.emu.memory[("rollout-pause", self.uid)] = self.now
            return False
        seconds = canary.pause_seconds(step["pause"])
        started = float(self.emu.memory.setdefault(("rollout-pause", self.uid), self.now))
        if seconds is not None and self.now - started >= seconds * self.emu.time_scale:
            self.status.pop("pauseConditions", None)
            self.status.pop("controllerPause", None)
            return True
        return False

    # -- status -----------------------------------------------------------------------------

    def _write(self, new: JSON, replicasets: list[JSON]) -> None:
        status = self.status
        status["observedGeneration"] = str(self.rollout["metadata"]["generation"])
        counts = {
            "replicas": sum(replicas(rs) for rs in replicasets),
            "updatedReplicas": replicas(new),
            "readyReplicas": sum(available(rs) for rs in replicasets),
            "availableReplicas": sum(available(rs) for rs in replicasets),
        }
        counts["HPAReplicas"] = counts["replicas"]
        for key, value in counts.items():  # zero counts are omitted, as Argo's omitempty does
            if value:
                status[key] = value
            else:
                status.pop(key, None)
        status["currentStepHash"] = stable_hash(self.steps)
        status.setdefault("canary", {})
        labels = (self.rollout["spec"].get("selector") or {}).get("matchLabels") or {}
        status["selector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        self._conditions(new)
        phase, message = canary.phase_and_message(self.rollout, status)
        status["phase"] = phase
        if message:
            status["message"] = message
        else:
            status.pop("message", None)
        revision = str(revision_of(new, REVISION))
        if status == self.rollout.get("status") and revision == str(
            revision_of(self.rollout, REVISION)
        ):
            return
        updated = copy.deepcopy(self.rollout)
        updated["status"] = status
        updated["metadata"].setdefault("annotations", {})[REVISION] = revision
        self.emu.store.replace(ROLLOUTS, updated)

    def _conditions(self, new: JSON) -> None:
        conditions: list[JSON] = self.status.setdefault("conditions", [])
        name = new["metadata"]["name"]
        healthy = self.status.get("stableRS") == self.pod_hash and available(new) >= self.wanted
        paused = self.rollout["spec"].get("paused") or self.status.get("pauseConditions")
        deadline = float(self.rollout["spec"].get("progressDeadlineSeconds", 600))
        timed_out = self.now - self._progress_started() > deadline * self.emu.time_scale
        if self.status.get("abort"):
            revision = revision_of(new, REVISION)
            progressing: tuple[str, str, str] = (
                "False",
                "RolloutAborted",
                f"Rollout aborted update to revision {revision}",
            )
        elif healthy:
            progressing = (
                "True",
                "NewReplicaSetAvailable",
                f'Rollout "{self.rollout["metadata"]["name"]}" has successfully progressed.',
            )
        elif paused:
            progressing = ("Unknown", "RolloutPaused", "Rollout is paused")
        elif timed_out:
            progressing = (
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{name}" has timed out progressing.',
            )
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
        set_condition(conditions, "Progressing", *progressing)
        total_available = int(self.status.get("availableReplicas", 0))
        if total_available >= self.wanted:
            set_condition(
                conditions,
                "Available",
                "True",
                "AvailableReason",
                "Rollout has minimum availability",
            )
        else:
            set_condition(
                conditions,
                "Available",
                "False",
                "AvailableReason",
                "Rollout does not have minimum availability",
            )
        if healthy:
            set_condition(conditions, "Healthy", "True", "RolloutHealthy", "Rollout is healthy")
        else:
            set_condition(
                conditions, "Healthy", "False", "RolloutHealthy", "Rollout is not healthy"
            )


def sync(emu: Cluster, rollout: JSON) -> None:
    RolloutSync(emu, rollout).run()


def pause_inconclusive(rollout: JSON) -> JSON:
    """The Rollout after an analysis came back inconclusive: paused until promoted, its
    phase and message saying so at once (as Argo writes them in the same update)."""
    rollout = copy.deepcopy(rollout)
    status = rollout.setdefault("status", {})
    pauses: list[Any] = status.get("pauseConditions") or []
    if not any(p.get("reason") == INCONCLUSIVE for p in pauses):
        status["pauseConditions"] = [*pauses, {"reason": INCONCLUSIVE, "startTime": now_iso()}]
    status["controllerPause"] = True
    status["phase"], status["message"] = canary.phase_and_message(rollout, status)
    return rollout
