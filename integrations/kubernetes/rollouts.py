"""An Argo Rollout as a deployer: Argo walks the canary's steps, opsloop approves its pauses.

Step 0 sets the container's image on the Rollout and waits until Argo pauses at the first
indefinite pause (or is Healthy with the new image, when there is none). Step k sends Argo's
promote, only while the Rollout is paused at the pause of step k-1, and waits for the next
pause (or Healthy): run again after a crash, the step finds the Rollout past that pause and
sends nothing, so each approval promotes exactly once. Revert is Argo's abort (or, once the
new version is stable, the old image back, promoted fully); `/deploy promote` after an abort
is Argo's retry, which starts the canary again from its first step (`start_over`).
"""

from __future__ import annotations

import datetime
from typing import Any

from bot.deploys.ports import Change, RolloutView, Snapshot
from bot.errors import IntegrationError
from integrations.kubernetes import argo
from integrations.kubernetes.base import KubeDeployer
from integrations.kubernetes.client import MERGE_PATCH, KubeClient
from integrations.kubernetes.config import KubernetesService
from integrations.kubernetes.errors import ROLLOUT, SYSTEM, NotFound
from integrations.kubernetes.watching import wait_for


class ArgoDeployer(KubeDeployer):
    """A service that is an Argo Rollout (`rollout:`)."""

    def __init__(
        self, service: KubernetesService, client: KubeClient, step_timeout: float, poll: float
    ) -> None:
        super().__init__(service, client, step_timeout, poll)
        assert service.rollout is not None
        self.name = service.rollout

    # -- reading ---------------------------------------------------------------------------

    async def _get(self) -> dict[str, Any]:
        return await self.client.get(ROLLOUT, self.namespace, self.name)

    def _seen(self, obj: dict[str, Any]) -> argo.Seen:
        return argo.read(obj, self.service.container, self.what)

    async def own_steps(self) -> list[int]:
        obj = await self._get()
        if not argo.is_canary(obj):
            raise IntegrationError(
                SYSTEM, f"{self.what} is not a canary Rollout; opsloop approves canary steps only"
            )
        self._seen(obj)  # the container must be known before anything starts
        return argo.percents(obj)

    async def running_versions(self) -> dict[str, int] | None:
        seen = self._seen(await self._get())
        if not seen.fully_promoted:
            return None  # a canary is under way (or aborted): the stable version is Argo's
        return {seen.version: seen.available} if seen.available else {}

    def planned(self, rollout: RolloutView, step: int) -> None:
        return None  # Argo is the controller: opsloop does not restore its pods

    async def prepare(self, rollout: RolloutView) -> dict[str, Any]:
        return {}

    async def snapshot(self, rollout: RolloutView | None) -> Snapshot:
        obj = await self._get()
        detail = f"Argo Rollout `{self.namespace}/{self.name}`: " + argo.describe(
            self._seen(obj), argo.pause_points(obj)
        )
        return Snapshot(heading="Pods", detail=detail)

    # -- the steps -------------------------------------------------------------------------

    async def apply(self, rollout: RolloutView, step: int) -> None:
        obj = await self._get()
        points = argo.pause_points(obj)
        if len(points) + 1 != len(rollout.percents):
            raise IntegrationError(
                SYSTEM,
                f"{self.what}'s steps changed since {rollout.id} started (it had "
                f"{len(rollout.percents) - 1} indefinite pauses, now {len(points)}); roll back "
                "and deploy again",
            )
        seen = self._seen(obj)
        if seen.version != rollout.version:
            if step != 0 and not rollout.first:
                raise self._moved(seen, rollout)
            await self._set_image(ROLLOUT, self.name, rollout.version)
        elif step == 0 and self._stale_abort(obj, seen, rollout):
            await self._status_patch(argo.RETRY)  # an abort of an earlier rollout, not ours
        elif step > 0 and seen.paused_at(points[step - 1].index):
            await self._promote(seen)
        await self._until(rollout, lambda s: self._reached(s, points, step, rollout), step)

    def _reached(
        self, seen: argo.Seen, points: list[argo.PausePoint], step: int, rollout: RolloutView
    ) -> bool | None:
        if seen.version != rollout.version:
            raise self._moved(seen, rollout)
        if not seen.observed or seen.retrying:
            return None
        self._check_failed(seen)
        if seen.healthy:
            return True
        if step >= len(points):  # the last step: Healthy with the new version
            return None
        index = points[step].index
        beyond = seen.step_index is not None and seen.step_index > index and not seen.aborted
        return True if seen.paused_at(index) or beyond else None

    def _check_failed(self, seen: argo.Seen) -> None:
        """Argo gave up, or paused for a reason opsloop did not ask for: the step fails."""
        if seen.aborted:
            words = seen.message or "the Rollout was aborted"
            raise IntegrationError(SYSTEM, f"Argo aborted {self.what}: {words}")
        if seen.phase == "Degraded":
            raise IntegrationError(SYSTEM, f"{self.what} is Degraded: {seen.message}")
        if seen.inconclusive:
            raise IntegrationError(
                SYSTEM,
                f"Argo paused {self.what} because its analysis was inconclusive "
                f"({', '.join(seen.pause_reasons)}), which is not an approval point; "
                "`/deploy promote` goes on past it, `/deploy rollback` aborts",
            )

    async def revert(self, rollout: RolloutView) -> None:
        seen = self._seen(await self._get())
        if seen.version == rollout.version and not seen.fully_promoted:
            if not seen.aborted:
                await self._status_patch(argo.ABORT)
            await self._until(rollout, _aborted, -1)
            return
        if rollout.stable is None:
            raise IntegrationError(SYSTEM, f"{self.what} ran nothing before `{rollout.version}`")
        stable = rollout.stable
        if seen.version == rollout.version:  # complete: the old image back
            await self._set_image(ROLLOUT, self.name, stable)
        # Once Argo has seen the old image, it is asked to skip the pauses on the way back
        # (a rollback needs no approvals); asked earlier, Argo would reset the request.
        await self._until(rollout, lambda s: self._back(s, stable, observed=True), -1)
        if not self._seen(await self._get()).healthy:
            await self._status_patch(argo.PROMOTE_FULL)
        await self._until(rollout, lambda s: self._back(s, stable), -1)

    def _back(self, seen: argo.Seen, stable: str, observed: bool = False) -> bool | None:
        """The stable version back: seen by Argo (`observed`), or fully promoted."""
        if seen.version != stable:
            raise IntegrationError(
                SYSTEM,
                f"{self.what} now runs `{seen.version}`: its image was changed outside opsloop",
            )
        return True if (seen.observed if observed else seen.healthy) else None

    async def retry(self, rollout: RolloutView) -> None:
        seen = self._seen(obj := await self._get())
        if seen.version == rollout.version and seen.inconclusive:
            step_count = len(argo.steps(obj))
            await self._status_patch(argo.past_inconclusive(seen, step_count))

    async def start_over(self, rollout: RolloutView) -> bool:
        obj = await self._get()
        seen = self._seen(obj)
        if seen.version != rollout.version or seen.fully_promoted:
            return False
        if seen.aborted:
            await self._status_patch(argo.RETRY)
            return True
        if rollout.ended_by is not None:  # rolled back, and a retry was sent already
            return True
        points = argo.pause_points(obj)
        before = points[min(rollout.target, len(points)) - 1] if rollout.target >= 1 else None
        # Argo restarted it (a retry this job sent before it died): it is behind the rollout.
        return before is not None and (seen.step_index or 0) < before.index

    # -- following -------------------------------------------------------------------------

    async def next_change(self, rollout: RolloutView, seen: str | None, wait: float) -> Change:
        def judge(obj: dict[str, Any] | None) -> Change | None:
            change = self._change(obj, rollout)
            return change if seen is None or change.seen != seen else None

        waited = await wait_for(
            self.client, ROLLOUT, self.namespace, self.name, judge, within=wait, poll=self.poll
        )
        return waited.result or self._change(waited.last, rollout)

    def _change(self, obj: dict[str, Any] | None, rollout: RolloutView) -> Change:
        if obj is None:
            return Change(seen="gone", failure=f"{self.what} was deleted")
        seen = self._seen(obj)
        failure = None
        live = seen.observed and not seen.retrying and not seen.fully_promoted
        if seen.version == rollout.version and live:
            try:
                self._check_failed(seen)
            except IntegrationError as e:
                failure = None if seen.inconclusive else f"{e.system}: {e.message}"
        return Change(seen=seen.fingerprint(), failure=failure)

    # -- writing ---------------------------------------------------------------------------

    async def _status_patch(
        self, body: dict[str, Any], unified: dict[str, Any] | None = None
    ) -> bool:
        """A merge patch of the status subresource; on 404 (a Rollout without one, Argo
        before v0.10) `unified` (else `body`) on the object itself, as kubectl's plugin does.
        True when the object was patched instead."""
        try:
            await self.client.patch(
                ROLLOUT,
                self.namespace,
                self.name,
                body,
                content_type=MERGE_PATCH,
                subresource="status",
            )
        except NotFound:
            await self.client.patch(
                ROLLOUT, self.namespace, self.name, unified or body, content_type=MERGE_PATCH
            )
            return True
        return False

    async def _promote(self, seen: argo.Seen) -> None:
        """Exactly the patches of `kubectl argo rollouts promote` for a paused Rollout."""
        spec, status, unified = argo.promote_patches(seen)
        if status is not None and await self._status_patch(status, unified):
            return  # the unified patch unpaused the spec as well
        if spec is not None:
            await self.client.patch(
                ROLLOUT, self.namespace, self.name, spec, content_type=MERGE_PATCH
            )

    async def _until(self, rollout: RolloutView, judge: Any, step: int) -> None:
        def check(obj: dict[str, Any] | None) -> bool | None:
            if obj is None:
                raise NotFound(SYSTEM, f"{self.what} was not found (it was deleted)")
            result: bool | None = judge(self._seen(obj))
            return result

        waited = await wait_for(
            self.client, ROLLOUT, self.namespace, self.name, check, within=self.step_timeout,
            poll=self.poll,
        )  # fmt: skip
        if waited.result is None:
            now = (
                argo.describe(self._seen(waited.last), argo.pause_points(waited.last))
                if waited.last
                else "unknown"
            )
            goal = "the rollback" if step < 0 else f"{rollout.percents[step]}%"
            raise IntegrationError(
                SYSTEM,
                f"{self.what} did not reach {goal} within {self.step_timeout:g} s; it is {now}",
                retryable=True,
            )

    def _stale_abort(self, obj: dict[str, Any], seen: argo.Seen, rollout: RolloutView) -> bool:
        """Aborted before this rollout started (an earlier rollout of the same version was
        rejected): that abort is not about this rollout."""
        if not seen.aborted:
            return False
        at = str((obj.get("status") or {}).get("abortedAt") or "")
        try:
            when = datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return False
        return when < rollout.started_at

    def _moved(self, seen: argo.Seen, rollout: RolloutView) -> IntegrationError:
        return IntegrationError(
            SYSTEM,
            f"{self.what} now runs `{seen.version}`, not `{rollout.version}`: its image was "
            "changed outside opsloop",
        )


def _aborted(seen: argo.Seen) -> bool | None:
    """Argo has reconciled the abort: the stable pods serve alone again."""
    return True if seen.aborted and seen.abort_done and seen.available >= seen.replicas else None
