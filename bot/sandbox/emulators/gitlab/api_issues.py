"""Issues: list (a project's, or every project's), create, get, and edit with `state_event`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from .http import (
    int_list_param,
    int_param,
    invalid,
    list_param,
    page_of,
    read_params,
    text_param,
    time_param,
)
from .models import JSON, EmulatedProject, IssueRecord
from .state import STATE, GitLabState

API = "/api/v4"
_STATES = ("opened", "closed", "all")
_STATE_EVENTS = ("close", "reopen")
_ORDERS = ("created_at", "updated_at", "title")
_SCOPES = ("created_by_me", "assigned_to_me", "all")
_EDITABLE = (
    "title",
    "description",
    "labels",
    "add_labels",
    "remove_labels",
    "assignee_ids",
    "assignee_id",
    "state_event",
)


def _search_in(params: JSON) -> frozenset[str]:
    """`in=title`, `in=description` or both, comma separated (GitLab 400s on anything else)."""
    raw = text_param(params, "in")
    if raw is None:
        return frozenset({"title", "description"})
    parts = frozenset(p.strip() for p in raw.split(","))
    if not parts <= {"title", "description"}:
        raise invalid("in does not have a valid value")
    return parts


def _choice(params: JSON, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = text_param(params, name) or default
    if value not in allowed:
        raise invalid(f"{name} does not have a valid value")
    return value


@dataclass(frozen=True)
class IssueQuery:
    """The filters of `GET .../issues` that the emulator understands."""

    state: str
    labels: tuple[str, ...] | None
    assignee_usernames: tuple[str, ...] | None
    assignee_id: str | None  # a number, "None" or "Any"
    author_username: str | None
    search: str | None
    search_in: frozenset[str]  # `in`: where `search` looks, title and description by default
    iids: tuple[int, ...] | None
    scope: str
    created_after: datetime | None
    created_before: datetime | None

    @classmethod
    def from_params(cls, params: JSON, default_scope: str = "all") -> IssueQuery:
        labels = list_param(params, "labels")
        assignees = list_param(params, "assignee_username")
        iids = int_list_param(params, "iids")
        assignee_id = text_param(params, "assignee_id")
        if assignee_id is not None and assignee_id not in ("None", "Any", "none", "any"):
            int_param(params, "assignee_id")  # refuses what is not a number
        return cls(
            state=_choice(params, "state", _STATES, "all"),
            labels=tuple(labels) if labels is not None else None,
            assignee_usernames=tuple(assignees) if assignees is not None else None,
            assignee_id=assignee_id.capitalize() if assignee_id in ("none", "any") else assignee_id,
            author_username=text_param(params, "author_username"),
            search=(text_param(params, "search") or "").lower() or None,
            search_in=_search_in(params),
            iids=tuple(iids) if iids is not None else None,
            scope=_choice(params, "scope", _SCOPES, default_scope),
            created_after=time_param(params, "created_after"),
            created_before=time_param(params, "created_before"),
        )

    def accepts(self, state: GitLabState, issue: IssueRecord) -> bool:
        return (
            (self.state == "all" or issue.state == self.state)
            and (self.iids is None or issue.iid in self.iids)
            and self._labels_match(issue)
            and self._assignees_match(state, issue)
            and self._author_matches(state, issue)
            and self._in_scope(state, issue)
            and (self.created_after is None or issue.created_at >= self.created_after)
            and (self.created_before is None or issue.created_at <= self.created_before)
            and self._search_matches(issue)
        )

    def _search_matches(self, issue: IssueRecord) -> bool:
        # GitLab matches every word of the search (longer than two characters) somewhere.
        if self.search is None:
            return True
        where = []
        if "title" in self.search_in:
            where.append(issue.title.lower())
        if "description" in self.search_in:
            where.append(issue.description.lower())
        words = [w for w in self.search.split() if len(w) > 2] or [self.search]
        return all(any(w in text for text in where) for w in words)

    def _labels_match(self, issue: IssueRecord) -> bool:
        if self.labels is None:
            return True
        if self.labels in (("None",), ("none",)):
            return not issue.labels
        if self.labels in (("Any",), ("any",)):
            return bool(issue.labels)
        have = {label.lower() for label in issue.labels}
        return all(label.lower() in have for label in self.labels)

    def _assignees_match(self, state: GitLabState, issue: IssueRecord) -> bool:
        if self.assignee_id == "None":
            return not issue.assignee_ids
        if self.assignee_id == "Any":
            return bool(issue.assignee_ids)
        if self.assignee_id is not None and int(self.assignee_id) not in issue.assignee_ids:
            return False
        if self.assignee_usernames is None:
            return True
        names = {u.username.lower() for u in map(state.user, issue.assignee_ids) if u}
        return any(name.lstrip("@").lower() in names for name in self.assignee_usernames)

    def _in_scope(self, state: GitLabState, issue: IssueRecord) -> bool:
        me = state.token_user.id
        if self.scope == "created_by_me":
            return issue.author_id == me
        if self.scope == "assigned_to_me":
            return me in issue.assignee_ids
        return True

    def _author_matches(self, state: GitLabState, issue: IssueRecord) -> bool:
        if self.author_username is None:
            return True
        author = state.user(issue.author_id)
        return author is not None and author.username.lower() == self.author_username.lower()


def _ordered(
    found: list[tuple[EmulatedProject, IssueRecord]], params: JSON
) -> list[tuple[EmulatedProject, IssueRecord]]:
    order_by = _choice(params, "order_by", _ORDERS, "created_at")
    descending = _choice(params, "sort", ("asc", "desc"), "desc") == "desc"

    def key(item: tuple[EmulatedProject, IssueRecord]) -> tuple[str | datetime, int]:
        issue = item[1]
        field: str | datetime = (
            issue.title.lower() if order_by == "title" else getattr(issue, order_by)
        )
        return field, issue.id

    return sorted(found, key=key, reverse=descending)


def _iid(request: web.Request) -> int:
    raw = request.match_info["iid"]
    if not raw.isdigit():
        raise invalid("issue_iid is invalid")
    return int(raw)


def _answer(
    request: web.Request, state: GitLabState, found: list[tuple[EmulatedProject, IssueRecord]]
) -> web.Response:
    base = state.public_url(request)
    return page_of(request, [state.issue_json(p, i, base) for p, i in found])


async def list_project_issues(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    params = await read_params(request)
    query = IssueQuery.from_params(params)
    found = [(project, i) for i in state.project_issues(project) if query.accepts(state, i)]
    return _answer(request, state, _ordered(found, params))


async def list_all_issues(request: web.Request) -> web.Response:
    """`GET /issues`: by default only those the token's user created, as GitLab does."""
    state = request.app[STATE]
    params = await read_params(request)
    query = IssueQuery.from_params(params, default_scope="created_by_me")
    found = [(p, i) for p, i in state.all_issues() if query.accepts(state, i)]
    return _answer(request, state, _ordered(found, params))


