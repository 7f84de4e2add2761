"""Kubernetes as the wiring sees it: used when a service says `deployer: kubernetes`; its
deployers reach the cluster that OPSLOOP_KUBECONFIG (and OPSLOOP_KUBE_CONTEXT) names, else the
pod's service account, else KUBECONFIG, else ~/.kube/config. kubernetes-asyncio is loaded by
the first call to the cluster, never by importing this module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config_file import OpsConfig
from bot.deploys.ports import IMAGE_TAG, Deployer, DeployerFactory, ServiceSettings
from bot.plugins import DeployerKind, Plugin, Provided
from bot.settings import Settings
from integrations.kubernetes.config import KubernetesService

if TYPE_CHECKING:
    from integrations.kubernetes.client import KubeClient

KIND = "kubernetes"
CHECK_TIMEOUT = 4.0  # seconds one call of `opsloop check` may take


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return any(s.deployer == KIND for s in config.services.values())


def _services(config: OpsConfig) -> list[KubernetesService]:
    return [s for s in config.services.values() if isinstance(s, KubernetesService)]


def _start(settings: Settings, config: OpsConfig) -> Provided:
    from integrations.kubernetes.access import check_access
    from integrations.kubernetes.client import KubeClient

    client = KubeClient(settings.kubeconfig, settings.kube_context)

    def make(name: str, service: ServiceSettings, step_timeout: float) -> Deployer:
        return kubernetes_deployer(
            name, service, client, step_timeout, settings.deploy_poll_seconds
        )

    async def check() -> str:
        probe = KubeClient(
            settings.kubeconfig, settings.kube_context, timeout=CHECK_TIMEOUT, budget=CHECK_TIMEOUT
        )
        try:
            return await check_access(probe, _services(config))
        finally:
            await probe.close()

    factory: DeployerFactory = make
    return Provided(
        status="Kubernetes used by a service",
        check=check,
        deployers={KIND: factory},
        close=client.close,
    )


def kubernetes_deployer(
    name: str, service: ServiceSettings, client: KubeClient, step_timeout: float, poll: float
) -> Deployer:
    """The deployer of one `deployer: kubernetes` service: its Rollout's or its Deployment's."""
    from integrations.kubernetes.deployments import DeploymentDeployer
    from integrations.kubernetes.rollouts import ArgoDeployer

    if not isinstance(service, KubernetesService):
        raise ValueError("a kubernetes service needs a rollout or a deployment")
    if service.rollout is not None:
        return ArgoDeployer(service, client, step_timeout, poll)
    return DeploymentDeployer(service, client, step_timeout, poll)


PLUGIN = Plugin(
    name="kubernetes",
    configured=_configured,
    start=_start,
    status_when_off="Kubernetes not used",
    deployers=(
        DeployerKind(
            name=KIND,
            model=KubernetesService,
            versions=IMAGE_TAG,
            not_configured="{service} deploys to Kubernetes, which is not configured.",
        ),
    ),
)
