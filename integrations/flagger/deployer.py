"""A service whose canary Flagger runs: opsloop only answers Flagger's webhook gates.

Flagger, not opsloop, changes the cluster. A request opens when Flagger calls a `confirm-*`
webhook with a new checksum (bot/deploys/flagger_gate.py); from then on it is a rollout of one
step, approved and rejected through the same rules as any other. So this deployer's steps are
the gate's: applying the step changes nothing outside (the approved rollout is what makes the
route answer 200), nor does reverting it (the rejected rollout makes the `rollback` webhook
answer 200). What runs is Flagger's to say, through its events, which the message shows.

`/deploy <service> <version>` hands the version over (bot/deploys/ports.py `HandsOver`): with
the service's `image` and a cluster, it sets the image of the Canary's target (target.py), and
Flagger starts the canary; without either, it says how a person starts one, naming what is
missing. Who asked is recorded by the deploy flow, so that Flagger's next request is theirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from bot.deploys.ports import (
    IMAGE_TAG,
    Deployer,
    DeployerFactory,
    RolloutView,
    ServiceSettings,
    Snapshot,
)
from bot.errors import UserError
from integrations.flagger.config import FlaggerService

if TYPE_CHECKING:
    from integrations.kubernetes.client import KubeClient

KIND = "flagger"


class FlaggerDeployer:
    """The gate of one Flagger Canary."""

    kind = KIND

    def __init__(
        self, name: str, service: ServiceSettings, client: KubeClient | None = None
    ) -> None:
        """`client`: the cluster, when one is configured; None: /deploy says how instead."""
        if not isinstance(service, FlaggerService):
            raise ValueError("a flagger service needs a canary")
        self.name = name
        self.service = service
        self.client = client

    @staticmethod
    def validate_version(version: str) -> None:
        """A version is the tag of the image Flagger's target Deployment would run."""
        IMAGE_TAG.check(version)

    async def hand_over(self, version: str) -> str:
        """Set the image of the Canary's target to `<image>:<version>` (idempotent); without
        `image` or a cluster, a UserError saying how to start the canary by hand."""
        from integrations.flagger.target import set_target_image

        self.validate_version(version)
        s = self.service
        if s.image is None:
            self._how_to(version, "the service has no `image:` (the repository /deploy sets)")
        if self.client is None:
            self._how_to(version, f"no Kubernetes cluster is configured ({NO_CLUSTER})")
        done = await set_target_image(self.client, s.namespace, s.canary, s.image, version)
        return (
            f"{done} The approval request will appear in <#{s.channel}> when Flagger calls "
            "its gate."
        )

    def _how_to(self, version: str, missing: str) -> NoReturn:
        s = self.service
        image = f"{s.image}:{version}" if s.image else f"<image>:{version}"
        raise UserError(
            f"{self.name} is a Flagger canary ({s.namespace}/{s.canary}): Flagger starts it "
            f"when the image of the Canary's target Deployment changes, and opsloop cannot set "
            f"that image: {missing}.",
            f"Push it yourself, e.g. `kubectl -n {s.namespace} set image deployment/<target> "
            f"<container>={image}`; opsloop asks for approval here when Flagger calls its gate.",
        )

    async def running_versions(self) -> dict[str, int] | None:
        return None  # Flagger says, through its events, what the canary does

    def planned(self, rollout: RolloutView, step: int) -> dict[str, int] | None:
        return None

    async def prepare(self, rollout: RolloutView) -> dict[str, Any]:
        return {}

    async def apply(self, rollout: RolloutView, step: int) -> None:
        """Nothing to change: the approved rollout itself opens Flagger's gate."""

    async def revert(self, rollout: RolloutView) -> None:
        """Nothing to change: the rejected rollout itself answers Flagger's rollback webhook."""

    async def retry(self, rollout: RolloutView) -> None:
        """Nothing that could have failed."""

    async def snapshot(self, rollout: RolloutView | None) -> Snapshot:
        return Snapshot()


# Where opsloop looks for a cluster, as integrations/kubernetes/client.py `kubeconfig_source`.
NO_CLUSTER = (
    "set OPSLOOP_KUBECONFIG; none of it, a pod's service account, KUBECONFIG or ~/.kube/config "
    "was found"
)


def flagger_deployers(client: KubeClient | None = None) -> DeployerFactory:
    """Makes the gate of each Flagger service; `client` sets its target's image."""

    def make(name: str, service: ServiceSettings, step_timeout: float) -> Deployer:
        return FlaggerDeployer(name, service, client)

    return make
