"""Flagger's Canary (`flagger.app/v1beta1`), as Flagger's CRD serves it: stored, listed,
watched and patched like any custom resource; nothing of Flagger's controller runs, so its
status stays as arranged (a test plays Flagger by calling opsloop's webhook itself)."""

from __future__ import annotations

from .models import JSON


def canary(
    namespace: str, name: str, *, target: str, target_kind: str = "Deployment", port: int = 8080
) -> JSON:
    """A Canary of `target_kind` `target`, with Flagger's usual analysis and an Initialized
    status, as `kubectl get canary -o json` shows one Flagger has taken over."""
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target},
            "service": {"port": port},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
        },
        "status": {
            "phase": "Initialized",
            "canaryWeight": 0,
            "failedChecks": 0,
            "iterations": 0,
            "conditions": [
                {
                    "type": "Promoted",
                    "status": "True",
                    "reason": "Initialized",
                    "message": "Deployment initialization completed.",
                }
            ],
        },
    }
