"""Argo Rollouts' arithmetic, ported: replica counts for a canary weight, the current weight,
and the phase and message Argo derives from a Rollout's status (rolloututil.go)."""

from __future__ import annotations

import math
import re
from typing import Any

from ..models import JSON

MAX_WEIGHT = 100


def _percent_or_count(value: Any, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = replicas * int(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def max_surge(rollout: JSON, replicas: int) -> int:
    """`canary.maxSurge` (25% by default), rounded up as Argo does."""
    canary = rollout["spec"].get("strategy", {}).get("canary") or {}
    return _percent_or_count(canary.get("maxSurge", "25%"), replicas, round_up=True)


def _tied(weight: int, total: int) -> bool:
    return math.modf(total * (weight / MAX_WEIGHT))[0] == 0.5


def _delta(weight: int, canary: int, total: int) -> float:
    return abs(canary * MAX_WEIGHT / total - weight)


def canary_stable_counts(replicas: int, weight: int, surge: int) -> tuple[int, int]:
    """approximateWeightedCanaryStableReplicaCounts (utils/replicaset/canary.go): the canary
    and stable counts nearest the weight, summing to replicas or, with surge, replicas + 1;
    a weight of 1-99 with 2+ replicas never leaves either side at 0."""
    if replicas == 0:
        return 0, 0
    ceil = math.ceil(replicas * weight / MAX_WEIGHT)
    floor = math.floor(replicas * weight / MAX_WEIGHT)
    zero_allowed = weight in (MAX_WEIGHT, 0) or (replicas == 1 and surge == 0)
    options: list[tuple[int, int]] = []
    if ceil < replicas or zero_allowed:
        options.append((ceil, replicas))
    if not _tied(weight, replicas) and (floor != 0 or zero_allowed):
        options.append((floor, replicas))
    if surge > 0:
        options.append((ceil, replicas + 1))
        if not _tied(weight, replicas + 1) and (floor != 0 or zero_allowed):
            options.append((floor, replicas + 1))
    if not options:
        return 0, replicas
    best = options[0]
    for option in options[1:]:
        if _delta(weight, *option) < _delta(weight, *best):
            best = option
    return best[0], best[1] - best[0]


def current_weight(steps: list[JSON], index: int) -> int:
    """The weight of the last `setWeight` step at or before `index` (0 before any)."""
    weight = 0
    for step in steps[: index + 1]:
        if isinstance(step, dict) and "setWeight" in step:
            weight = int(step["setWeight"])
    return weight


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def pause_seconds(pause: Any) -> float | None:
    """A pause step's duration (`30`, `"5s"`, `"1m"`, `"1h"`); None: until promoted."""
    if not isinstance(pause, dict) or pause.get("duration") in (None, ""):
        return None
    found = _DURATION.match(str(pause["duration"]).strip())
    if not found:
        return None
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[found.group(2)]
    return float(found.group(1)) * unit


def phase_and_message(rollout: JSON, status: JSON) -> tuple[str, str]:
    """CalculateRolloutPhase for a basic canary."""
    for condition in status.get("conditions") or []:
        if condition.get("reason") in ("RolloutAborted", "ProgressDeadlineExceeded"):
            return "Degraded", f"{condition['reason']}: {condition['message']}"
    if rollout["spec"].get("paused"):
        return "Paused", "manually paused"
    for pause in status.get("pauseConditions") or []:
        return "Paused", str(pause.get("reason"))
    wanted = rollout["spec"].get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < wanted:
        return "Progressing", "more replicas need to be updated"
    if status.get("availableReplicas", 0) < updated:
        return "Progressing", "updated replicas are still becoming available"
    if status.get("replicas", 0) > updated:
        return "Progressing", "old replicas are pending termination"
    if not status.get("stableRS") or status.get("stableRS") != status.get("currentPodHash"):
        return "Progressing", "waiting for all steps to complete"
    return "Healthy", ""
