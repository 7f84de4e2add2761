"""The emulated GitLab's web pages: what a person sees opening a `web_url` the API handed out.

Every `web_url` the emulator produces resolves here to a plain, readable HTML page, as a public
project's pages would (no token needed): the instance's projects, a project, its issues and
pipelines, one issue, pipeline, job, commit or branch, a user and a group. Pages read the same
state the API serves; nothing here changes it. Text from the state goes through `escape`, so
an issue's title or description can never inject markup.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from html import escape

from aiohttp import web

from .ci_shapes import job_url, pipeline_url
from .http import ApiError
from .models import EmulatedProject, IssueRecord
from .pipelines import COMPLETED, JobRecord, PipelineRecord
from .state import STATE, GitLabState

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f1e24}
header{background:#292961;color:#fff;padding:10px 16px}header a{color:#fff}
main{max-width:900px;margin:0 auto;padding:16px}h1{font-size:22px;margin:8px 0}
a{color:#1f75cb}.muted{color:#626168;font-size:13px}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:6px 8px;border-bottom:1px solid #dcdcde;vertical-align:top}
.status{display:inline-block;padding:0 8px;border-radius:10px;font-size:13px;font-weight:600;
background:#ececef}.s-success,.s-opened{background:#c3e6cd;color:#24663b}
.s-failed{background:#fdd4cd;color:#ae1800}.s-running,.s-pending{background:#cbe2f9;color:#0b5cad}
.s-closed{background:#e1d8f9;color:#5943b6}.s-canceled,.s-skipped{background:#dcdcde}
.label{display:inline-block;padding:0 8px;border-radius:10px;background:#e9ecf8;margin-right:4px}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f6f6;padding:10px;border-radius:4px}
pre.log{background:#1f1e24;color:#ececef}dl{display:grid;grid-template-columns:max-content 1fr;
gap:4px 16px}dt{font-weight:600}dd{margin:0}
"""
_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def _page(title: str, body: str, *, crumbs: str = "", refresh: bool = False) -> web.Response:
    # A page that is still moving (a running pipeline or job) reloads itself every 2 s.
    meta = '<meta http-equiv="refresh" content="2">' if refresh else ""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{escape(title)} · GitLab (emulated)</title><style>{_CSS}</style></head>"
        f'<body><header><a href="/">GitLab (emulated)</a> {crumbs}</header>'
        f"<main>{body}</main></body></html>"
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def _not_found(what: str) -> web.Response:
    response = _page("Not found", f"<h1>404: {escape(what)} not found</h1>")
    response.set_status(404)
    return response


def _status(status: str) -> str:
    return f'<span class="status s-{escape(status)}">{escape(status)}</span>'


def _when(moment: datetime | None) -> str:
    return moment.strftime(_FORMAT) if moment is not None else "-"


def _project_link(p: EmulatedProject) -> str:
    return f'<a href="/{escape(p.path_with_namespace)}">{escape(p.path_with_namespace)}</a>'


def _user(state: GitLabState, user_id: int | None) -> str:
    found = state.user(user_id) if user_id is not None else None
    if found is None:
        return "nobody"
    return f'<a href="/{escape(found.username)}">@{escape(found.username)}</a>'


# A URL in escaped text, up to the first space or escaped quote or bracket.
_URL = re.compile(r"https?://(?:(?!&quot;|&#x27;|&lt;|&gt;)[^\s])+")


def _linked(escaped: str) -> str:
    """Escaped text with its URLs clickable, as GitLab's Markdown makes them (a Slack
    permalink in a task's description opens the message)."""
    return _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)


def _issue_url(p: EmulatedProject, i: IssueRecord) -> str:
    return f"/{p.path_with_namespace}/-/issues/{i.iid}"


ProjectPage = Callable[[web.Request, GitLabState, EmulatedProject], Awaitable[web.Response]]


