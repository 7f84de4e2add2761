"""A service whose canary Flagger runs: opsloop only answers Flagger's webhook gates.

Flagger, not opsloop, changes the cluster. A request opens when Flagger calls a `confirm-*`
webhook with a new checksum (bot/deploys/flagger_gate.py); from then on it is a rollout of one
step, approved and rejected through the same rules as any other. So this deployer's steps are
the gate's: applying the step changes nothing outside (the approved rollout is what makes the
route answer 200), nor does reverting it (the rejected rollout makes the `rollback` webhook
answer 200). What runs is Flagger's to say, through its events, which the message shows.

`/deploy <service> <version>` hands the version over (bot/deploys/ports.py `HandsOver`): until
opsloop has a Kubernetes client, it says how a Flagger canary starts. Setting the image of the
Canary's target Deployment through that client belongs in `hand_over`, and nowhere else.
"""

from __future__ import annotations

from typing import Any

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

KIND = "flagger"


class FlaggerDeployer:
    """The gate of one Flagger Canary."""

    kind = KIND

    def __init__(self, name: str, service: ServiceSettings) -> None:
        if not isinstance(service, FlaggerService):
            raise ValueError("a flagger service needs a canary")
        self.name = name
        self.service = service

    @staticmethod
    def validate_version(version: str) -> None:
        """A version is the tag of the image Flagger's target Deployment would run."""
        IMAGE_TAG.check(version)

    async def hand_over(self, version: str) -> str:
        """Start a canary of `version`: not yet possible from opsloop, so say how."""
        self.validate_version(version)
        s = self.service
        image = f"{s.image}:{version}" if s.image else f"<image>:{version}"
        raise UserError(
            f"{self.name} is a Flagger canary ({s.namespace}/{s.canary}): Flagger starts it "
            "when the image of the Canary's target Deployment changes, and opsloop cannot set "
            "that image yet.",
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


def flagger_deployers() -> DeployerFactory:
    """Makes the gate of each Flagger service."""

    def make(name: str, service: ServiceSettings, step_timeout: float) -> Deployer:
        return FlaggerDeployer(name, service)

    return make
