"""The sandbox's Kubernetes: the emulator (bot/sandbox/emulators/kubernetes) with two services.

It needs nothing from the machine, so the sandbox always has it. Namespace `shop` holds:

- Rollout `shop` (Argo Rollouts, 5 pods): 20%, pause, 50%, pause, 80%, a timed pause, then 100%.
  Argo runs the steps; opsloop asks for approval at each indefinite pause and sends Argo's
  promote when Bob approves, so `/deploy shop 2` asks twice, then waits out the timed pause.
- Deployment `cart` (4 pods), no canary controller: opsloop runs the canary as Deployment
  `cart-canary` with the same pod labels, so a Service selecting `app: cart` (the emulator
  keeps no Services) would spread traffic by replica count: 25%, 50%, then 100%.

The kubeconfig goes into the sandbox's own state directory, never ~/.kube, so
`kubectl --kubeconfig <it> get rollouts -n shop` looks at the same cluster the bot does.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config_file import CanaryStep, OpsConfig
from bot.errors import SettingsError
from bot.sandbox.emulators.kubernetes import KubernetesEmulator
from integrations.kubernetes.config import KubernetesService

NAMESPACE = "shop"
SHOP, CART = "shop", "cart"
SHOP_IMAGE = "registry.example.com/acme/shop"
CART_IMAGE = "registry.example.com/acme/cart"
TOKEN = "sandbox-kubernetes-token-not-a-secret"
CONTEXT = "opsloop-sandbox"
KUBECONFIG_NAME = "kubeconfig"
# Long enough that each step's pods are seen coming up in the page, short enough for a tour.
READY_SECONDS = 1.5
# The emulator's factor on the durations objects state: 1, so the timed pause below lasts
# what the Rollout says, as `kubectl get rollout shop -o yaml` shows it.
TIME_SCALE = 1.0
TIMED_PAUSE = "5s"
SHOP_STEPS: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 80},
    {"pause": {"duration": TIMED_PAUSE}},
]
SHOP_REPLICAS, CART_REPLICAS = 5, 4
EXAMPLES = ["/deploy shop 2", "/deploy cart 2"]


def shop_service(channel: str) -> KubernetesService:
    """`shop`: the Argo Rollout shop/shop; its steps are the Rollout's own."""
    return KubernetesService(
        deployer="kubernetes",
        namespace=NAMESPACE,
        rollout=SHOP,
        image=SHOP_IMAGE,
        channel=channel,
        approvals=1,
    )


def cart_service(channel: str) -> KubernetesService:
    """`cart`: the plain Deployment shop/cart, its canary Deployment cart-canary."""
    return KubernetesService(
        deployer="kubernetes",
        namespace=NAMESPACE,
        deployment=CART,
        image=CART_IMAGE,
        replicas=CART_REPLICAS,
        steps=[CanaryStep(percent=25), CanaryStep(percent=50), CanaryStep(percent=100)],
        channel=channel,
        approvals=1,
    )


def is_sample(config: OpsConfig) -> bool:
    """`config` has the sandbox's own `shop` and `cart` (not a YAML file's services)."""
    shop, cart = config.services.get(SHOP), config.services.get(CART)
    return (
        isinstance(shop, KubernetesService)
        and (shop.namespace, shop.rollout) == (NAMESPACE, SHOP)
        and isinstance(cart, KubernetesService)
        and (cart.namespace, cart.deployment) == (NAMESPACE, CART)
    )


def deploy_line() -> str:
    """What `/deploy` can do on the emulated Kubernetes, for the sandbox's start-up lines."""
    return (
        f"  deploys: {SHOP} (Argo Rollout {NAMESPACE}/{SHOP}: 20%, 50%, 80% then 100%, "
        f"approved at its pauses) and {CART} (Deployment {NAMESPACE}/{CART}, canary "
        f"{CART}-canary: 25%, 50%, 100%) on the emulated Kubernetes: yes "
        f"(try {' and '.join(EXAMPLES)})"
    )


def arrange(emu: KubernetesEmulator) -> None:
    """Rollout shop and Deployment cart at version 1, all their pods available."""
    emu.add_rollout(
        NAMESPACE, SHOP, image=f"{SHOP_IMAGE}:1", replicas=SHOP_REPLICAS, steps=SHOP_STEPS
    )
    emu.add_deployment(NAMESPACE, CART, image=f"{CART_IMAGE}:1", replicas=CART_REPLICAS)


@dataclass(frozen=True)
class SandboxCluster:
    """The running emulator and the kubeconfig that reaches it."""

    emulator: KubernetesEmulator
    kubeconfig: Path

    @property
    def url(self) -> str:
        return self.emulator.url or ""

    def lines(self) -> list[str]:
        """Where it is and how to look at it, said once at start."""
        return [
            f"  (emulated Kubernetes: {self.url}; try "
            f"kubectl --kubeconfig {self.kubeconfig} get rollouts -n {NAMESPACE})"
        ]


async def start_cluster(stack: AsyncExitStack, state_dir: Path) -> SandboxCluster:
    """Serve the emulator on a free port of 127.0.0.1 (its certificate's address; the bot and
    kubectl run on this machine), stopped with `stack`, and write its kubeconfig to
    `state_dir`; its objects are in place before the bot can ask for them."""
    emulator = KubernetesEmulator(token=TOKEN, ready_seconds=READY_SECONDS, time_scale=TIME_SCALE)
    arrange(emulator)
    await stack.enter_async_context(emulator.serve("127.0.0.1", 0))
    path = (state_dir / KUBECONFIG_NAME).absolute()  # printed: kubectl works from anywhere
    try:
        emulator.kubeconfig(path, context=CONTEXT, namespace=NAMESPACE)
    except OSError as e:
        raise SettingsError(f"OPSLOOP_DATA_DIR: cannot write {path}: {e.strerror}") from None
    return SandboxCluster(emulator, path)