def _in_project(page: ProjectPage) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A page under `/<project>/-/`: the project found, or a 404 page."""

    async def handle(request: web.Request) -> web.Response:
        state = request.app[STATE]
        try:
            p = state.find_project(request.match_info["project"])
        except ApiError:
            return _not_found("Project")
        return await page(request, state, p)

    return handle


# -- pages --------------------------------------------------------------------------------------


async def _home(request: web.Request) -> web.Response:
    state = request.app[STATE]
    rows = "".join(
        f"<tr><td>{_project_link(p)}</td><td>{escape(p.description)}</td></tr>"
        for p in state.projects.values()
    )
    return _page("Projects", f"<h1>Projects</h1><table>{rows}</table>")


async def _project(request: web.Request, p: EmulatedProject) -> web.Response:
    state = request.app[STATE]
    issues = state.project_issues(p)
    pipelines = sorted(state.ci.of_project(p.id), key=lambda r: r.id, reverse=True)[:10]
    body = (
        f"<h1>{escape(p.path_with_namespace)}</h1><p>{escape(p.description)}</p>"
        f'<p class="muted">Default branch: {escape(p.default_branch)}</p>'
        f'<h2><a href="/{escape(p.path_with_namespace)}/-/issues">Issues</a> ({len(issues)})</h2>'
        f"{_issue_table(p, issues)}"
        f'<h2><a href="/{escape(p.path_with_namespace)}/-/pipelines">Pipelines</a></h2>'
        f"{_pipeline_table(state, p, pipelines)}"
    )
    return _page(p.path_with_namespace, body)


def _issue_table(p: EmulatedProject, issues: list[IssueRecord]) -> str:
    if not issues:
        return '<p class="muted">No issues yet.</p>'
    rows = "".join(
        f'<tr><td><a href="{escape(_issue_url(p, i))}">#{i.iid}</a></td>'
        f"<td>{escape(i.title)}</td><td>{_status(i.state)}</td></tr>"
        for i in issues
    )
    return f"<table>{rows}</table>"


def _pipeline_table(state: GitLabState, p: EmulatedProject, runs: list[PipelineRecord]) -> str:
    if not runs:
        return '<p class="muted">No pipelines yet.</p>'
    base = state.public_url()
    rows = "".join(
        f'<tr><td><a href="{escape(pipeline_url(r, p, base))}">#{r.id}</a></td>'
        f"<td>{_status(r.status)}</td><td>{escape(r.ref)}</td><td>{_when(r.created_at)}</td></tr>"
        for r in runs
    )
    return f"<table>{rows}</table>"


@_in_project
async def _issues(request: web.Request, state: GitLabState, p: EmulatedProject) -> web.Response:
    table = _issue_table(p, state.project_issues(p))
    return _page(f"Issues · {p.path_with_namespace}", f"<h1>Issues</h1>{table}", crumbs=_crumb(p))


def _crumb(p: EmulatedProject) -> str:
    return f"/ {_project_link(p)}"


@_in_project
async def _issue(request: web.Request, state: GitLabState, p: EmulatedProject) -> web.Response:
    try:
        i = state.find_issue(p, int(request.match_info["iid"]))
    except ApiError:
        return _not_found("Issue")
    assignees = ", ".join(_user(state, a) for a in i.assignee_ids) or "nobody"
    labels = "".join(f'<span class="label">{escape(lb)}</span>' for lb in i.labels) or "none"
    description = (
        f"<pre>{_linked(escape(i.description))}</pre>"
        if i.description.strip()
        else '<p class="muted">No description.</p>'
    )
    closed = f"<dt>Closed</dt><dd>{_when(i.closed_at)}</dd>" if i.closed_at else ""
    body = (
        f"<h1>{escape(i.title)} <span class=muted>#{i.iid}</span></h1>"
        f"<dl><dt>State</dt><dd>{_status(i.state)}</dd>"
        f"<dt>Assignee</dt><dd>{assignees}</dd><dt>Labels</dt><dd>{labels}</dd>"
        f"<dt>Author</dt><dd>{_user(state, i.author_id)}</dd>"
        f"<dt>Created</dt><dd>{_when(i.created_at)}</dd>{closed}</dl>"
        f"<h2>Description</h2>{description}"
    )
    return _page(f"{i.title} (#{i.iid}) · {p.path_with_namespace}", body, crumbs=_crumb(p))


@_in_project
async def _pipelines(request: web.Request, state: GitLabState, p: EmulatedProject) -> web.Response:
    runs = sorted(state.ci.of_project(p.id), key=lambda r: r.id, reverse=True)
    table = _pipeline_table(state, p, runs)
    return _page(
        f"Pipelines · {p.path_with_namespace}", f"<h1>Pipelines</h1>{table}", crumbs=_crumb(p)
    )


@_in_project
async def _pipeline(request: web.Request, state: GitLabState, p: EmulatedProject) -> web.Response:
    try:
        run = state.ci.find(p.id, int(request.match_info["id"]))
    except ApiError:
        return _not_found("Pipeline")
    base = state.public_url()
    rows = "".join(
        f"<tr><td>{escape(j.stage)}</td>"
        f'<td><a href="{escape(job_url(j, p, base))}">{escape(j.name)}</a></td>'
        f"<td>{_status(j.status)}</td><td>{_duration(j)}</td></tr>"
        for j in run.latest_jobs
    )
    body = (
        f"<h1>Pipeline #{run.id} {_status(run.status)}</h1>"
        f"<dl><dt>Ref</dt><dd>{escape(run.ref)}</dd><dt>Commit</dt>"
        f'<dd><a href="/{escape(p.path_with_namespace)}/-/commit/{escape(run.sha)}">'
        f"{escape(run.sha[:8])}</a></dd><dt>Triggered by</dt><dd>{_user(state, run.user_id)}</dd>"
        f"<dt>Source</dt><dd>{escape(run.source)}</dd>"
        f"<dt>Created</dt><dd>{_when(run.created_at)}</dd>"
        f"<dt>Finished</dt><dd>{_when(run.finished_at)}</dd></dl>"
        f"<h2>Jobs</h2><table><tr><th>Stage</th><th>Job</th><th>Status</th><th>Duration</th></tr>"
        f"{rows}</table>"
    )
    moving = run.status not in COMPLETED and run.status != "manual"
    return _page(
        f"Pipeline #{run.id} · {p.path_with_namespace}", body, crumbs=_crumb(p), refresh=moving
    )


def _duration(j: JobRecord) -> str:
    if j.started_at is None:
        return "-"
    end = j.finished_at
    if end is None:
        return "running"
    return f"{(end - j.started_at).total_seconds():.0f}s"


def _trace(run: PipelineRecord, j: JobRecord) -> str:
    """The job's log as the emulated runner would have written it (it runs no script)."""
    lines = [f"Running with gitlab-runner (emulated) on ref {run.ref} ({run.sha[:8]})"]
    if j.started_at is not None:
        lines += [f"Job started at {_when(j.started_at)}", f"$ ./ci/{j.stage}.sh {j.name}"]
    if j.spec.tests:
        lines.append(f"{j.spec.tests} tests, {j.spec.skipped_tests} skipped")
    if j.status == "success":
        lines.append("Job succeeded")
    elif j.status == "failed":
        lines.append(f"ERROR: Job failed: {j.failure_reason or 'script_failure'}")
    elif j.status == "canceled":
        lines.append("ERROR: Job was canceled")
    elif j.status in ("created", "pending", "manual", "skipped"):
        lines.append(f"The job has not run: it is {j.status}.")
    return "\n".join(lines)


