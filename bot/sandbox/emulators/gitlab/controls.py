"""The switches and queries tests and the sandbox use on the emulated CI, refs and webhooks.

emu.pipeline_step_seconds = 0.1        # one runner move every 0.1 s (None: only by hand)
emu.fail_job("unit")                   # every `unit` job fails from now on (times=1: once)
emu.add_hook("acme/web", url, "secret")  # Pipeline Hook deliveries to url
emu.deliver_hooks_out_of_order = True  # each delivery goes after the next one
await emu.wait_for_pipeline(pipeline_id)  # until it finishes; its JSON
await emu.hooks_settled()              # until every queued delivery went (or was given up)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime

from aiohttp import web

from . import ci_shapes
from .api_pipelines import create_pipeline
from .hooks import HookDelivery, HookEvent, HookRecord
from .models import JSON
from .pipelines import COMPLETED, JobFailure, JobSpec, PipelineRecord
from .repository import TagRecord
from .state import GitLabState


class CiControls(GitLabState):
    """Handles on pipelines, refs and webhooks, mixed into GitLabEmulator."""

    # -- pipelines ----------------------------------------------------------------------

    @property
    def pipeline_step_seconds(self) -> float | None:
        """Seconds between two moves of a busy pipeline (None: only `advance_pipelines()`)."""
        return self.ci.step_seconds

    @pipeline_step_seconds.setter
    def pipeline_step_seconds(self, seconds: float | None) -> None:
        if seconds is not None and seconds <= 0:
            raise ValueError("pipeline_step_seconds must be positive, or None")
        self.ci.step_seconds = seconds

    @property
    def restrict_pipeline_variables(self) -> bool:
        """True: creating a pipeline with variables is refused (400), as GitLab can be set."""
        return self.ci.variables_restricted

    @restrict_pipeline_variables.setter
    def restrict_pipeline_variables(self, value: bool) -> None:
        self.ci.variables_restricted = value

    def fail_job(
        self,
        name: str,
        *,
        project: str | int | None = None,
        pipeline: int | None = None,
        times: int | None = None,
        reason: str = "script_failure",
    ) -> None:
        """Jobs called `name` fail when they finish (in one project or pipeline), `times`
        times (None: until `clear_job_failures()`). A failing job that reports tests reports
        failed ones; `reason` is its `failure_reason`."""
        project_id = self.find_project(project).id if project is not None else None
        self.ci.failures.append(JobFailure(name, project_id, pipeline, times, reason))

    def clear_job_failures(self) -> None:
        self.ci.failures.clear()

    def set_pipeline_jobs(self, project: str | int, jobs: Sequence[JobSpec]) -> None:
        """The jobs of the project's pipelines from now on, in stage order."""
        if not jobs:
            raise ValueError("a pipeline needs at least one job")
        self.ci.definitions[self.find_project(project).id] = tuple(jobs)

    def start_pipeline(
        self,
        project: str | int,
        ref: str | None = None,
        *,
        source: str = "push",
        user: str = "alice",
        variables: Mapping[str, str] | None = None,
    ) -> JSON:
        """A pipeline started outside the bot (a push by `user`, by default); its JSON."""
        p = self.find_project(project)
        person = self.user_named(user)
        if person is None:
            raise ValueError(f"no user {user!r}")
        pairs = [(k, v, "env_var") for k, v in (variables or {}).items()]
        made = create_pipeline(self, p, ref or p.default_branch, pairs, source=source, user=person)
        return ci_shapes.pipeline(made, p, self.user, self.public_url())

    def advance_pipelines(self, times: int = 1) -> int:
        """Moves every unfinished pipeline `times` times now; how many moves were made."""
        moves = 0
        for _ in range(times):
            for pipeline in list(self.ci.pipelines.values()):
                if self.ci.advance(pipeline):
                    moves += 1
        return moves

    def pipeline(self, pipeline_id: int) -> JSON:
        """One pipeline as the API shows it."""
        p = self._pipeline(pipeline_id)
        return ci_shapes.pipeline(p, self.find_project(p.project_id), self.user, self.public_url())

    def pipelines(self, project: str | int) -> list[JSON]:
        """The project's pipelines, oldest first."""
        p = self.find_project(project)
        base = self.public_url()
        return [ci_shapes.pipeline(r, p, self.user, base) for r in self.ci.of_project(p.id)]

    def pipeline_jobs(self, pipeline_id: int, *, include_retried: bool = False) -> list[JSON]:
        """The pipeline's jobs in creation order, as the API shows them."""
        p = self._pipeline(pipeline_id)
        project = self.find_project(p.project_id)
        head = self.repos.of(project).commits.get(p.sha)
        base, now = self.public_url(), self.clock()
        return [
            ci_shapes.job(j, p, project, self.user, head, base, now)
            for j in p.jobs
            if include_retried or not j.retried
        ]

    async def wait_for_pipeline(
        self, pipeline_id: int, *statuses: str, seconds: float = 10.0
    ) -> JSON:
        """Waits until the pipeline's status is one of `statuses` (default: finished)."""
        wanted = set(statuses) or set(COMPLETED)
        deadline = time.monotonic() + seconds
        while self._pipeline(pipeline_id).status not in wanted:
            if time.monotonic() > deadline:
                status = self._pipeline(pipeline_id).status
                raise TimeoutError(f"pipeline {pipeline_id} is still {status}")
            await asyncio.sleep(0.01)
        return self.pipeline(pipeline_id)

    def _pipeline(self, pipeline_id: int) -> PipelineRecord:
        found = self.ci.pipelines.get(pipeline_id)
        if found is None:
            raise KeyError(f"no pipeline {pipeline_id}")
        return found

    # -- refs -----------------------------------------------------------------------------

    def add_branch(self, project: str | int, name: str, ref: str | None = None) -> str:
        """A branch at `ref` (default: the default branch's head); its head sha."""
        return self.repos.add_branch(self.find_project(project), name, ref)

    def add_tag(
        self, project: str | int, name: str, ref: str | None = None, message: str | None = None
    ) -> TagRecord:
        return self.repos.add_tag(self.find_project(project), name, ref, message)

    def push(
        self,
        project: str | int,
        branch: str,
        message: str,
        author: str = "Alice Deployer",
        at: datetime | None = None,
    ) -> str:
        """A new commit on `branch` (no pipeline starts by itself), committed at `at`
        (default: now); its sha."""
        return self.repos.push(self.find_project(project), branch, message, author, at)

    # -- webhooks -------------------------------------------------------------------------

    def add_hook(
        self,
        project: str | int,
        url: str,
        token: str | None = None,
        *,
        pipeline_events: bool = True,
        job_events: bool = False,
    ) -> HookRecord:
        """A project webhook, as `POST /projects/:id/hooks` makes one."""
        p = self.find_project(project)
        return self.webhooks.add(
            p.id, url, token, self.clock(), pipeline_events=pipeline_events, job_events=job_events
        )

    @property
    def hooks_enabled(self) -> bool:
        """False: no webhook is sent (status changes make no events), for polling tests."""
        return self.webhooks.enabled

    @hooks_enabled.setter
    def hooks_enabled(self, value: bool) -> None:
        self.webhooks.enabled = value

    @property
    def deliver_hooks_out_of_order(self) -> bool:
        """True: each event is held back until the hook's next one has been delivered."""
        return self.webhooks.out_of_order

    @deliver_hooks_out_of_order.setter
    def deliver_hooks_out_of_order(self, value: bool) -> None:
        self.webhooks.out_of_order = value

    @property
    def hook_retries(self) -> int:
        """Further attempts after a failed delivery (0: none, as GitLab 15+ does)."""
        return self.webhooks.retries

    @hook_retries.setter
    def hook_retries(self, value: int) -> None:
        self.webhooks.retries = value

    @property
    def hook_retry_seconds(self) -> float:
        """The first back-off before a repeated delivery; it doubles for each further one."""
        return self.webhooks.retry_seconds

    @hook_retry_seconds.setter
    def hook_retry_seconds(self, value: float) -> None:
        self.webhooks.retry_seconds = value

    @property
    def hook_events(self) -> list[HookEvent]:
        """Every event made, in order (one per change and hook)."""
        return self.webhooks.events

    @property
    def hook_deliveries(self) -> list[HookDelivery]:
        """Every delivery attempt, in order."""
        return self.webhooks.deliveries

    async def redeliver_hook(self, event: HookEvent) -> HookDelivery:
        """Sends a recorded event again now: same body, same X-Gitlab-Event-UUID."""
        return await self.webhooks.redeliver(event)

    async def redeliver_last_hook(self) -> HookDelivery:
        if not self.webhooks.events:
            raise LookupError("no webhook event to redeliver")
        return await self.webhooks.redeliver(self.webhooks.events[-1])

    async def hooks_settled(self, seconds: float = 10.0) -> None:
        """Waits until every queued delivery has gone (or been given up), at most `seconds`."""
        await self.webhooks.settled(seconds)

    # -- serving --------------------------------------------------------------------------

    async def run_ci(self, app: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context: the runner and the webhook sender, while serving."""
        tasks = [
            asyncio.create_task(self.ci.run(), name="gitlab-emulator-runner"),
            asyncio.create_task(self.webhooks.run(), name="gitlab-emulator-webhooks"),
        ]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
