"""The Kubernetes emulator through raw HTTPS: Status errors, conflicts, patches, watch and
its 410, faults, and the requests it records (the controllers: test_kubernetes_controllers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.kube import Kube, served_kube
from tests.waiting import eventually

CART = "/apis/apps/v1/namespaces/shop/deployments/cart"
ROLLOUT = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/shop"
MERGE = "application/merge-patch+json"


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[Kube]:
    async with served_kube(tmp_path, need_kubectl=False) as served:
        yield served


async def test_a_missing_or_wrong_token_is_a_401_status(kube: Kube) -> None:
    for token in (None, "wrong"):
        answer = await kube.http("GET", CART, token=token)
        assert answer.status == 401
        assert answer.body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
    assert [r.token_ok for r in kube.emu.requests] == [False, False]
    assert all("authorization" not in {k.lower() for k in r.headers} for r in kube.emu.requests)


async def test_errors_are_kubernetes_status_objects(kube: Kube) -> None:
    missing = await kube.http("GET", "/apis/apps/v1/namespaces/shop/deployments/nope")
    assert missing.status == 404
    assert missing.body["reason"] == "NotFound"
    assert missing.body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}

    cart = (await kube.http("GET", CART)).body
    again = await kube.http("POST", "/apis/apps/v1/namespaces/shop/deployments", body=cart)
    assert (again.status, again.body["reason"]) == (409, "AlreadyExists")

    bad = await kube.http(
        "PATCH", CART, body={"spec": {"replicas": -1}}, content_type="application/merge-patch+json"
    )
    assert (bad.status, bad.body["reason"]) == (422, "Invalid")
    assert bad.body["message"] == (
        'Deployment.apps "cart" is invalid: spec.replicas: Invalid value: -1: must be greater '
        "than or equal to 0"
    )

    kube.emu.deny(verb="patch", resource="rollouts/status", namespace="shop")
    refused = await kube.http(
        "PATCH",
        ROLLOUT + "/status",
        body={"status": {"abort": True}},
        content_type="application/merge-patch+json",
    )
    assert refused.status == 403
    assert refused.body["message"] == (
        'rollouts.argoproj.io "shop" is forbidden: User "system:serviceaccount:opsloop:opsloop" '
        'cannot patch resource "rollouts/status" in API group "argoproj.io" in the namespace '
        '"shop"'
    )
    assert not kube.emu.object("Rollout", "shop", "shop")["status"].get("abort")


async def test_an_update_with_a_stale_resource_version_conflicts(kube: Kube) -> None:
    read = (await kube.http("GET", CART)).body
    await kube.http(
        "PATCH",
        CART + "/scale",
        body={"spec": {"replicas": 4}},
        content_type="application/merge-patch+json",
    )
    read["spec"]["replicas"] = 1
    stale = await kube.http("PUT", CART, body=read)
    assert stale.status == 409
    assert stale.body["reason"] == "Conflict"
    assert stale.body["message"] == (
        'Operation cannot be fulfilled on deployments.apps "cart": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    fresh = (await kube.http("GET", CART)).body
    fresh["spec"]["replicas"] = 1
    updated = await kube.http("PUT", CART, body=fresh)
    assert updated.status == 200
    assert updated.body["spec"]["replicas"] == 1
    assert int(updated.body["metadata"]["resourceVersion"]) > int(
        fresh["metadata"]["resourceVersion"]
    )


async def test_patch_kinds_and_the_scale_subresource(kube: Kube) -> None:
    json_patch = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
    ]
    answer = await kube.http(
        "PATCH", CART, body=json_patch, content_type="application/json-patch+json"
    )
    assert answer.body["spec"]["replicas"] == 3
    failed = await kube.http(
        "PATCH", CART, body=json_patch, content_type="application/json-patch+json"
    )
    assert failed.status == 422

    scale = (await kube.http("GET", CART + "/scale")).body
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale["spec"] == {"replicas": 3}
    assert scale["status"]["selector"] == "app=cart"
    scale["spec"]["replicas"] = 5
    put = await kube.http("PUT", CART + "/scale", body=scale)
    assert put.body["spec"]["replicas"] == 5
    assert kube.emu.object("Deployment", "shop", "cart")["spec"]["replicas"] == 5

    sidecar = {
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy:1"}]}}}
    }
    merged = await kube.http(
        "PATCH", CART, body=sidecar, content_type="application/strategic-merge-patch+json"
    )
    names = [c["name"] for c in merged.body["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "proxy"]
    replaced = await kube.http(
        "PATCH", CART, body=sidecar, content_type="application/merge-patch+json"
    )
    names = [c["name"] for c in replaced.body["spec"]["template"]["spec"]["containers"]]
    assert names == ["proxy"]

    unsupported = await kube.http(
        "PATCH",
        ROLLOUT,
        body={"spec": {"paused": True}},
        content_type="application/strategic-merge-patch+json",
    )
    assert (unsupported.status, unsupported.body["reason"]) == (415, "UnsupportedMediaType")


async def test_the_promote_patch_on_the_object_is_tolerated(kube: Kube) -> None:
    kube.emu.inconclusive("shop", "shop")
    answer = await kube.http(
        "PATCH",
        ROLLOUT,
        body={"status": {"pauseConditions": None}},
        content_type="application/merge-patch+json",
    )
    assert answer.status == 200
    assert "pauseConditions" not in answer.body["status"]


async def test_list_by_label_and_access_review(kube: Kube) -> None:
    kube.emu.add_deployment("shop", "pay", image="pay:1", labels={"app": "pay", "tier": "back"})
    listed = await kube.http(
        "GET",
        "/apis/apps/v1/namespaces/shop/deployments?labelSelector=tier%20in%20(back,db),app!=cart",
    )
    assert listed.body["kind"] == "DeploymentList"
    assert [d["metadata"]["name"] for d in listed.body["items"]] == ["pay"]
    everywhere = await kube.http("GET", "/apis/apps/v1/deployments")
    assert len(everywhere.body["items"]) == 2

    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": "shop",
                "verb": "patch",
                "group": "argoproj.io",
                "resource": "rollouts",
                "subresource": "status",
                "name": "shop",
            }
        },
    }
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    assert (await kube.http("POST", path, body=review)).body["status"]["allowed"] is True
    kube.emu.deny(verb="patch", resource="rollouts/status", name="shop")
    assert (await kube.http("POST", path, body=review)).body["status"]["allowed"] is False


async def test_deleting_a_deployment_deletes_its_replicasets(kube: Kube) -> None:
    answer = await kube.http("DELETE", CART)
    assert (answer.status, answer.body["status"]) == (200, "Success")
    assert not [
        rs for rs in kube.emu.objects("rs", "shop") if rs["metadata"]["name"].startswith("cart-")
    ]


async def test_watch_streams_changes_and_answers_410_after_compaction(kube: Kube) -> None:
    rv = (await kube.http("GET", CART)).body["metadata"]["resourceVersion"]
    path = (
        f"/apis/apps/v1/namespaces/shop/deployments?watch=1&resourceVersion={rv}"
        "&fieldSelector=metadata.name%3Dcart"
    )
    watching = asyncio.create_task(kube.watch_lines(path, limit=2))
    await asyncio.sleep(0.1)
    await kube.http(
        "PATCH",
        CART + "/scale",
        body={"spec": {"replicas": 3}},
        content_type="application/merge-patch+json",
    )
    events = await watching
    assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED"]
    assert events[0]["object"]["spec"]["replicas"] == 3
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) > int(rv)

    replay = await kube.watch_lines(path, limit=1)  # from the same version: history replayed
    assert replay[0]["object"]["spec"]["replicas"] == 3

    kube.emu.compact()
    [gone] = await kube.watch_lines(path, limit=1)
    assert gone["type"] == "ERROR"
    assert (gone["object"]["code"], gone["object"]["reason"]) == (410, "Expired")
    assert gone["object"]["message"].startswith(f"too old resource version: {rv}")


async def test_watch_sends_bookmarks_and_ends_at_its_timeout(kube: Kube) -> None:
    kube.emu.bookmark_seconds = 0.1
    started = time.monotonic()
    events = await kube.watch_lines(
        "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts?watch=true&allowWatchBookmarks=true"
        "&timeoutSeconds=1",
        limit=100,
    )
    assert 0.9 <= time.monotonic() - started < 5
    assert events[0]["type"] == "ADDED"  # no resourceVersion: every object first
    assert {e["type"] for e in events[1:]} == {"BOOKMARK"}


async def test_faults_answer_as_an_overloaded_server_and_are_recorded(kube: Kube) -> None:
    kube.emu.fail(429, times=1, path="*/rollouts/shop/status", method="PATCH", retry_after=2)
    body = {"status": {"pauseConditions": None}}
    limited = await kube.http(
        "PATCH", ROLLOUT + "/status", body=body, content_type="application/merge-patch+json"
    )
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.body["reason"] == "TooManyRequests"
    passed = await kube.http(
        "PATCH", ROLLOUT + "/status", body=body, content_type="application/merge-patch+json"
    )
    assert passed.status == 200
    sent = kube.emu.requests_to("*/rollouts/shop/status", "PATCH")
    assert [(r.status, r.content_type, r.body) for r in sent] == [
        (429, "application/merge-patch+json", body),
        (200, "application/merge-patch+json", body),
    ]

    kube.emu.fail(503)
    assert (await kube.http("GET", CART)).body["reason"] == "ServiceUnavailable"
    kube.emu.heal()
    kube.emu.delay = 0.3
    started = time.monotonic()
    assert (await kube.http("GET", CART)).status == 200
    assert time.monotonic() - started >= 0.3


async def test_bad_writes_are_refused_with_a_status_never_a_5xx(kube: Kube) -> None:
    json_patch = "application/json-patch+json"
    bad = [
        ("PATCH", CART, [{"op": "replace", "path": "/spec/template", "value": "x"}], json_patch),
        ("PATCH", CART, [{"op": "remove", "path": "/spec/selector"}], json_patch),
        ("PATCH", CART, {"spec": {"template": {"metadata": {"labels": {"app": "x"}}}}}, MERGE),
        ("PATCH", CART, [{"op": "bogus", "path": "/spec"}], json_patch),
        (
            "PATCH",
            ROLLOUT,
            {"spec": {"strategy": {"canary": {"steps": [{"setWeight": "x"}]}}}},
            MERGE,
        ),
        ("PATCH", ROLLOUT, {"spec": {"strategy": {"canary": {"steps": "x"}}}}, MERGE),
        ("PATCH", CART, "not an object", MERGE),
        ("PUT", CART, ["a list"], "application/json"),
        (
            "POST",
            "/apis/apps/v1/namespaces/nowhere/deployments",
            {"metadata": {"name": "x"}},
            "application/json",
        ),
    ]
    for method, path, body, kind in bad:
        answer = await kube.http(method, path, body=body, content_type=kind)
        assert 400 <= answer.status < 500, (method, path, body, answer.body)
        assert answer.body["kind"] == "Status", answer.body
    assert kube.emu.object("Deployment", "shop", "cart")["metadata"]["generation"] == 1
    assert kube.emu.controller_errors == 0


async def test_promote_full_skips_the_remaining_steps(kube: Kube) -> None:
    first = kube.emu.object("Rollout", "shop", "shop")["status"]["stableRS"]
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "s:2"}]}}}}
    await kube.http("PATCH", ROLLOUT, body=patch, content_type=MERGE)
    await kube.http(
        "PATCH", ROLLOUT + "/status", body={"status": {"promoteFull": True}}, content_type=MERGE
    )

    def healthy() -> bool:
        status = kube.emu.object("Rollout", "shop", "shop")["status"]
        return (
            status["phase"] == "Healthy" and status["stableRS"] == status["currentPodHash"] != first
        )

    await eventually(healthy, what="a full promotion")
    assert "promoteFull" not in kube.emu.object("Rollout", "shop", "shop")["status"]


async def test_a_hold_keeps_the_change_back_until_released(kube: Kube) -> None:
    hold = kube.emu.hold("*/deployments/cart/scale", 30, method="PATCH")
    scaling = asyncio.create_task(
        kube.http("PATCH", CART + "/scale", body={"spec": {"replicas": 4}}, content_type=MERGE)
    )
    await asyncio.sleep(0.3)
    assert not scaling.done()
    assert kube.emu.object("Deployment", "shop", "cart")["spec"]["replicas"] == 2
    assert (await kube.http("GET", CART)).status == 200  # other requests pass meanwhile
    hold.seconds = 0
    assert (await scaling).status == 200
    assert kube.emu.object("Deployment", "shop", "cart")["spec"]["replicas"] == 4