@_in_project
async def _job(request: web.Request, state: GitLabState, p: EmulatedProject) -> web.Response:
    try:
        run, j = state.ci.find_job(p.id, int(request.match_info["id"]))
    except ApiError:
        return _not_found("Job")
    base = state.public_url()
    body = (
        f"<h1>Job {escape(j.name)} {_status(j.status)}</h1>"
        f"<dl><dt>Stage</dt><dd>{escape(j.stage)}</dd><dt>Pipeline</dt>"
        f'<dd><a href="{escape(pipeline_url(run, p, base))}">#{run.id}</a> '
        f"({_status(run.status)})</dd><dt>Ref</dt><dd>{escape(run.ref)}</dd>"
        f"<dt>Started</dt><dd>{_when(j.started_at)}</dd>"
        f"<dt>Finished</dt><dd>{_when(j.finished_at)}</dd>"
        f"<dt>Duration</dt><dd>{_duration(j)}</dd></dl>"
        f'<h2>Log</h2><pre class="log">{escape(_trace(run, j))}</pre>'
    )
    moving = j.status not in COMPLETED and j.status != "manual"
    return _page(
        f"Job {j.name} (#{j.id}) · {p.path_with_namespace}", body, crumbs=_crumb(p), refresh=moving
    )


@_in_project
async def _commit(request: web.Request, state: GitLabState, p: EmulatedProject) -> web.Response:
    try:
        c = state.repos.of(p).commit(request.match_info["sha"])
    except ApiError:
        return _not_found("Commit")
    body = (
        f"<h1>{escape(c.title)}</h1><p class=muted>{escape(c.sha)}</p>"
        f"<dl><dt>Author</dt><dd>{escape(c.author_name)}</dd>"
        f"<dt>Date</dt><dd>{_when(c.at)}</dd></dl><pre>{escape(c.message)}</pre>"
    )
    return _page(f"{c.title} · {p.path_with_namespace}", body, crumbs=_crumb(p))


