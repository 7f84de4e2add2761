"""`/deploy shop 2` and `/deploy cart 2` in `opsloop sandbox`: its emulated Kubernetes.

The sandbox runs as a newcomer starts it (no YAML file, no Docker); the tests act as the sample
people through the page's own routes (tests/test_sandbox_deploys.py's `Page`), or click in a real
browser, and read the cluster back with the kubeconfig the sandbox printed, as a person would
with kubectl.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import ssl
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.browser import open_page
from tests.kube_cluster import running_cluster
from tests.servers import missing
from tests.test_kubernetes_argo import YAML as OWN_YAML  # the person's opsloop.yml: shop
from tests.test_sandbox_deploys import (
    ALICE,
    BOB,
    NO_DOCKER,
    Page,
    Sandbox,
    action_ids,
    block_text,
    sandbox,
)

pytestmark = pytest.mark.timeout(90)

Json = dict[str, Any]


class Cluster:
    """The sandbox's cluster, read through the kubeconfig it wrote (its CA, its token)."""

    def __init__(self, kubeconfig: str) -> None:
        config = yaml.safe_load(Path(kubeconfig).read_text(encoding="utf-8"))
        cluster = config["clusters"][0]["cluster"]
        self.server = cluster["server"]
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode("ascii")
        self.ssl = ssl.create_default_context(cadata=ca)
        self.token = config["users"][0]["user"]["token"]

    async def get(self, http: aiohttp.ClientSession, path: str) -> Json | None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with http.get(self.server + path, headers=headers, ssl=self.ssl) as resp:
            if resp.status == 404:
                return None
            assert resp.status == 200, await resp.text()
            found: Json = await resp.json()
            return found

    async def rollout(self, http: aiohttp.ClientSession) -> Json:
        found = await self.get(http, "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/shop")
        assert found is not None
        return found

    async def deployment(self, http: aiohttp.ClientSession, name: str) -> Json | None:
        return await self.get(http, f"/apis/apps/v1/namespaces/shop/deployments/{name}")


async def first_pause(page: Page, service: str) -> Json:
    """`/deploy <service> 2` by Alice, until its message asks for approval to go to 50%."""
    await page.command(ALICE, f"{service} 2")
    return await page.deploy_message(
        "2", says="waiting for approval to go to 50%", button="deploy_approve"
    )


async def shows(page: Page, words: str, seconds: float = 20) -> Json:
    """The one deploy message in #deploys once its blocks show `words`."""
    deadline = time.monotonic() + seconds
    shown = ""
    while time.monotonic() < deadline:
        [message] = (await page.state())["messages"]["C0DEPLOYS"]
        if words in (shown := block_text(message)):
            return dict(message)
        await asyncio.sleep(0.1)
    pytest.fail(f"the deploy message never showed {words!r}:\n{shown}")


