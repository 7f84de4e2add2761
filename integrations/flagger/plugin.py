"""Flagger as the wiring sees it: used when a service says `deployer: flagger`; its deployers
are the gates Flagger's webhooks call at `POST /hooks/flagger`, which answers only while
OPSLOOP_FLAGGER_WEBHOOK_TOKEN is set.

When a Flagger service has `image` and a cluster is found where the Kubernetes plugin looks
(OPSLOOP_KUBECONFIG and OPSLOOP_KUBE_CONTEXT, else the pod's service account, KUBECONFIG,
~/.kube/config), this plugin makes its own `KubeClient` (integrations/kubernetes/client.py),
which `/deploy` uses to set the Canary target's image. Its own, not the Kubernetes plugin's:
the gate works with no cluster at all, so the Flagger kind cannot depend on the Kubernetes
plugin being configured (its `opsloop check` would then fail for a gate-only setup), and the
client connects on first use, so a second one costs nothing until `/deploy` runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config_file import OpsConfig
from bot.deploys.ports import IMAGE_TAG
from bot.plugins import DeployerKind, Plugin, Provided
from bot.settings import Settings
from integrations.flagger.config import FlaggerService
from integrations.flagger.deployer import KIND, flagger_deployers

if TYPE_CHECKING:
    from integrations.kubernetes.client import KubeClient

CHECK_TIMEOUT = 4.0  # seconds one call of `opsloop check` may take
_NO_TOKEN = (
    "OPSLOOP_FLAGGER_WEBHOOK_TOKEN is not set, so /hooks/flagger answers 404 and Flagger's "
    "gates stay closed"
)


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return any(s.deployer == KIND for s in config.services.values())


def _start(settings: Settings, config: OpsConfig) -> Provided:
    canaries = sorted(
        f"{s.namespace}/{s.canary}"
        for s in config.services.values()
        if isinstance(s, FlaggerService)
    )
    token_set = bool(settings.secret("flagger_webhook_token"))
    client = _cluster(settings, config)

    async def check() -> str:
        # Flagger calls opsloop: the token; and, where /deploy sets images, their targets.
        if not token_set:
            raise RuntimeError(_NO_TOKEN)
        said = f"webhook token set; gates for {', '.join(canaries)} at /hooks/flagger"
        if client is not None:  # /deploy sets targets' images: may it?
            said += "; " + await _check_targets(settings, config)
        return said

    status = "Flagger gate on" if token_set else "Flagger gate off (no webhook token)"
    close = client.close if client is not None else _nothing
    return Provided(
        status=status, check=check, deployers={KIND: flagger_deployers(client)}, close=close
    )


def _cluster(settings: Settings, config: OpsConfig) -> KubeClient | None:
    """A client of the cluster, when a service has `image` (so /deploy sets it) and a cluster
    is configured: OPSLOOP_KUBECONFIG named, a pod's service account, or a kubeconfig found."""
    if not any(isinstance(s, FlaggerService) and s.image for s in config.services.values()):
        return None
    from integrations.kubernetes.client import KubeClient, kubeconfig_source

    source = kubeconfig_source(settings.kubeconfig)
    if settings.kubeconfig is None and source is not None and not source.is_file():
        return None  # nothing names a cluster: /deploy says how to start a canary by hand
    return KubeClient(settings.kubeconfig, settings.kube_context)


async def _check_targets(settings: Settings, config: OpsConfig) -> str:
    """Each Canary with `image` exists, and opsloop may patch its target; raises otherwise."""
    from integrations.flagger.target import target_of
    from integrations.kubernetes.client import KubeClient

    probe = KubeClient(
        settings.kubeconfig, settings.kube_context, timeout=CHECK_TIMEOUT, budget=CHECK_TIMEOUT
    )
    targets = []
    try:
        for s in config.services.values():
            if not (isinstance(s, FlaggerService) and s.image):
                continue
            kind, name = await target_of(probe, s.namespace, s.canary)
            what = f"{kind.name} {s.namespace}/{name}"
            if not await probe.may("patch", kind, s.namespace, name):
                raise RuntimeError(
                    f"opsloop may not patch {what}, the target of Canary "
                    f"{s.namespace}/{s.canary}: grant `patch` on `{kind.plural}` "
                    "(README: Flagger)"
                )
            targets.append(what)
    finally:
        await probe.close()
    return f"/deploy sets the image of {', '.join(targets)}"


async def _nothing() -> None:
    return None


PLUGIN = Plugin(
    name="flagger",
    configured=_configured,
    start=_start,
    status_when_off="Flagger not used",
    deployers=(
        DeployerKind(
            name=KIND,
            model=FlaggerService,
            versions=IMAGE_TAG,
            not_configured="{service} is a Flagger canary, which this opsloop cannot gate.",
        ),
    ),
)
