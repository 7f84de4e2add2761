"""What happens to tasks: filed from a command, the modal, a message or an alert; assigned;
closed; listed. Every decision is audited; the task's Slack message is updated in place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.deps import Deps
from bot.errors import UserError
from bot.once import Effect, Intend, make_once, marker
from bot.roles import approves_anything, holds
from bot.slack_once import post_once
from bot.tasks import messages
from bot.tasks.grammar import TaskRef
from bot.tasks.identity import gitlab_username
from integrations.gitlab import Issue, TasksPort


@dataclass(frozen=True)
class NewTask:
    """Everything needed to file one issue, from whichever entry point."""

    title: str
    project: str | None  # alias or GitLab path; None: the channel's project
    description: str = ""
    labels: Sequence[str] = ()
    assignee_slack_id: str | None = None
    assignee_username: str | None = None


class TaskService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @property
    def gitlab(self) -> TasksPort:
        if self.deps.gitlab is None:
            raise UserError(messages.not_configured())
        return self.deps.gitlab

    def project_path(self, project: str | None, channel: str) -> str:
        """A GitLab path from an alias, a path, or the channel's project."""
        projects = self.deps.config.projects
        if project:
            if project in projects:
                return projects[project].gitlab
            if "/" in project:
                return project
            known = ", ".join(sorted(projects)) or "none are configured"
            raise UserError(f"`{project}` is not a project alias (known: {known}).")
        mine = [p.gitlab for p in projects.values() if p.channel == channel]
        if len(mine) == 1:
            return mine[0]
        if len(projects) == 1:
            return next(iter(projects.values())).gitlab
        if not projects:
            raise UserError(
                "No projects are configured.",
                "Add them to the YAML file, e.g. `projects: {web: {gitlab: acme/web}}`.",
            )
        raise UserError(
            "Which project? This channel has no project of its own.",
            f"Add `project:<alias>`, one of: {', '.join(sorted(projects))}.",
        )

    async def create(self, task: NewTask, *, creator: str, channel: str, job_id: str) -> Issue:
        """File the issue once, even if the job runs twice or dies at any line (bot/once.py):
        the issue carries the request's marker, and a re-run finds it by that marker."""
        gitlab = self.gitlab
        project = self.project_path(task.project, channel)
        key = f"{job_id}:issue"
        request = marker(key)

        async def make(intend: Intend) -> Issue:
            assignee = task.assignee_username
            if task.assignee_slack_id:
                assignee = await gitlab_username(self.deps, gitlab, task.assignee_slack_id)
            await intend()
            # A plain @name that GitLab does not know is refused by create_issue itself.
            return await gitlab.create_issue(
                project,
                task.title,
                marker=request,
                description=task.description,
                labels=list(task.labels),
                assignee=assignee,
            )

        async def find(since: float) -> Issue | None:
            return await gitlab.find_issue(project, request, since)

        async def restore(done: dict[str, Any]) -> Issue:
            return await gitlab.get_issue(str(done["project"]), int(done["iid"]))

        issue = await make_once(
            self.deps.store.effects,
            key,
            Effect(
                system="GitLab",
                what=f"the issue was filed in {project}",
                check="`/task list`",
                make=make,
                find=find,
                record=lambda i: {"project": i.project, "iid": i.iid},
                restore=restore,
            ),
            settle_after=self.deps.settings.settle_seconds,
        )
        assignee = issue.assignees[0] if issue.assignees else None
        detail = {"title": issue.title, "assignee": assignee, "channel": channel}
        await self.deps.store.audit_once(key, creator, "task.created", issue.reference, detail)
        return issue

    async def post(self, issue: Issue, channel: str, creator: str | None, *, job_id: str) -> None:
        """The task's message in the channel, once per request, remembered so it can be
        updated in place."""
        text, blocks = messages.task_message(issue, creator)
        posted = await post_once(
            self.deps.slack,
            f"{job_id}:task",
            channel,
            text,
            blocks,
            settle_after=self.deps.settings.settle_seconds,
        )
        tasks = self.deps.store.tasks
        await tasks.remember_task_message(issue.reference, channel, posted.ts, creator)

    async def _refresh_message(self, issue: Issue) -> None:
        where = await self.deps.store.tasks.task_message(issue.reference)
        if where is None:
            return
        channel, ts, creator = where
        text, blocks = messages.task_message(issue, creator)
        await self.deps.slack.request_update(channel, ts, text, blocks)

    def _path(self, ref: TaskRef, channel: str) -> str:
        return self.project_path(ref.project, channel)

    async def close(self, ref: TaskRef, *, user: str, channel: str) -> Issue:
        """Close the issue if `user` may: its filer, its assignee, deployers and approvers."""
        path = self._path(ref, channel)
        await self._may_close(await self.gitlab.get_issue(path, ref.iid), user)
        issue = await self.gitlab.close_issue(path, ref.iid)
        await self.deps.store.audit(user, "task.closed", issue.reference, {"title": issue.title})
        await self._refresh_message(issue)
        return issue

    async def _may_close(self, issue: Issue, user: str) -> None:
        """A UserError saying who may close the issue, unless `user` is one of them."""
        where = await self.deps.store.tasks.task_message(issue.reference)
        filer = where[2] if where else None  # filed outside Slack: no Slack filer is known
        if user == filer:
            return
        roles = self.deps.config.roles
        if await holds(self.deps, user, roles.deployers) or await approves_anything(
            self.deps, user
        ):
            return
        if issue.assignees:
            try:
                username: str | None = await gitlab_username(self.deps, self.gitlab, user)
            except UserError:
                username = None  # not known in GitLab, so not the assignee
            if username in issue.assignees:
                return
        raise UserError(messages.close_refused(issue, filer))

    async def assign_to(self, ref: TaskRef, slack_user: str, *, channel: str) -> Issue:
        username = await gitlab_username(self.deps, self.gitlab, slack_user)
        issue = await self.gitlab.assign_issue(self._path(ref, channel), ref.iid, username)
        detail = {"title": issue.title, "assignee": username}
        await self.deps.store.audit(slack_user, "task.assigned", issue.reference, detail)
        await self._refresh_message(issue)
        return issue

    async def list(
        self, project: str | None, *, channel: str, mine_for: str | None
    ) -> tuple[str, list[Issue]]:
        path = self.project_path(project, channel)
        assignee = await gitlab_username(self.deps, self.gitlab, mine_for) if mine_for else None
        return path, await self.gitlab.list_issues(path, assignee=assignee, limit=25)