def image(obj: Json) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def kubectl(box: Sandbox, home: Path, *args: str) -> str:
    """kubectl as the README says to run it: `--kubeconfig <the path the sandbox printed>`."""
    found = shutil.which("kubectl")
    if found is None:
        missing("no kubectl on PATH (the Google Cloud CLI's kubectl package, not Debian's)")
        raise AssertionError("unreachable")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    ran = subprocess.run(
        [found, "--kubeconfig", box.kubeconfig, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


async def test_the_sandbox_says_where_its_cluster_is_and_kubectl_reads_it(tmp_path: Path) -> None:
    with sandbox(tmp_path, NO_DOCKER) as box:
        lines = box.start_lines()
        line = next(s for s in lines if "on the emulated Kubernetes" in s)
        assert "Argo Rollout shop/shop" in line and "canary cart-canary" in line, line
        assert "try /deploy shop 2 and /deploy cart 2" in line, line
        # The kubeconfig is the sandbox's own, beside its Redis, readable by its owner only.
        assert Path(box.kubeconfig) == tmp_path / "data" / "sandbox" / "kubeconfig"
        assert stat.S_IMODE(os.stat(box.kubeconfig).st_mode) == 0o600
        assert any(f"kubectl --kubeconfig {box.kubeconfig} get rollouts -n shop" in s
                   for s in box.output)  # fmt: skip

        home = tmp_path / "home"
        home.mkdir()
        rollouts = kubectl(box, home, "get", "rollouts", "-n", "shop")
        assert rollouts.split("\n")[1].split()[:5] == ["shop", "5", "5", "5", "5"], rollouts
        shown = kubectl(box, home, "get", "deployment", "cart", "-n", "shop", "-o", "yaml")
        assert "image: registry.example.com/acme/cart:1" in shown, shown
        assert not (home / ".kube" / "config").exists()  # never the person's ~/.kube


async def test_a_yaml_file_and_a_kubeconfig_of_ones_own_reach_that_cluster(
    tmp_path: Path,
) -> None:
    """With the person's opsloop.yml and OPSLOOP_KUBECONFIG, `/deploy shop 2` patches their
    cluster (here a second emulator), and the sandbox starts no cluster of its own."""
    (tmp_path / "opsloop.yml").write_text(OWN_YAML, encoding="utf-8")
    async with running_cluster(tmp_path / "theirs") as theirs:
        theirs.emu.add_rollout("shop", "shop", image="reg.example.com/shop:1", replicas=4)
        settings = {"OPSLOOP_KUBECONFIG": str(theirs.kubeconfig)}
        with sandbox(tmp_path, NO_DOCKER, **settings) as box:
            assert box.kubeconfig == "", box.output
            [line] = box.start_lines()
            assert "shop (Kubernetes Rollout shop/shop; steps the Rollout's own)" in line, line
            assert not any("emulated Kubernetes" in line for line in box.output), box.output
            assert not (tmp_path / "data" / "sandbox" / "kubeconfig").exists()
            async with aiohttp.ClientSession() as http:
                page = Page(http, box)
                assert (await page.info())["examples"] == ["/deploy status"]
                await page.command(ALICE, "shop 2")
                await page.deploy_message("2", says="waiting for approval to go to 50%")
            rollout = theirs.emu.object("Rollout", "shop", "shop")
            assert image(rollout) == "reg.example.com/shop:2"


@pytest.mark.slow  # about 15 s: two pauses, then Argo's timed pause of 5 s
async def test_deploy_shop_walks_the_rollout_through_its_pauses(tmp_path: Path) -> None:
    """Alice deploys shop 2: Argo pauses at 20%; Bob's Approve sends Argo's promote, to the
    pause at 50%, and again, through 80% and its timed pause, to Healthy."""
    with sandbox(tmp_path, NO_DOCKER) as box:
        cluster = Cluster(box.kubeconfig)
        async with aiohttp.ClientSession() as http:
            page = Page(http, box)
            asking = await first_pause(page, "shop")
            shown = block_text(asking)
            assert "20% (step 1 of 3)" in shown, shown
            assert "Argo Rollout `shop/shop`: *Paused*" in shown, shown
            assert "approval point 1 of 2" in shown and "canary weight 20%" in shown, shown
            assert "pods: 5 ready of 5 (1 of `2`)" in shown, shown
            rollout = await cluster.rollout(http)
            assert image(rollout) == "registry.example.com/acme/shop:2"

            # Alice started it, so she may not approve it: four-eyes.
            await page.click(ALICE, asking, "deploy_approve")
            await page.ephemeral(ALICE, "may not approve")
            await page.click(BOB, asking, "deploy_approve")
            asking = await page.deploy_message(
                "2", says="waiting for approval to go to 100%", button="deploy_approve"
            )
            shown = block_text(asking)
            assert "50% (step 2 of 3)" in shown, shown
            assert "approval point 2 of 2" in shown and "canary weight 50%" in shown, shown
            assert "(3 of `2`)" in shown, shown  # Argo's rounding: 50% of 5 is 3 pods

            await page.click(BOB, asking, "deploy_approve")
            # Argo's own timed pause at 80% shows in the message, with no Approve to click.
            timed = await shows(page, "canary weight 80%")
            assert "deploy_approve" not in action_ids(timed)
            done = await page.deploy_message("2", says="complete", seconds=40)
            shown = block_text(done)
            assert "*Healthy*" in shown and "pods: 5 ready of 5 (5 of `2`)" in shown, shown
            assert "deploy_approve" not in action_ids(done)
            assert len([m for m in (await page.state())["messages"]["C0DEPLOYS"]
                        if "shop" in block_text(m)]) == 1  # fmt: skip
            status = (await cluster.rollout(http))["status"]
            assert status["phase"] == "Healthy" and status["stableRS"] == status["currentPodHash"]


async def test_deploy_cart_runs_its_canary_deployment(tmp_path: Path) -> None:
    """Alice deploys cart 2: Deployment cart-canary runs 1 of 4 pods; two approvals by Bob
    complete it: cart runs `2` on 4 pods and the canary is gone."""
    with sandbox(tmp_path, NO_DOCKER) as box:
        cluster = Cluster(box.kubeconfig)
        async with aiohttp.ClientSession() as http:
            page = Page(http, box)
            asking = await first_pause(page, "cart")
            shown = block_text(asking)
            assert "25% (step 1 of 3)" in shown and "cart-canary" in shown, shown
            canary = await cluster.deployment(http, "cart-canary")
            stable = await cluster.deployment(http, "cart")
            assert canary is not None and stable is not None
            assert image(canary) == "registry.example.com/acme/cart:2"
            assert (canary["spec"]["replicas"], stable["spec"]["replicas"]) == (1, 3)

            await page.click(BOB, asking, "deploy_approve")
            asking = await page.deploy_message(
                "2", says="waiting for approval to go to 100%", button="deploy_approve"
            )
            assert "50% (step 2 of 3)" in block_text(asking)
            await page.click(BOB, asking, "deploy_approve")
            await page.deploy_message("2", says="complete", seconds=40)
            stable = await cluster.deployment(http, "cart")
            assert stable is not None and image(stable) == "registry.example.com/acme/cart:2"
            assert stable["status"]["availableReplicas"] == 4
            assert await cluster.deployment(http, "cart-canary") is None


@pytest.mark.browser
@pytest.mark.slow  # about 20 s: the shop tour, then cart's canary
async def test_the_page_approves_a_rollout_and_shows_a_canary_deployment(tmp_path: Path) -> None:
    """In a real browser: the `/deploy shop 2` chip as Alice, Approve twice as Bob, one message
    to Healthy; then `/deploy cart 2` shows Deployment cart-canary in its message."""
    with sandbox(tmp_path, NO_DOCKER) as box:
        async with open_page(box.url + "/") as (page, errors):
            shot = os.environ.get("OPSLOOP_TEST_SCREENSHOT")  # to look at them: a .png path
            box_input = page.get_by_test_id("command-input")
            picker = page.get_by_test_id("user-picker")
            await page.get_by_test_id("channel-C0DEPLOYS").click()
            await picker.select_option(ALICE)
            examples = page.locator("#command-examples")
            chip = examples.get_by_role("button", name="/deploy shop 2", exact=True)
            await chip.wait_for(timeout=10_000)
            await chip.click()
            await box_input.press("Enter")

            deploy = page.get_by_test_id("message").filter(has_text="Argo Rollout")
            approve = deploy.get_by_test_id("button").filter(has_text="Approve")
            await deploy.filter(has_text="approval point 1 of 2").wait_for(timeout=20_000)
            text = await deploy.inner_text()
            assert "step 1 of 3" in text and "canary weight 20%" in text, text
            assert "ready of 5" in text, text
            if shot:
                await page.screenshot(path=shot.replace(".png", "-shop.png"))

            await picker.select_option(BOB)
            await approve.click()
            await deploy.filter(has_text="approval point 2 of 2").wait_for(timeout=20_000)
            assert "canary weight 50%" in await deploy.inner_text()
            await approve.click()
            await (
                deploy.filter(has_text="Healthy")
                .filter(has_text="complete")
                .wait_for(timeout=30_000)
            )
            assert await approve.count() == 0
            assert await deploy.count() == 1  # the same message, edited in place

            await picker.select_option(ALICE)
            await box_input.fill("/deploy cart 2")
            await box_input.press("Enter")
            cart = page.get_by_test_id("message").filter(has_text="cart-canary")
            await cart.filter(has_text="step 1 of 3").wait_for(timeout=20_000)
            approve = cart.get_by_test_id("button").filter(has_text="Approve")
            await approve.wait_for(timeout=5_000)
            if shot:
                await page.screenshot(path=shot.replace(".png", "-cart.png"))
            await picker.select_option(BOB)
            await approve.click()
            await cart.filter(has_text="step 2 of 3").wait_for(timeout=20_000)
            await approve.click()
            done = page.get_by_test_id("message").filter(has_text="Deploy cart")
            await done.filter(has_text="complete").wait_for(timeout=30_000)
            assert "cart-canary" not in await done.inner_text()  # removed at completion
            assert not errors, errors
