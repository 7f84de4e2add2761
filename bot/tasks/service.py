"""What happens to tasks: filed from a command, the modal, a message or an alert; assigned;
closed; listed. Every decision is audited; the task's Slack message is updated in place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.deps import Deps
from bot.errors import UserError
from bot.once import Effect, Intend, make_once, marker
from bot.replies import Reply
from bot.roles import approves_anything, holds
from bot.slack_once import post_once
from bot.tasks import messages
from bot.tasks.grammar import TaskRef
from bot.tasks.identity import tracker_username
from bot.tasks.ports import CLOSED, Task, TaskTracker

# How far back in the audit log a closed task's closer is looked for.
CLOSERS_LOOKED_AT = 1000


@dataclass(frozen=True)
class NewTask:
    """Everything needed to file one task, from whichever entry point."""

    title: str
    project: str | None  # alias or the tracker's project; None: the channel's project
    description: str = ""
    labels: Sequence[str] = ()
    assignee_slack_id: str | None = None
    assignee_username: str | None = None


class TaskService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def where(self, project: str | None, channel: str) -> tuple[TaskTracker, str]:
        """The tracker and its project for an alias, a tracker's project (acme/web, WEB), or
        the channel's project: each project's tasks go where its YAML entry says."""
        kind, path = self._project(project, channel)
        trackers = self.deps.systems.trackers
        tracker = trackers.get(kind) if trackers else self.deps.tasks
        if tracker is None:
            raise UserError(self.deps.systems.missing("tasks", kind))
        return tracker, path

    def project_path(self, project: str | None, channel: str) -> str:
        """The tracker's project from an alias, a path, or the channel's project."""
        return self._project(project, channel)[1]

    def _project(self, project: str | None, channel: str) -> tuple[str, str]:
        """(which project key names the tracker, the tracker's project)."""
        # Projects with a tracker: one that only builds (`jenkins:` alone) files no tasks.
        projects = {a: p for a, p in self.deps.config.projects.items() if p.tracker[1]}
        if project:
            if project in projects:
                return projects[project].tracker
            if project in self.deps.config.projects:
                raise UserError(
                    f"`{project}` has no task tracker: it only builds.",
                    f"Add `gitlab: <group/project>` or `jira: <KEY>` to `projects.{project}` "
                    "in the YAML file to file its tasks.",
                )
            named = [p.tracker for p in projects.values() if p.tracker[1] == project]
            if named:
                return named[0]
            if "/" in project:  # a GitLab path outside the YAML file
                return "gitlab", project
            known = ", ".join(sorted(projects)) or "none are configured"
            raise UserError(f"`{project}` is not a project alias (known: {known}).")
        mine = [p.tracker for p in projects.values() if p.channel == channel]
        if len(mine) == 1:
            return mine[0]
        if len(projects) == 1:
            return next(iter(projects.values())).tracker
        if not projects:
            raise UserError(
                "No projects are configured.",
                "Add them to the YAML file, e.g. `projects: {web: {gitlab: acme/web}}`.",
            )
        raise UserError(
            "Which project? This channel has no project of its own.",
            f"Add `project:<alias>`, one of: {', '.join(sorted(projects))}.",
        )

    async def create(self, task: NewTask, *, creator: str, channel: str, job_id: str) -> Task:
        """File the task once, even if the job runs twice or dies at any line (bot/once.py):
        the task carries the request's marker, and a re-run finds it by that marker."""
        tracker, project = self.where(task.project, channel)
        name = task.assignee_username
        if name and await tracker.person_by_username(name) is None:
            raise UserError(*messages.no_such_person(name, tracker.system))
        key = f"{job_id}:issue"
        request = marker(key)

        async def make(intend: Intend) -> Task:
            assignee = task.assignee_username
            if task.assignee_slack_id:
                assignee = await tracker_username(self.deps, tracker, task.assignee_slack_id)
            await intend()
            # A plain @name that the tracker stopped knowing since is refused by create_task.
            return await tracker.create_task(
                project,
                task.title,
                marker=request,
                description=task.description,
                labels=list(task.labels),
                assignee=assignee,
            )

        async def find(since: float) -> Task | None:
            return await tracker.find_task(project, request, since)

        async def restore(done: dict[str, Any]) -> Task:
            # "iid": what a record written before tasks had keys calls the key.
            task_key = done["key"] if "key" in done else done["iid"]
            return await tracker.get_task(str(done["project"]), str(task_key))

        filed = await make_once(
            self.deps.store.effects,
            key,
            Effect(
                system=tracker.system,
                what=f"the issue was filed in {project}",
                check="`/task list`",
                make=make,
                find=find,
                record=lambda t: {"project": t.project, "key": t.key},
                restore=restore,
            ),
            settle_after=self.deps.settings.settle_seconds,
        )
        assignee = filed.assignees[0] if filed.assignees else None
        detail = {"title": filed.title, "assignee": assignee, "channel": channel}
        await self.deps.store.audit_once(key, creator, "task.created", filed.reference, detail)
        return filed

    async def post(self, task: Task, channel: str, creator: str | None, *, job_id: str) -> None:
        """The task's message in the channel, once per request, remembered so it can be
        updated in place."""
        text, blocks = messages.task_message(task, creator)
        posted = await post_once(
            self.deps.slack,
            f"{job_id}:task",
            channel,
            text,
            blocks,
            settle_after=self.deps.settings.settle_seconds,
        )
        tasks = self.deps.store.tasks
        await tasks.remember_task_message(task.reference, channel, posted.ts, creator)

    async def _refresh_message(self, task: Task) -> None:
        where = await self.deps.store.tasks.task_message(task.reference)
        if where is None:
            return
        channel, ts, creator = where
        text, blocks = messages.task_message(task, creator)
        await self.deps.slack.request_update(channel, ts, text, blocks)

    def _where(self, ref: TaskRef, channel: str) -> tuple[TaskTracker, str]:
        return self.where(ref.project, channel)

    async def close(self, ref: TaskRef, *, user: str, channel: str) -> tuple[Task, Reply | None]:
        """Close the task if `user` may: its filer, its assignee, deployers and approvers.
        A task already closed is left alone, with the answer that says so."""
        tracker, path = self._where(ref, channel)
        task = await tracker.get_task(path, ref.key)
        if task.state == CLOSED:
            await self._refresh_message(task)  # it may still offer Close (closed elsewhere)
            return task, messages.already_closed(task, *await self._closed_by(task))
        await self._may_close(tracker, task, user)
        task = await tracker.close_task(path, ref.key)
        await self.deps.store.audit(user, "task.closed", task.reference, {"title": task.title})
        await self._refresh_message(task)
        return task, None

    async def _closed_by(self, task: Task) -> tuple[str | None, float | None]:
        """Who closed the task from Slack and when, if the recent audit log says."""
        for entry in await self.deps.store.audit_recent(CLOSERS_LOOKED_AT):
            if entry.action == "task.closed" and entry.subject == task.reference:
                return entry.who, entry.at
        return None, None

    async def _may_close(self, tracker: TaskTracker, task: Task, user: str) -> None:
        """A UserError saying who may close the task, unless `user` is one of them."""
        where = await self.deps.store.tasks.task_message(task.reference)
        filer = where[2] if where else None  # filed outside Slack: no Slack filer is known
        if user == filer:
            return
        roles = self.deps.config.roles
        if await holds(self.deps, user, roles.deployers) or await approves_anything(
            self.deps, user
        ):
            return
        if task.assignees:
            try:
                username: str | None = await tracker_username(self.deps, tracker, user)
            except UserError:
                username = None  # not known in the tracker, so not the assignee
            if username in task.assignees:
                return
        raise UserError(messages.close_refused(task, filer))

    async def assign_to(self, ref: TaskRef, slack_user: str, *, channel: str) -> Task:
        tracker, path = self._where(ref, channel)
        username = await tracker_username(self.deps, tracker, slack_user)
        task = await tracker.assign_task(path, ref.key, username)
        detail = {"title": task.title, "assignee": username}
        await self.deps.store.audit(slack_user, "task.assigned", task.reference, detail)
        await self._refresh_message(task)
        return task

    async def list(
        self, project: str | None, *, channel: str, mine_for: str | None
    ) -> tuple[str, list[Task]]:
        tracker, path = self.where(project, channel)
        assignee = await tracker_username(self.deps, tracker, mine_for) if mine_for else None
        return path, await tracker.list_tasks(path, assignee=assignee, limit=25)
