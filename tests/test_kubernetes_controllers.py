"""The Kubernetes emulator's simulated controllers: a Deployment's pods come up after a delay,
a Rollout walks its canary steps as Argo Rollouts does (promote, abort, retry, inconclusive,
a failing image), driven through the HTTPS API as a client would drive a cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.emulators.kubernetes.controllers.canary import canary_stable_counts
from tests.kube import Kube, served_kube
from tests.waiting import eventually

ROLLOUTS = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts"
MERGE = "application/merge-patch+json"


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[Kube]:
    async with served_kube(tmp_path, need_kubectl=False) as served:
        yield served


def status(kube: Kube, name: str = "shop") -> dict[str, Any]:
    return dict(kube.emu.object("Rollout", "shop", name).get("status") or {})


def counts(kube: Kube, name: str = "shop") -> dict[str, int]:
    """Replicas by pod hash: the Rollout's ReplicaSets as they stand."""
    return {
        rs["metadata"]["labels"]["rollouts-pod-template-hash"]: rs["spec"]["replicas"]
        for rs in kube.emu.objects("ReplicaSet", "shop")
        if rs["metadata"]["name"].startswith(f"{name}-")
    }


async def set_image(kube: Kube, image: str, name: str = "shop") -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    answer = await kube.http("PATCH", f"{ROLLOUTS}/{name}", body=patch, content_type=MERGE)
    assert answer.status == 200, answer.body


async def patch_status(kube: Kube, body: dict[str, Any], name: str = "shop") -> None:
    answer = await kube.http(
        "PATCH", f"{ROLLOUTS}/{name}/status", body={"status": body}, content_type=MERGE
    )
    assert answer.status == 200, answer.body


async def reaches(kube: Kube, phase: str, step: int | None = None, name: str = "shop") -> None:
    def there() -> bool:
        now = status(kube, name)
        return now.get("phase") == phase and (step is None or now.get("currentStepIndex") == step)

    await eventually(there, what=f"{name} {phase} at step {step}: {status(kube, name)}")


def test_canary_counts_round_as_argo_does() -> None:
    # Cases from argo-rollouts' utils/replicaset/canary.go and its tests.
    assert canary_stable_counts(10, 10, 3) == (1, 9)
    assert canary_stable_counts(5, 20, 2) == (1, 4)
    assert canary_stable_counts(5, 50, 2) == (3, 3)  # a tie picks the larger canary + surge
    assert canary_stable_counts(1, 5, 1) == (1, 1)
    assert canary_stable_counts(10, 33, 3) == (3, 7)
    assert canary_stable_counts(4, 100, 1) == (4, 0)
    assert canary_stable_counts(4, 0, 1) == (0, 4)


async def test_steps_walk_to_each_pause_and_promote_finishes(kube: Kube) -> None:
    first = status(kube)["stableRS"]
    await set_image(kube, "registry.example/shop:2")
    await reaches(kube, "Paused", 1)
    now = status(kube)
    assert now["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    assert now["stableRS"] == first and now["currentPodHash"] != first
    assert counts(kube) == {first: 4, now["currentPodHash"]: 1}
    assert now["updatedReplicas"] == 1 and now["availableReplicas"] == 5

    await patch_status(kube, {"pauseConditions": None})
    await reaches(kube, "Paused", 3)
    await patch_status(kube, {"pauseConditions": None})
    await reaches(kube, "Healthy")
    done = status(kube)
    assert done["stableRS"] == done["currentPodHash"] != first
    assert done["currentStepIndex"] == 4
    await eventually(
        lambda: counts(kube) == {first: 0, done["currentPodHash"]: 5},
        what="the old ReplicaSet scaled away",
    )
    assert (
        kube.emu.object("Rollout", "shop", "shop")["metadata"]["annotations"][
            "rollout.argoproj.io/revision"
        ]
        == "2"
    )


async def test_a_timed_pause_resumes_by_itself(kube: Kube) -> None:
    kube.emu.add_rollout(
        "shop",
        "web",
        image="web:1",
        replicas=5,
        steps=[{"setWeight": 40}, {"pause": {"duration": "20s"}}, {"setWeight": 80}, {"pause": {}}],
    )
    await set_image(kube, "web:2", name="web")
    await reaches(kube, "Paused", 3, name="web")  # 20 s × time_scale 0.01: 0.2 s
    assert sorted(counts(kube, "web").values()) == [1, 4]


async def test_abort_then_retry_starts_the_steps_again(kube: Kube) -> None:
    stable = status(kube)["stableRS"]
    await set_image(kube, "registry.example/shop:2")
    await reaches(kube, "Paused", 1)
    await patch_status(kube, {"pauseConditions": None})
    await reaches(kube, "Paused", 3)
    await patch_status(kube, {"abort": True})
    await reaches(kube, "Degraded")
    aborted = status(kube)
    assert aborted["message"] == "RolloutAborted: Rollout aborted update to revision 2"
    assert aborted["currentStepIndex"] == 0 and "pauseConditions" not in aborted
    assert counts(kube) == {stable: 5, aborted["currentPodHash"]: 0}

    await patch_status(kube, {"abort": False})
    await reaches(kube, "Paused", 1)
    retried = status(kube)
    assert "abortedAt" not in retried
    assert counts(kube) == {stable: 4, retried["currentPodHash"]: 1}


async def test_a_new_template_while_aborted_starts_a_new_canary(kube: Kube) -> None:
    await set_image(kube, "registry.example/shop:2")
    await reaches(kube, "Paused", 1)
    await patch_status(kube, {"abort": True})
    await reaches(kube, "Degraded")
    await set_image(kube, "registry.example/shop:3")
    await reaches(kube, "Paused", 1)
    now = status(kube)
    assert not now.get("abort") and "abortedAt" not in now
    canary = kube.emu.object("ReplicaSet", "shop", f"shop-{now['currentPodHash']}")
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":3")


