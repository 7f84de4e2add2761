"""The Kubernetes emulator against the real kubectl: it must answer as a real API server.

Each test runs kubectl (v1.32) with a kubeconfig the emulator wrote (its CA, a bearer
token) and checks what kubectl prints and what the emulator then holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.kube import Kube, served_kube
from tests.waiting import eventually


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[Kube]:
    async with served_kube(tmp_path) as served:
        yield served


def rollout_status(kube: Kube) -> dict[str, object]:
    return dict(kube.emu.object("Rollout", "shop", "shop")["status"])


async def test_kubectl_lists_deployments_and_rollouts(kube: Kube) -> None:
    table = await kube.ok("get", "deployments")
    assert table.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table.split("\n")[1].split()[:4] == ["cart", "2/2", "2", "2"]

    listed = json.loads(await kube.ok("get", "rollouts.argoproj.io", "-o", "json"))
    [rollout] = listed["items"]
    assert rollout["metadata"]["name"] == "shop"
    assert rollout["status"]["phase"] == "Healthy"
    assert rollout["status"]["stableRS"] == rollout["status"]["currentPodHash"]

    replicasets = await kube.ok("get", "replicasets", "-o", "name")
    assert sorted(replicasets.split()) == sorted(
        f"replicaset.apps/{rs['metadata']['name']}" for rs in kube.emu.objects("rs", "shop")
    )


async def test_kubectl_scale_patches_the_scale_subresource(kube: Kube) -> None:
    assert "deployment.apps/cart scaled" in await kube.ok(
        "scale", "deployment/cart", "--replicas=3"
    )
    [patch] = kube.emu.requests_to("*/deployments/cart/scale", "PATCH")
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body == {"spec": {"replicas": 3}}
    await eventually(
        lambda: (
            kube.emu.object("Deployment", "shop", "cart")["status"].get("availableReplicas") == 3
        ),
        what="three available pods",
    )


async def test_kubectl_set_image_merges_the_container_by_name(kube: Kube) -> None:
    await kube.ok("set", "image", "deployment/cart", "app=registry.example/cart:2")
    [patch] = kube.emu.requests_to("*/deployments/cart", "PATCH")
    assert patch.content_type == "application/strategic-merge-patch+json"
    [container] = kube.emu.object("Deployment", "shop", "cart")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == "registry.example/cart:2"
    # Merged by name, not replaced: what the patch did not name is still there.
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert kube.emu.object("Deployment", "shop", "cart")["metadata"]["generation"] == 2


async def test_kubectl_rollout_status_follows_the_deployment_until_available(
    kube: Kube,
) -> None:
    kube.emu.ready_seconds = 1.0
    await kube.ok("set", "image", "deployment/cart", "app=registry.example/cart:2")
    started = time.monotonic()
    out = await kube.ok("rollout", "status", "deployment/cart", "--timeout=20s")
    assert time.monotonic() - started >= 0.5  # it waited for the pods
    assert out.strip().endswith('deployment "cart" successfully rolled out')
    assert kube.emu.requests_to("*/deployments", "GET")[-1].query.get("watch") == "true"
    replicasets = kube.emu.objects("ReplicaSet", "shop")
    assert sorted(
        (rs["spec"]["template"]["spec"]["containers"][0]["image"], rs["spec"]["replicas"])
        for rs in replicasets
        if rs["metadata"]["name"].startswith("cart-")
    ) == [("registry.example/cart:1", 0), ("registry.example/cart:2", 2)]


async def test_kubectl_rollout_status_reports_a_missed_progress_deadline(kube: Kube) -> None:
    kube.emu.add_deployment("shop", "pay", image="pay:1", progress_deadline_seconds=100)
    kube.emu.fail_image("pay:2")
    await kube.ok("set", "image", "deployment/pay", "app=pay:2")
    ran = await kube.kubectl("rollout", "status", "deployment/pay", "--timeout=20s")
    assert ran.code != 0
    assert 'deployment "pay" exceeded its progress deadline' in ran.err
    status = kube.emu.object("Deployment", "shop", "pay")["status"]
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert status["availableReplicas"] == 1  # the old pod still serves


async def test_kubectl_promote_moves_the_rollout_to_its_next_step(kube: Kube) -> None:
    await kube.ok(
        "patch",
        "rollouts.argoproj.io",
        "shop",
        "--type",
        "json",
        "-p",
        '[{"op": "replace", "path": "/spec/template/spec/containers/0/image",'
        ' "value": "registry.example/shop:2"}]',
    )
    await eventually(lambda: rollout_status(kube).get("phase") == "Paused", what="first pause")
    status = rollout_status(kube)
    assert status["currentStepIndex"] == 1
    assert status["message"] == "CanaryPauseStep"
    assert status["controllerPause"] is True

    out = await kube.ok(
        "patch",
        "rollout",
        "shop",
        "--type",
        "merge",
        "--subresource",
        "status",
        "-p",
        '{"status":{"pauseConditions":null}}',
    )
    assert "rollout.argoproj.io/shop patched" in out
    await eventually(
        lambda: rollout_status(kube).get("currentStepIndex") == 3, what="the second pause"
    )
    counts = sorted(
        rs["spec"]["replicas"]
        for rs in kube.emu.objects("rs", "shop")
        if rs["metadata"]["name"].startswith("shop-")
    )
    assert counts == [3, 3]  # 50% of 5, rounded as Argo does (with a surge of one)


async def test_kubectl_abort_degrades_the_rollout(kube: Kube) -> None:
    await kube.ok(
        "patch",
        "rollout",
        "shop",
        "--type",
        "merge",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"app",'
        '"image":"registry.example/shop:2"}]}}}}',
    )
    await eventually(lambda: rollout_status(kube).get("phase") == "Paused", what="first pause")
    await kube.ok(
        "patch",
        "rollout",
        "shop",
        "--type",
        "merge",
        "-p",
        '{"status":{"abort":true}}',
        "--subresource",
        "status",
    )
    await eventually(lambda: rollout_status(kube).get("phase") == "Degraded", what="abort")
    status = rollout_status(kube)
    assert status["message"] == "RolloutAborted: Rollout aborted update to revision 2"
    assert status["abortedAt"]
    stable = f"shop-{status['stableRS']}"
    canary = f"shop-{status['currentPodHash']}"
    assert kube.emu.object("rs", "shop", canary)["spec"]["replicas"] == 0
    assert kube.emu.object("rs", "shop", stable)["spec"]["replicas"] == 5


async def test_kubectl_strategic_patch_on_a_rollout_is_refused(kube: Kube) -> None:
    ran = await kube.kubectl("patch", "rollout", "shop", "-p", '{"spec":{"paused":true}}')
    assert ran.code != 0
    assert "application/strategic-merge-patch+json is not supported" in ran.err
    assert not kube.emu.object("Rollout", "shop", "shop")["spec"].get("paused")


async def test_kubectl_auth_can_i_follows_the_denials(kube: Kube) -> None:
    assert (await kube.ok("auth", "can-i", "patch", "deployments", "-n", "shop")).strip() == "yes"
    kube.emu.deny(verb="patch", resource="deployments", namespace="shop")
    ran = await kube.kubectl("auth", "can-i", "patch", "deployments", "-n", "shop")
    assert (ran.code, ran.out.strip()) == (1, "no")
    assert (await kube.ok("auth", "can-i", "get", "deployments", "-n", "shop")).strip() == "yes"


async def test_kubectl_prints_not_found_and_forbidden_as_from_a_real_server(kube: Kube) -> None:
    ran = await kube.kubectl("get", "deployment", "nope")
    assert ran.code == 1
    assert ran.err.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'

    kube.emu.deny(verb="patch", resource="deployments", namespace="shop", name="cart")
    ran = await kube.kubectl(
        "patch", "deployment", "cart", "--type", "merge", "-p", '{"spec":{"replicas":4}}'
    )
    assert ran.code == 1
    assert ran.err.strip() == (
        'Error from server (Forbidden): deployments.apps "cart" is forbidden: User '
        '"system:serviceaccount:opsloop:opsloop" cannot patch resource "deployments" in API '
        'group "apps" in the namespace "shop"'
    )
    assert kube.emu.object("Deployment", "shop", "cart")["spec"]["replicas"] == 2


async def test_kubectl_refuses_a_wrong_token(kube: Kube) -> None:
    kube.config = kube.emu.kubeconfig(kube.directory / "wrong", token="not-the-token")
    ran = await kube.kubectl("get", "deployments")
    assert ran.code == 1
    assert "error: You must be logged in to the server" in ran.err
    assert kube.emu.requests and not any(r.token_ok for r in kube.emu.requests)


ROLLOUT_MANIFEST = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "web:IMAGE"}]
  strategy:
    canary:
      steps: [{setWeight: 25}, {pause: {}}]
"""


async def test_kubectl_apply_creates_a_rollout_and_starts_its_canary(kube: Kube) -> None:
    manifest = kube.directory / "web.yaml"
    manifest.write_text(ROLLOUT_MANIFEST.replace("IMAGE", "1"))
    assert "rollout.argoproj.io/web created" in await kube.ok("apply", "-f", str(manifest))
    await eventually(
        lambda: (
            kube.emu.object("Rollout", "shop", "web").get("status", {}).get("phase") == "Healthy"
        ),
        what="the first template at full scale",
    )
    manifest.write_text(ROLLOUT_MANIFEST.replace("IMAGE", "2"))
    assert "rollout.argoproj.io/web configured" in await kube.ok("apply", "-f", str(manifest))
    [patch] = kube.emu.requests_to("*/rollouts/web", "PATCH")
    assert patch.content_type == "application/merge-patch+json"  # a CRD: no strategic merge
    await eventually(
        lambda: (
            kube.emu.object("Rollout", "shop", "web")["status"].get("message") == "CanaryPauseStep"
        ),
        what="the canary's first pause",
    )
