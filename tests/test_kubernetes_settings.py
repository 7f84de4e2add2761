"""A `deployer: kubernetes` service's YAML keys, where opsloop finds the cluster, and what
`opsloop check` says about the cluster and each configured object."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.config_load import parse_config
from bot.errors import SettingsError
from integrations.kubernetes import argo, pods
from integrations.kubernetes.client import kubeconfig_source
from integrations.kubernetes.errors import ROLLOUT, Call, from_status
from tests.kube_cluster import running_cluster

REPO = Path(__file__).resolve().parent.parent


def service(**keys: Any) -> Any:
    return parse_config({"services": {"shop": {"deployer": "kubernetes", **keys}}})


def refusal(**keys: Any) -> str:
    with pytest.raises(SettingsError) as e:
        service(**keys)
    return str(e.value)


def test_a_service_names_exactly_one_rollout_or_deployment() -> None:
    shop = service(rollout="shop").services["shop"]
    assert shop.namespace == "default" and shop.container is None
    both = "names exactly one of `rollout` (an Argo Rollout) or `deployment`"
    assert both in refusal(rollout="shop", deployment="shop")
    assert both in refusal()
    assert "`rollout:` service" in refusal(rollout="shop", steps=[50, 100])
    assert "spec.replicas" in refusal(rollout="shop", replicas=3)
    assert "services.shop.project: is not a known setting" in refusal(rollout="a", project="x")
    assert "not a Kubernetes namespace name" in refusal(rollout="a", namespace="Shop_1")
    cart = service(deployment="cart", replicas=4, steps=[25, 100]).services["shop"]
    assert cart.what == "Deployment default/cart"


def test_the_cluster_is_found_as_the_contract_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = tmp_path / "given"
    assert kubeconfig_source(given) == given
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "env"))
    assert kubeconfig_source(None) == tmp_path / "env"
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kubeconfig_source(None) == tmp_path / ".kube" / "config"


def test_a_container_is_named_when_the_template_has_several() -> None:
    template = {"spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "log"}]}}
    with pytest.raises(Exception) as e:
        pods.pick(template, None, "Rollout shop/shop")
    assert "has 2 containers (app, log); say which one" in str(e.value)
    assert pods.pick(template, "log", "x")[0] == 1
    assert pods.repository("reg:5000/acme/shop:1.0") == "reg:5000/acme/shop"
    assert pods.tag("reg:5000/acme/shop") == "latest" and pods.tag("shop:2@sha256:ab") == "2"


def test_the_approval_points_are_the_indefinite_pauses() -> None:
    steps = [
        {"setWeight": 10},
        {"pause": {"duration": "30s"}},
        {"setWeight": 30},
        {"pause": {}},
        {"analysis": {}},
        {"setWeight": 60},
        {"pause": {}},
    ]
    rollout = {"spec": {"strategy": {"canary": {"steps": steps}}}}
    assert argo.percents(rollout) == [30, 60, 100]
    assert [p.index for p in argo.pause_points(rollout)] == [3, 6]


def test_a_refusal_names_the_verb_and_the_object_and_never_a_token() -> None:
    call = Call("patch", ROLLOUT, "shop", "shop", "status")
    body = '{"kind":"Status","message":"rollouts.argoproj.io \\"shop\\" is forbidden"}'
    error = from_status(403, body, call, "10.0.0.1:6443")
    assert error.message.startswith("opsloop may not patch Rollout shop/shop (403 Forbidden)")
    assert "`patch` on `rollouts/status`" in error.message
    missing = from_status(404, '{"message":"rollouts.argoproj.io \\"shop\\" not found"}', call, "")
    assert missing.message == "Rollout shop/shop was not found (404)"
    unserved = from_status(
        404, '{"message":"the server could not find the requested resource"}', call, ""
    )
    assert "is Argo Rollouts installed?" in unserved.message
    assert "credentials" in from_status(401, "", call, "10.0.0.1:6443").message


YAML = """
services:
  shop: {deployer: kubernetes, namespace: shop, rollout: shop}
  cart: {deployer: kubernetes, namespace: shop, deployment: cart, replicas: 2}
"""


async def test_opsloop_check_says_whether_the_cluster_answers_and_may_change_each_object(
    redis_url: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "opsloop.yml"
    config_file.write_text(YAML, encoding="utf-8")
    async with running_cluster(tmp_path) as kube:
        kube.emu.add_rollout("shop", "shop", image="reg.example.com/shop:1")
        kube.emu.add_deployment("shop", "cart", image="reg.example.com/cart:1")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
        env.update(
            PYTHONPATH=str(REPO),
            OPSLOOP_REDIS_URL=redis_url,
            OPSLOOP_CONFIG_FILE=str(config_file),
            OPSLOOP_KUBECONFIG=str(kube.kubeconfig),
        )

        async def check() -> tuple[int, str]:
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "bot", "check"],
                env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            [line] = [x for x in done.stdout.splitlines() if "kubernetes" in x]
            return done.returncode, line

        _, line = await check()
        assert line.startswith("ok") and "answers" in line, line
        assert "Rollout shop/shop, Deployment shop/cart: found, may be changed" in line
        reviews = kube.emu.requests_to("*/selfsubjectaccessreviews", "POST")
        assert len(reviews) == 11

        kube.emu.deny(verb="patch", resource="rollouts/status", namespace="shop")
        code, line = await check()
        assert code != 0 and line.startswith("FAIL"), line
        assert "may not patch rollouts/status shop/shop" in line and "cart" not in line

        env["OPSLOOP_KUBECONFIG"] = str(tmp_path / "missing")
        code, line = await check()
        assert code != 0 and "no kubeconfig at" in line, line