def _assignee_ids(params: JSON) -> list[int] | None:
    ids = int_list_param(params, "assignee_ids")
    if ids is not None or params.get("assignee_ids") is not None:
        return ids or []
    single = int_param(params, "assignee_id")
    if single is None:
        return [] if "assignee_id" in params else None
    return [single]


async def create_issue(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    params = await read_params(request)
    title = text_param(params, "title")
    if title is None:
        raise invalid("title is missing")
    issue = state.create_issue(
        project,
        title,
        description=text_param(params, "description") or "",
        labels=list_param(params, "labels") or [],
        assignee_ids=_assignee_ids(params) or [],
    )
    body = state.issue_json(project, issue, state.public_url(request))
    return web.json_response(body, status=201)


async def get_issue(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    issue = state.find_issue(project, _iid(request))
    return web.json_response(state.issue_json(project, issue, state.public_url(request)))


async def edit_issue(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    iid = _iid(request)
    params = await read_params(request)
    if not any(name in params for name in _EDITABLE):
        raise invalid(
            ", ".join(_EDITABLE) + " are missing, at least one parameter must be provided"
        )
    state_event = text_param(params, "state_event")
    if state_event is not None and state_event not in _STATE_EVENTS:
        raise invalid("state_event does not have a valid value")
    issue = state.find_issue(project, iid)
    state.update_issue(
        issue,
        title=text_param(params, "title"),
        description=text_param(params, "description"),
        labels=list_param(params, "labels"),
        add_labels=list_param(params, "add_labels") or [],
        remove_labels=list_param(params, "remove_labels") or [],
        assignee_ids=_assignee_ids(params),
        state_event=state_event,
    )
    return web.json_response(state.issue_json(project, issue, state.public_url(request)))


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/issues", list_all_issues)
    app.router.add_get(f"{API}/projects/{{id}}/issues", list_project_issues)
    app.router.add_post(f"{API}/projects/{{id}}/issues", create_issue)
    app.router.add_get(f"{API}/projects/{{id}}/issues/{{iid}}", get_issue)
    app.router.add_put(f"{API}/projects/{{id}}/issues/{{iid}}", edit_issue)
