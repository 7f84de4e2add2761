"""The Jira REST endpoints opsloop uses, v3 (Cloud, ADF descriptions) and v2 (Data Center,
plain-text descriptions), in the shapes of Jira Cloud's OpenAPI description."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .jql import JqlError, compile_jql
from .state import (
    CUSTOM_FIELDS,
    STATUSES,
    TRANSITIONS,
    IssueRecord,
    adf_doc,
    issue_json,
    now,
    status_json,
    user_json,
    valid_adf,
)

if TYPE_CHECKING:
    from .emulator import JiraEmulator


ACCOUNT = web.RequestKey("account", str)  # the account the request's credentials prove


def errors(
    status: int, messages: list[str], by_field: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"errorMessages": messages, "errors": by_field or {}}, status=status)


class _Api:
    def __init__(self, emu: JiraEmulator) -> None:
        self.emu = emu

    def base(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def version(self, request: web.Request) -> str:
        v = request.match_info["v"]
        if v not in ("2", "3"):
            raise web.HTTPNotFound()
        return v

    def user(self, request: web.Request) -> str:
        return request[ACCOUNT]

    def may_use(self, project: str, account: str) -> bool:
        known = self.emu.projects.get(project)
        return known is not None and (not known.members or account in known.members)

    def find(self, request: web.Request) -> IssueRecord:
        ref = request.match_info["key"]
        issue = self.emu.issues.get(ref.upper()) or next(
            (i for i in self.emu.issues.values() if str(i.id) == ref), None
        )
        if issue is None or not self.may_use(issue.project, self.user(request)):
            raise web.HTTPNotFound(
                text='{"errorMessages":["Issue does not exist or you do not have permission '
                'to see it."],"errors":{}}',
                content_type="application/json",
            )
        return issue

    def shown(self, request: web.Request, issue: IssueRecord) -> dict[str, Any]:
        return issue_json(self.base(request), issue, self.emu.users, self.version(request))

    def problems(
        self, fields: dict[str, Any], key: str, v: str
    ) -> tuple[dict[str, str], str | None, list[Any]]:
        """What Jira says about a create's fields, by field, as its 400 does."""
        problems: dict[str, str] = {}
        summary = str(fields.get("summary") or "")
        if not summary:
            problems["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            problems["summary"] = "Summary must be less than 255 characters."
        description = fields.get("description")
        if description is not None:
            if v == "3" and not valid_adf(description):
                problems["description"] = "Operation value must be an Atlassian Document."
            elif v == "2" and not isinstance(description, str):
                problems["description"] = "Operation value must be a string"
        for custom in self.emu.projects[key].required:
            if not fields.get(custom):
                problems[custom] = f"{CUSTOM_FIELDS.get(custom, custom)} is required."
        assignee = _account_of(fields.get("assignee"), v)
        if assignee is not None and assignee not in self.emu.users:
            problems["assignee"] = f"User '{assignee}' does not exist."
        labels = fields.get("labels") or []
        if any((not isinstance(x, str)) or " " in x for x in labels):
            problems["labels"] = "The label must not contain spaces."
        return problems, assignee, labels

    async def create(self, request: web.Request) -> web.Response:
        v = self.version(request)
        body = await request.json()
        fields = body.get("fields") or {}
        key = str((fields.get("project") or {}).get("key") or "")
        if key not in self.emu.projects:
            return errors(400, [], {"project": "Specify a valid project ID or key"})
        if not self.may_use(key, self.user(request)):
            return errors(403, ["You do not have permission to create issues in this project."])
        problems, assignee, labels = self.problems(fields, key, v)
        if problems:
            return errors(400, [], problems)
        summary, description = str(fields["summary"]), fields.get("description")
        number = next(self.emu.numbers[key])
        issue = IssueRecord(
            id=next(self.emu.ids),
            key=f"{key}-{number}",
            project=key,
            summary=summary,
            description=description if v == "3" else adf_doc(str(description or "")),
            labels=[str(x) for x in labels],
            assignee=assignee,
            reporter=self.user(request),
            status=STATUSES[0],
            created=now(),
            issuetype=str((fields.get("issuetype") or {}).get("name") or "Task"),
        )
        self.emu.issues[issue.key] = issue
        return web.json_response(
            {"id": str(issue.id), "key": issue.key, "self": self.shown(request, issue)["self"]},
            status=201,
        )

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(self.shown(request, self.find(request)))

    async def assign(self, request: web.Request) -> web.Response:
        issue = self.find(request)
        account = _account_of(await request.json(), self.version(request))
        if account is not None and account not in self.emu.users:
            return errors(400, [], {"assignee": f"User '{account}' does not exist."})
        issue.assignee = account
        return web.Response(status=204)

    async def transitions(self, request: web.Request) -> web.Response:
        self.find(request)
        shown_ = [
            {"id": tid, "name": status.name, "to": status_json(status), "isGlobal": True}
            for tid, status in TRANSITIONS.items()
        ]
        return web.json_response({"expand": "transitions", "transitions": shown_})

    async def transition(self, request: web.Request) -> web.Response:
        issue = self.find(request)
        body = await request.json()
        tid = str((body.get("transition") or {}).get("id") or "")
        if tid not in TRANSITIONS:
            return errors(400, [f"Transition id '{tid}' is not valid for this issue."])
        issue.status = TRANSITIONS[tid]
        return web.Response(status=204)

    async def search(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            body = await request.json()
            jql, limit = str(body.get("jql") or ""), int(body.get("maxResults") or 50)
        else:
            jql = request.query.get("jql", "")
            limit = int(request.query.get("maxResults", "50"))
        try:
            match, newest_first = compile_jql(jql)
        except JqlError as e:
            return errors(400, [str(e)])
        account = self.user(request)
        found = [
            i for i in self.emu.issues.values() if self.may_use(i.project, account) and match(i)
        ]
        found.sort(key=lambda i: (i.created, i.id), reverse=newest_first)
        page = [self.shown(request, i) for i in found[: max(0, min(limit, 100))]]
        if request.path.endswith("/search/jql"):  # Cloud's current search: token paging
            return web.json_response({"issues": page, "isLast": True})
        return web.json_response(
            {"startAt": 0, "maxResults": limit, "total": len(found), "issues": page}
        )

    async def user_search(self, request: web.Request) -> web.Response:
        v = self.version(request)
        exact = request.query.get("accountId")
        if exact is not None:  # Cloud's lookup of one account by its id
            found = self.emu.users.get(exact)
            return web.json_response([user_json(self.base(request), found, v)] if found else [])
        query = (request.query.get("query") or request.query.get("username") or "").lower()
        if not query:
            return errors(400, ["The query parameter 'query' is required."])
        hits = [
            u
            for u in self.emu.users.values()
            if query in u.email.lower()
            or query in u.display_name.lower()
            or query == u.account_id.lower()
        ]
        return web.json_response([user_json(self.base(request), u, v) for u in hits])

    async def myself(self, request: web.Request) -> web.Response:
        me = self.emu.users[self.user(request)]
        return web.json_response(user_json(self.base(request), me, self.version(request)))

    async def server_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "baseUrl": self.base(request),
                "version": self.emu.version,
                "deploymentType": self.emu.deployment,
            }
        )

    async def field_list(self, request: web.Request) -> web.Response:
        shown_ = [{"id": "summary", "name": "Summary", "custom": False}] + [
            {"id": fid, "key": fid, "name": name, "custom": True}
            for fid, name in CUSTOM_FIELDS.items()
        ]
        return web.json_response(shown_)


def add_routes(app: web.Application, emu: JiraEmulator) -> None:
    api = _Api(emu)
    root = "/rest/api/{v}"
    app.router.add_post(root + "/issue", api.create)
    app.router.add_get(root + "/issue/{key}", api.get)
    app.router.add_put(root + "/issue/{key}/assignee", api.assign)
    app.router.add_get(root + "/issue/{key}/transitions", api.transitions)
    app.router.add_post(root + "/issue/{key}/transitions", api.transition)
    for path in ("/search", "/search/jql"):
        app.router.add_get(root + path, api.search)
        app.router.add_post(root + path, api.search)
    app.router.add_get(root + "/user/search", api.user_search)
    app.router.add_get(root + "/myself", api.myself)
    app.router.add_get(root + "/serverInfo", api.server_info)
    app.router.add_get(root + "/field", api.field_list)


def _account_of(value: Any, version: str) -> str | None:
    """`{"accountId": ...}` on Cloud, `{"name": ...}` on Data Center; null unassigns."""
    if not isinstance(value, dict):
        return None
    found = (
        value.get("accountId") if version == "3" else value.get("name") or value.get("accountId")
    )
    return str(found) if found else None


def counters() -> itertools.count[int]:
    return itertools.count(1)
