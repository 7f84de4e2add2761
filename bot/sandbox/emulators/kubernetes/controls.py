"""The switches tests pull: failures, delays, holds, refusals, and the requests recorded."""

from __future__ import annotations

from fnmatch import fnmatchcase

from .cluster import Cluster
from .faults import Failure, Hold, Switches
from .models import Denial, RecordedRequest


class Controls(Cluster):
    def __init__(self, *, ready_seconds: float, time_scale: float) -> None:
        super().__init__(ready_seconds=ready_seconds, time_scale=time_scale)
        self.requests: list[RecordedRequest] = []
        # Requests kept (the latest); None keeps all. Tests see far fewer than this.
        self.max_requests: int | None = 10_000
        self.switches = Switches()
        self.denials: list[Denial] = []

    # -- failures and delays --------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        times: int | None = None,
        path: str | None = None,
        method: str | None = None,
        retry_after: int = 1,
    ) -> None:
        """Answer `status` (429, 500, 503...) as a Kubernetes Status to matching requests,
        `times` times (None: until `heal()`). `path` is a glob (`*/rollouts/shop/status`);
        429 and 503 carry `Retry-After: retry_after`. The request is not carried out."""
        self.switches.failures.append(Failure(status, times, path, method, retry_after))

    def heal(self) -> None:
        """Ends every failure switch (delays and holds stay)."""
        self.switches.failures.clear()

    @property
    def delay(self) -> float:
        """Seconds before every answer; lowering it releases requests already waiting."""
        return self.switches.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self.switches.delay = seconds

    def hold(self, path: str | None, seconds: float, *, method: str | None = None) -> Hold:
        """Hold matching requests for `seconds` before doing them; the Hold returned can be
        changed while requests wait (`hold.seconds = 0` lets them go)."""
        hold = Hold(seconds, path, method)
        self.switches.holds.append(hold)
        return hold

    def release_holds(self) -> None:
        self.switches.holds.clear()

    # -- access ---------------------------------------------------------------------------

    def deny(
        self,
        *,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        group: str | None = None,
    ) -> None:
        """Refuse matching requests (403 Forbidden) and access reviews (allowed: false);
        None matches anything. `resource` is `deployments` or `rollouts/status`."""
        self.denials.append(Denial(verb, resource, namespace, name, group))

    def allow_all(self) -> None:
        self.denials.clear()

    def denied(
        self, verb: str, group: str, resource: str, subresource: str, namespace: str, name: str
    ) -> bool:
        return any(
            d.matches(verb, group, resource, subresource, namespace, name) for d in self.denials
        )

    # -- what arrived ---------------------------------------------------------------------

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path matches a glob or whole path (and method)."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and fnmatchcase(r.path, path)
        ]
