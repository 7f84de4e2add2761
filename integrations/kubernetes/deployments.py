"""A plain Deployment as a deployer: opsloop is the canary controller.

Step k runs the plan `bot.deploys.ports.plan` gives for it (the canary's share of the
service's size, the rest stable), as the canary Deployment `<name>-canary` (canary.py) and the
stable Deployment, each scaled to its count: the canary first, and the stable one only once the
canary's pods are available, so the service never runs fewer pods than asked. A step is done
when every pod of both is available. Completion sets the new image on the stable Deployment at
full size, waits for it, then deletes the canary; revert deletes the canary and restores the
stable count (and image). Every call converges on what the step wants, so it is safe to repeat.

The size is `replicas` from the YAML, else the stable Deployment's (plus a leftover canary's)
count when the rollout starts, recorded on the rollout by `prepare`.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

from bot.deploys.ports import RolloutView, Snapshot, Unit, plan
from bot.errors import IntegrationError
from integrations.kubernetes import canary, pods
from integrations.kubernetes.base import KubeDeployer
from integrations.kubernetes.client import MERGE_PATCH, KubeClient
from integrations.kubernetes.config import KubernetesService
from integrations.kubernetes.errors import DEPLOYMENT, SYSTEM, Conflict, NotFound
from integrations.kubernetes.watching import wait_for

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # what `kubectl rollout restart` sets


class DeploymentDeployer(KubeDeployer):
    """A service that is a Deployment (`deployment:`), canaried by `<name>-canary`."""

    def __init__(
        self, service: KubernetesService, client: KubeClient, step_timeout: float, poll: float
    ) -> None:
        super().__init__(service, client, step_timeout, poll)
        assert service.deployment is not None
        self.stable = service.deployment
        self.canary = canary.canary_name(service.deployment)

    def _label(self, name: str) -> str:
        return f"Deployment {self.namespace}/{name}"

    def _count(self, obj: dict[str, Any]) -> canary.Counted:
        return canary.count(obj, self.service.container, self._label(obj["metadata"]["name"]))

    async def _both(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        stable = await self.client.get(DEPLOYMENT, self.namespace, self.stable)
        return stable, await self.client.find(DEPLOYMENT, self.namespace, self.canary)

    # -- reading ---------------------------------------------------------------------------

    async def running_versions(self) -> dict[str, int]:
        stable, found = await self._both()
        counts: dict[str, int] = {}
        for obj in (stable, found):
            if obj is not None and (n := self._count(obj)).ready:
                counts[n.version] = counts.get(n.version, 0) + n.ready
        return counts

    def _size(self, rollout: RolloutView) -> int:
        size = self.service.replicas or rollout.size
        if size is None:
            raise IntegrationError(SYSTEM, f"{self.what}: the rollout's size was not recorded")
        return size

    def planned(self, rollout: RolloutView, step: int) -> dict[str, int]:
        wanted = plan(rollout, step, self._size(rollout))
        return {version: n for version, n in wanted.items() if n}

    async def prepare(self, rollout: RolloutView) -> dict[str, Any]:
        if self.service.replicas is not None or rollout.size is not None:
            return {}
        stable, found = await self._both()
        size = self._count(stable).wanted + (self._count(found).wanted if found else 0)
        return {"size": max(size, 1)}

    async def snapshot(self, rollout: RolloutView | None) -> Snapshot:
        stable, found = await self._both()
        units = tuple(self._unit(obj) for obj in (stable, found) if obj is not None)
        return Snapshot(units=units, heading="Pods")

    def _unit(self, obj: dict[str, Any]) -> Unit:
        n = self._count(obj)
        words = f"{n.ready} of {n.wanted} pods available"
        if n.failure:
            words += f"; {n.failure}"
        return Unit(
            name=str(obj["metadata"]["name"]),
            version=n.version,
            status=words,
            ok=n.ready >= n.wanted > 0 and not n.failure,
            count=n.ready,
        )

    # -- the steps -------------------------------------------------------------------------

    async def apply(self, rollout: RolloutView, step: int) -> None:
        wanted = plan(rollout, step, self._size(rollout))
        new = wanted.get(rollout.version, 0)
        if rollout.stable is None or set(wanted) == {rollout.version}:
            await self._complete(rollout.version, new)
            return
        await self._run_canary(rollout.version, new)
        await self._scale_stable(rollout.stable, wanted.get(rollout.stable, 0))

    async def revert(self, rollout: RolloutView) -> None:
        if rollout.stable is None:  # a first deploy rolled back: nothing ran before
            await self._scale_stable(None, 0)
        else:  # the stable pods back at full size first, so that nothing is left short
            await self._set_image(DEPLOYMENT, self.stable, rollout.stable)
            await self._scale_stable(rollout.stable, self._size(rollout))
        await self._drop_canary()

    async def retry(self, rollout: RolloutView) -> None:
        """A Deployment that gave up progressing (its deadline passed) starts its pods again,
        as `kubectl rollout restart` does; then applying the step again converges on it."""
        stable, found = await self._both()
        for obj in (stable, found):
            if obj is not None and self._count(obj).failure:
                at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
                body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
                name = str(obj["metadata"]["name"])
                await self.client.patch(
                    DEPLOYMENT, self.namespace, name, body, content_type=MERGE_PATCH
                )

    async def _complete(self, version: str, replicas: int) -> None:
        """The new version on the stable Deployment at full size; then no canary."""
        await self._set_image(DEPLOYMENT, self.stable, version)
        await self._scale_stable(version, replicas)
        await self._drop_canary()

    async def _drop_canary(self) -> None:
        if await self.client.find(DEPLOYMENT, self.namespace, self.canary) is not None:
            await self.client.delete(DEPLOYMENT, self.namespace, self.canary)

    async def _run_canary(self, version: str, replicas: int) -> None:
        found = await self.client.find(DEPLOYMENT, self.namespace, self.canary)
        if found is None:
            stable = await self.client.get(DEPLOYMENT, self.namespace, self.stable)
            template = (stable.get("spec") or {}).get("template") or {}
            index, container = pods.pick(template, self.service.container, self.what)
            image = pods.image_for(self.service.image, str(container.get("image", "")), version)
            body = canary.canary_of(stable, index, image, replicas)
            # Made meanwhile (409: a job run twice)? Then it converges below like any other.
            with contextlib.suppress(Conflict):
                await self.client.create(DEPLOYMENT, self.namespace, body)
        await self._set_image(DEPLOYMENT, self.canary, version)
        await self._scale(self.canary, replicas)
        await self._until(self.canary, version, replicas)

    async def _scale_stable(self, version: str | None, replicas: int) -> None:
        await self._scale(self.stable, replicas)
        await self._until(self.stable, version, replicas)

    # -- writing and waiting ---------------------------------------------------------------

    async def _scale(self, name: str, replicas: int) -> None:
        """Deployment `name` asks for `replicas` pods (nothing sent when it does)."""
        obj = await self.client.get(DEPLOYMENT, self.namespace, name)
        if (obj.get("spec") or {}).get("replicas", 1) == replicas:
            return
        body = {"spec": {"replicas": replicas}}
        await self.client.patch(
            DEPLOYMENT, self.namespace, name, body, content_type=MERGE_PATCH, subresource="scale"
        )

    async def _until(self, name: str, version: str | None, replicas: int) -> None:
        """Wait until Deployment `name` runs exactly `replicas` available pods of `version`
        (None: any); fail at once when Kubernetes says it will not progress."""

        def check(obj: dict[str, Any] | None) -> bool | None:
            if obj is None:
                raise NotFound(SYSTEM, f"{self._label(name)} was not found (it was deleted)")
            n = self._count(obj)
            if n.failure and n.observed:
                raise IntegrationError(
                    SYSTEM, f"{self._label(name)} is not progressing: {n.failure}"
                )
            return True if n.runs(version or n.version, replicas) else None

        waited = await wait_for(
            self.client, DEPLOYMENT, self.namespace, name, check, within=self.step_timeout,
            poll=self.poll,
        )  # fmt: skip
        if waited.result is None:
            now = self._unit(waited.last).status if waited.last else "nothing"
            raise IntegrationError(
                SYSTEM,
                f"{self._label(name)} did not have {replicas} available pods of "
                f"`{version}` within {self.step_timeout:g} s ({now})",
                retryable=True,
            )