async def test_an_inconclusive_analysis_pauses_until_promoted(kube: Kube) -> None:
    await set_image(kube, "registry.example/shop:2")
    await reaches(kube, "Paused", 1)
    await patch_status(kube, {"pauseConditions": None})
    await reaches(kube, "Paused", 3)
    kube.emu.inconclusive("shop", "shop")
    await reaches(kube, "Paused", 3)
    reasons = [p["reason"] for p in status(kube)["pauseConditions"]]
    assert reasons == ["CanaryPauseStep", "InconclusiveAnalysisRun"]
    assert status(kube)["message"] == "CanaryPauseStep"  # the first reason, as Argo shows it
    await patch_status(kube, {"pauseConditions": None})
    await reaches(kube, "Healthy", 4)


async def test_an_inconclusive_analysis_between_pauses_holds_the_canary(kube: Kube) -> None:
    await set_image(kube, "registry.example/shop:2")
    await reaches(kube, "Paused", 1)
    await patch_status(kube, {"pauseConditions": None})
    kube.emu.inconclusive("shop", "shop")
    await reaches(kube, "Paused")
    assert status(kube)["message"] == "InconclusiveAnalysisRun"
    assert status(kube)["currentStepIndex"] in (1, 2)
    await patch_status(kube, {"pauseConditions": None})
    await reaches(kube, "Paused", 3)
    assert status(kube)["pauseConditions"][0]["reason"] == "CanaryPauseStep"


async def test_a_failing_image_degrades_the_rollout_after_its_deadline(kube: Kube) -> None:
    kube.emu.add_rollout(
        "shop",
        "web",
        image="web:1",
        replicas=4,
        steps=[{"setWeight": 25}, {"pause": {}}],
        progress_deadline_seconds=50,
    )
    kube.emu.fail_image("web:2")
    await set_image(kube, "web:2", name="web")
    await reaches(kube, "Degraded", 0, name="web")
    now = status(kube, "web")
    assert now["message"] == (
        f'ProgressDeadlineExceeded: ReplicaSet "web-{now["currentPodHash"]}" has timed out '
        "progressing."
    )
    assert now["availableReplicas"] == 3  # the stable pods still serve


async def test_spec_paused_holds_the_rollout_until_cleared(kube: Kube) -> None:
    await kube.http(
        "PATCH", f"{ROLLOUTS}/shop", body={"spec": {"paused": True}}, content_type=MERGE
    )
    await set_image(kube, "registry.example/shop:2")
    await reaches(kube, "Paused")
    assert status(kube)["message"] == "manually paused"
    assert status(kube)["currentStepIndex"] == 0
    await kube.http(
        "PATCH", f"{ROLLOUTS}/shop", body={"spec": {"paused": None}}, content_type=MERGE
    )
    await reaches(kube, "Paused", 1)
    assert status(kube)["message"] == "CanaryPauseStep"


async def test_a_new_rollout_goes_straight_to_full(kube: Kube) -> None:
    web = kube.emu.object("Rollout", "shop", "shop")
    web["metadata"] = {"name": "web", "labels": {"app": "web"}}
    web["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    web["spec"]["template"]["metadata"]["labels"] = {"app": "web"}
    del web["status"]
    created = await kube.http("POST", ROLLOUTS, body=web)
    assert created.status == 201 and "status" not in created.body
    await reaches(kube, "Healthy", 4, name="web")
    assert list(counts(kube, "web").values()) == [5]


async def test_deployment_pods_come_up_after_ready_seconds(kube: Kube) -> None:
    kube.emu.ready_seconds = 1.0
    path = "/apis/apps/v1/namespaces/shop/deployments/cart/scale"
    await kube.http("PATCH", path, body={"spec": {"replicas": 4}}, content_type=MERGE)
    deployment = await eventually(
        lambda: (
            (d := kube.emu.object("Deployment", "shop", "cart"))["status"].get("replicas") == 4
            and d
        ),
        what="four pods asked for",
    )
    assert deployment["status"]["availableReplicas"] == 2
    assert deployment["status"]["observedGeneration"] == 2
    await eventually(
        lambda: (
            kube.emu.object("Deployment", "shop", "cart")["status"].get("availableReplicas") == 4
        ),
        what="four pods available",
    )
