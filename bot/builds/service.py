"""What happens to builds: trigger a pipeline, follow it (GitLab's Pipeline Hook, or polling
with back-off when no hook comes), cancel and retry it, say how it ended.

Every state change goes through `apply`, under the pipeline's lock, and only when it is newer
than what the bot has (bot/builds/progress.py); the live message is then edited in place
(coalesced), and the end is told once, in its thread.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bot.builds import messages
from bot.builds.ports import CISystem, Run, RunJob
from bot.builds.progress import FINAL, JobState, progress
from bot.config_file import Project
from bot.deps import Deps
from bot.errors import IntegrationError, UserError
from bot.once import Effect, Intend, make_once, marker
from bot.roles import holds
from bot.slack_once import post_once

log = logging.getLogger(__name__)

POLL_JOB = "builds.poll"
POLL_MAX = 60.0
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def jobs_from_api(jobs: Sequence[RunJob]) -> list[JobState]:
    return [
        JobState(
            id=j.id,
            name=j.name,
            stage=j.stage,
            status=j.status,
            web_url=j.url,
            failure_reason=j.failure_reason,
            allow_failure=j.allow_failure,
        )
        for j in jobs
    ]


class BuildService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @property
    def ci(self) -> CISystem:
        if self.deps.ci is None:
            raise UserError(self.deps.systems.missing("ci"))
        return self.deps.ci

    def project(self, alias: str) -> Project:
        projects = self.deps.config.projects
        if alias in projects:
            if not projects[alias].ci_path:  # e.g. `jira:` alone: its tasks, nothing to build
                raise UserError(
                    f"`{alias}` has nothing to build: it names no CI project.",
                    f"Add `gitlab: <group/project>` or `jenkins: <job path>` to `projects.{alias}` "
                    "in the YAML file to /build it.",
                )
            return projects[alias]
        known = ", ".join(sorted(projects)) or "none are configured"
        raise UserError(f"`{alias}` is not a project alias (known: {known}).")

    def _alias_of(self, path: str) -> tuple[str, Project] | None:
        return next(
            ((a, p) for a, p in self.deps.config.projects.items() if p.ci_path == path), None
        )

    async def _default_branch(self, project: Project) -> str:
        return project.default_ref or await self.ci.default_branch(project.ci_path)

    async def check_may_build(self, project: Project, ref: str, kind: str, user: str) -> None:
        """Protected refs (the YAML's, else the default branch; tags always) need a deployer."""
        protected = project.protected_refs
        if protected is None:
            protected = [await self._default_branch(project)]
        if kind != "tag" and ref not in protected:
            return
        if await holds(self.deps, user, self.deps.config.roles.deployers):
            return
        what = "a tag" if kind == "tag" else "protected"
        raise UserError(
            f"`{ref}` is {what} in {project.ci_path}: only deployers (`roles.deployers`) may "
            "build it.",
            "Build a branch of your own, or ask a deployer.",
        )

    async def trigger(
        self,
        alias: str,
        ref: str | None,
        variables: Mapping[str, str],
        *,
        user: str,
        channel: str,
        job_id: str,
    ) -> dict[str, Any]:
        project = self.project(alias)
        ref = ref or await self._default_branch(project)
        kind = await self.ci.ref_exists(project.ci_path, ref)
        if kind is None:
            raise UserError(
                f"`{ref}` is not a branch or tag of {project.ci_path}.",
                f"Type `/build {alias}` for its default branch, or name an existing branch.",
            )
        await self.check_may_build(project, ref, kind, user)
        key = f"{job_id}:pipeline"
        pipeline = await self._start_once(key, project.ci_path, ref, variables)
        builds = self.deps.store.builds
        record = await builds.load(project.ci_path, pipeline.id)
        if record is None or not record.get("ts"):
            record = self._record(pipeline, channel=channel, triggered_by=user)
            record["variables"] = sorted(variables)  # names only: values may be secrets
            text, blocks = messages.live_message(record)
            posted = await post_once(
                self.deps.slack,
                key,
                channel,
                text,
                blocks,
                settle_after=self.deps.settings.settle_seconds,
            )
            record["ts"] = posted.ts
            await builds.save(record)
        detail = {"ref": ref, "variables": sorted(variables), "channel": channel}
        subject = f"{project.ci_path}#{pipeline.id}"
        await self.deps.store.audit_once(key, user, "build.triggered", subject, detail)
        await self.schedule_poll(project.ci_path, pipeline.id, 0)
        return record

    async def _start_once(
        self, key: str, project: str, ref: str, variables: Mapping[str, str]
    ) -> Run:
        """The request's pipeline, started once however often the job runs (bot/once.py): it
        carries the request's marker, and a re-run finds it by that marker."""
        ci = self.ci
        request = marker(key)

        async def make(intend: Intend) -> Run:
            await intend()
            return await ci.start_run(project, ref, variables, marker=request)

        async def find(since: float) -> Run | None:
            return await ci.find_run(project, ref, request, since)

        async def restore(done: dict[str, Any]) -> Run:
            return await ci.get_run(project, int(done["id"]))

        return await make_once(
            self.deps.store.effects,
            key,
            Effect(
                system=ci.system,
                what=f"a pipeline was started on `{ref}` of {project}",
                check=f"`/build status {project}`",
                make=make,
                find=find,
                record=lambda p: {"id": p.id},
                restore=restore,
            ),
            settle_after=self.deps.settings.settle_seconds,
        )

    def _record(self, pipeline: Run, **extra: Any) -> dict[str, Any]:
        return {
            "project": pipeline.project,
            "pipeline_id": pipeline.id,
            "ref": pipeline.ref,
            "sha": pipeline.sha,
            "status": pipeline.status,
            "web_url": pipeline.url,
            "started_at": _ts(pipeline.started_at),
            "finished_at": _ts(pipeline.finished_at),
            "duration": pipeline.duration,
            "jobs": [],
            "progress": [0, 0, -1],
            "final_told": False,
            "channel": None,
            "ts": None,
            "triggered_by": None,
            **extra,
        }

    # -- following -------------------------------------------------------------------------

    async def apply(
        self,
        project: str,
        pipeline_id: int,
        *,
        status: str,
        jobs: Sequence[JobState],
        fields: Mapping[str, Any],
    ) -> None:
        """A newer state of a pipeline (from a hook or a poll): record it, show it."""
        builds = self.deps.store.builds
        async with builds.locked(project, pipeline_id):
            record = await builds.load(project, pipeline_id)
            if record is None:
                await self._elsewhere(project, pipeline_id, status, jobs, fields)
                return
            new = progress(status, jobs)
            if tuple(record["progress"]) >= new:
                return  # an older or the same state, arriving late
            record.update(fields)
            record["status"] = status
            record["jobs"] = [asdict(j) for j in jobs]
            record["progress"] = list(new)
            await builds.save(record)
            if record.get("ts"):
                text, blocks = messages.live_message(record)
                await self.deps.slack.request_update(record["channel"], record["ts"], text, blocks)
            if status in FINAL and not record["final_told"]:
                await self._tell_end(record)

    async def _tell_end(self, record: dict[str, Any]) -> None:
        tests = None
        try:
            tests = await self.ci.test_summary(record["project"], int(record["pipeline_id"]))
        except IntegrationError as e:
            log.info("no test summary for %s: %s", record["pipeline_id"], e)
        if record.get("ts"):
            await self.deps.slack.post_message(
                record["channel"], messages.result_reply(record, tests), thread_ts=record["ts"]
            )
        record["final_told"] = True
        await self.deps.store.builds.save(record)

    async def _elsewhere(
        self,
        project: str,
        pipeline_id: int,
        status: str,
        jobs: Sequence[JobState],
        fields: Mapping[str, Any],
    ) -> None:
        """A pipeline opsloop did not start: announce a failed default branch, if asked to."""
        found = self._alias_of(project)
        if found is None or status != "failed":
            return
        _, config = found
        if not config.notify_failed_default_branch or not config.channel:
            return
        ref = str(fields.get("ref", ""))
        if ref != await self._default_branch(config):
            return
        record = {
            **self._record_from_fields(project, pipeline_id, status, fields),
            "jobs": [asdict(j) for j in jobs],
            "progress": list(progress(status, jobs)),
            "final_told": True,
            "channel": config.channel,
        }
        text, blocks = messages.failed_elsewhere(record)
        posted = await self.deps.slack.post_message(config.channel, text, blocks)
        record["ts"] = posted.ts
        await self.deps.store.builds.save(record)

    @staticmethod
    def _record_from_fields(
        project: str, pipeline_id: int, status: str, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "project": project,
            "pipeline_id": pipeline_id,
            "status": status,
            "ref": fields.get("ref", ""),
            "sha": fields.get("sha", ""),
            "web_url": fields.get("web_url", ""),
            "started_at": fields.get("started_at"),
            "finished_at": fields.get("finished_at"),
            "duration": fields.get("duration"),
            "triggered_by": None,
            "ts": None,
        }

    async def schedule_poll(self, project: str, pipeline_id: int, attempt: int) -> None:
        """Poll with back-off (5 s, 10 s, ... 60 s by default) in case no webhook comes."""
        first = self.deps.settings.build_poll_seconds
        delay = min(first * (2 ** min(attempt, 10)), max(POLL_MAX, first))
        await self.deps.queue.enqueue(
            POLL_JOB,
            {"project": project, "pipeline_id": pipeline_id, "attempt": attempt},
            job_id=f"{POLL_JOB}:{project}:{pipeline_id}:{attempt}:{int(time.time())}",
            run_at=time.time() + delay,
        )

    async def poll(self, project: str, pipeline_id: int, attempt: int) -> None:
        record = await self.deps.store.builds.load(project, pipeline_id)
        if record is None or (record["status"] in FINAL and record["final_told"]):
            return
        if await self.refresh(project, pipeline_id) in FINAL:
            return
        await self.schedule_poll(project, pipeline_id, attempt + 1)

    async def refresh(self, project: str, pipeline_id: int) -> str | None:
        """Ask the CI system for the run now (a poll, or a webhook saying it moved) and apply
        what it says; its status, or None when it could not be asked."""
        try:
            pipeline = await self.ci.get_run(project, pipeline_id)
            jobs = jobs_from_api(await self.ci.run_jobs(project, pipeline_id))
        except IntegrationError as e:
            log.warning("polling %s#%s: %s", project, pipeline_id, e)
            return None
        await self.apply(
            project, pipeline_id, status=pipeline.status, jobs=jobs, fields=_fields(pipeline)
        )
        return pipeline.status

    # -- people ----------------------------------------------------------------------------

    async def _record_for_click(self, value: str, user: str) -> dict[str, Any]:
        project, _, pid = value.partition("|")
        record = await self.deps.store.builds.load(project, int(pid))
        if record is None:
            raise UserError("opsloop no longer follows this pipeline.")
        found = self._alias_of(project)
        if found is not None:
            kind = "tag" if await self.ci.ref_exists(project, record["ref"]) == "tag" else "branch"
            await self.check_may_build(found[1], record["ref"], kind, user)
        return record

    async def cancel(self, value: str, user: str) -> None:
        record = await self._record_for_click(value, user)
        pipeline = await self.ci.cancel_run(record["project"], int(record["pipeline_id"]))
        subject = f"{record['project']}#{record['pipeline_id']}"
        await self.deps.store.audit(user, "build.cancelled", subject, {"ref": record["ref"]})
        if record.get("ts"):
            await self.deps.slack.post_message(
                record["channel"], messages.cancelled_reply(user), thread_ts=record["ts"]
            )
        await self.schedule_poll(pipeline.project, pipeline.id, 0)

    async def retry(self, value: str, user: str) -> None:
        record = await self._record_for_click(value, user)
        pipeline = await self.ci.retry_run(record["project"], int(record["pipeline_id"]))
        if pipeline.id != int(record["pipeline_id"]):
            await self._follow_instead(record, pipeline)
        else:
            async with self.deps.store.builds.locked(record["project"], pipeline.id):
                fresh = await self.deps.store.builds.load(record["project"], pipeline.id)
                if fresh is not None:
                    fresh["final_told"] = False  # this run's end is told again
                    await self.deps.store.builds.save(fresh)
        subject = f"{record['project']}#{record['pipeline_id']}"
        await self.deps.store.audit(user, "build.retried", subject, {"ref": record["ref"]})
        if record.get("ts"):
            await self.deps.slack.post_message(
                record["channel"], messages.retried_reply(user), thread_ts=record["ts"]
            )
        await self.schedule_poll(pipeline.project, pipeline.id, 0)

    async def _follow_instead(self, record: dict[str, Any], run: Run) -> None:
        """A CI system whose retry is a new run (Jenkins' rebuild): the same live message now
        follows the new run (its buttons name it); a second Retry finds the same run."""
        builds = self.deps.store.builds
        async with builds.locked(run.project, run.id):
            if await builds.load(run.project, run.id) is not None:
                return
            moved = self._record(
                run,
                channel=record["channel"],
                ts=record.get("ts"),
                triggered_by=record.get("triggered_by"),
                variables=record.get("variables", []),
                retry_of=record["pipeline_id"],
            )
            await builds.save(moved)
        if moved.get("ts"):
            text, blocks = messages.live_message(moved)
            await self.deps.slack.request_update(moved["channel"], moved["ts"], text, blocks)

    async def status(self, alias: str, pipeline_id: int | None) -> dict[str, Any]:
        project = self.project(alias)
        if pipeline_id is None:
            latest = await self.ci.latest_run(project.ci_path)
            if latest is None:
                raise UserError(f"{project.ci_path} has no pipelines yet.")
            pipeline = latest
        else:
            pipeline = await self.ci.get_run(project.ci_path, pipeline_id)
        record = self._record(pipeline)
        record["jobs"] = [
            asdict(j) for j in jobs_from_api(await self.ci.run_jobs(project.ci_path, pipeline.id))
        ]
        stored = await self.deps.store.builds.load(project.ci_path, pipeline.id)
        if stored is not None:
            record["triggered_by"] = stored.get("triggered_by")
        return record


def _fields(pipeline: Run) -> dict[str, Any]:
    return {
        "ref": pipeline.ref,
        "sha": pipeline.sha,
        "web_url": pipeline.url,
        "started_at": _ts(pipeline.started_at),
        "finished_at": _ts(pipeline.finished_at),
        "duration": pipeline.duration,
    }