@_in_project
async def _tree(request: web.Request, state: GitLabState, p: EmulatedProject) -> web.Response:
    ref = request.match_info["ref"]
    resolved = state.repos.of(p).resolve(ref)
    if resolved is None:
        return _not_found("Branch or tag")
    kind, sha = resolved
    body = (
        f"<h1>{escape(kind.capitalize())} {escape(ref)}</h1><p>Head: "
        f'<a href="/{escape(p.path_with_namespace)}/-/commit/{escape(sha)}">{escape(sha[:8])}'
        "</a></p>"
    )
    return _page(f"{ref} · {p.path_with_namespace}", body, crumbs=_crumb(p))


async def _group(request: web.Request) -> web.Response:
    state = request.app[STATE]
    namespace = request.match_info["group"].strip("/")
    projects = [p for p in state.projects.values() if p.namespace == namespace]
    if not projects:
        return _not_found("Group")
    rows = "".join(f"<tr><td>{_project_link(p)}</td></tr>" for p in projects)
    return _page(namespace, f"<h1>Group {escape(namespace)}</h1><table>{rows}</table>")


async def _anything(request: web.Request) -> web.Response:
    """`/<namespace>/<project>` (a project) or `/<username>` (a user)."""
    state = request.app[STATE]
    path = request.match_info["path"].strip("/")
    try:
        return await _project(request, state.find_project(path))
    except ApiError:
        pass
    found = state.user_named(path) if "/" not in path else None
    if found is None:
        return _not_found("Page")
    body = f"<h1>{escape(found.display_name)}</h1><p class=muted>@{escape(found.username)}</p>"
    return _page(found.display_name, body)


def is_web_path(path: str) -> bool:
    """Whether a request is for a web page (public here) rather than the token-checked API."""
    return not path.startswith("/api/")


# A project's path: anything but the API's, whose unknown paths keep GitLab's JSON 404.
_PROJECT = "{project:(?!api/).+?}"


def add_routes(app: web.Application) -> None:
    """The web pages, at the paths GitLab serves them."""
    router = app.router
    router.add_get("/", _home)
    router.add_get("/groups/{group:.+}", _group)
    router.add_get(rf"/{_PROJECT}/-/issues/{{iid:\d+}}", _issue)
    router.add_get(f"/{_PROJECT}/-/issues", _issues)
    router.add_get(rf"/{_PROJECT}/-/pipelines/{{id:\d+}}", _pipeline)
    router.add_get(f"/{_PROJECT}/-/pipelines", _pipelines)
    router.add_get(rf"/{_PROJECT}/-/jobs/{{id:\d+}}", _job)
    router.add_get(f"/{_PROJECT}/-/commit/{{sha}}", _commit)
    router.add_get(f"/{_PROJECT}/-/tree/{{ref:.+}}", _tree)
    router.add_get("/{path:(?!api/).+}", _anything)
