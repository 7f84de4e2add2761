"""The GitLab emulator through raw HTTP: GitLab's shapes, auth, pagination and switches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from yarl import URL

from bot.sandbox.emulators.gitlab import EmulatedProject, EmulatedUser, GitLabEmulator


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or the text when it is not JSON


class Http:
    """Raw requests to the emulator, with its token unless told otherwise."""

    def __init__(self, session: aiohttp.ClientSession, emu: GitLabEmulator) -> None:
        self.session = session
        self.emu = emu

    async def __call__(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "default",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Answer:
        sent = dict(headers or {})
        if token == "default":
            token = self.emu.token
        if token is not None:
            sent["PRIVATE-TOKEN"] = token
        # encoded=True: a project path's %2F must reach the server as it is written here.
        url = URL(f"{self.emu.url}{path}", encoded=True)
        async with self.session.request(method, url, headers=sent, **kwargs) as response:
            text = await response.text()
            try:
                body: Any = await response.json(content_type=None)
            except ValueError:
                body = text
            return Answer(response.status, dict(response.headers), body)


@pytest.fixture
async def emu() -> AsyncIterator[GitLabEmulator]:
    emulator = GitLabEmulator()
    async with emulator.serve():
        yield emulator


@pytest.fixture
async def http(emu: GitLabEmulator) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(session, emu)


WEB = "/api/v4/projects/acme%2Fweb"


# -- auth ---------------------------------------------------------------------------------


async def test_a_missing_or_wrong_token_gets_401(http: Http) -> None:
    for token in (None, "glpat-wrong"):
        answer = await http("GET", "/api/v4/user", token=token)
        assert (answer.status, answer.body) == (401, {"message": "401 Unauthorized"})


async def test_the_token_works_as_header_bearer_or_query(http: Http, emu: GitLabEmulator) -> None:
    header = await http("GET", "/api/v4/user")
    bearer = await http(
        "GET", "/api/v4/user", token=None, headers={"Authorization": f"Bearer {emu.token}"}
    )
    query = await http("GET", f"/api/v4/user?private_token={emu.token}", token=None)
    assert header.status == bearer.status == query.status == 200
    assert header.body["username"] == "opsloop-bot"
    assert header.body["email"] == "opsloop-bot@example.com"


async def test_recorded_requests_never_carry_the_token(http: Http, emu: GitLabEmulator) -> None:
    await http("GET", f"/api/v4/version?private_token={emu.token}", token=None)
    await http("GET", "/api/v4/version")
    for recorded in emu.requests:
        assert emu.token not in repr(recorded)


async def test_version(http: Http) -> None:
    answer = await http("GET", "/api/v4/version")
    assert answer.status == 200
    assert answer.body["version"] == "17.5.0"
    assert "revision" in answer.body


# -- projects ------------------------------------------------------------------------------


async def test_a_project_by_id_or_url_encoded_path(http: Http, emu: GitLabEmulator) -> None:
    by_id = await http("GET", "/api/v4/projects/1")
    by_path = await http("GET", WEB)
    assert by_id.status == by_path.status == 200
    assert by_id.body == by_path.body
    assert by_id.body["path_with_namespace"] == "acme/web"
    assert by_id.body["default_branch"] == "main"
    assert by_id.body["web_url"] == f"{emu.url}/acme/web"
    assert by_id.body["namespace"]["full_path"] == "acme"


async def test_an_unknown_project_is_gitlabs_404(http: Http) -> None:
    for path in ("/api/v4/projects/acme%2Fnope", "/api/v4/projects/999", f"{WEB}x/issues"):
        answer = await http("GET", path)
        assert (answer.status, answer.body) == (404, {"message": "404 Project Not Found"})


async def test_an_unknown_route_is_gitlabs_404(http: Http) -> None:
    answer = await http("GET", "/api/v4/nothing/here")
    assert (answer.status, answer.body) == (404, {"error": "404 Not Found"})


async def test_project_members(http: Http) -> None:
    answer = await http("GET", f"{WEB}/members/all")
    assert answer.status == 200
    names = {m["username"]: m["access_level"] for m in answer.body}
    assert names == {"alice": 30, "bob": 30, "carol": 30, "opsloop-bot": 40}
    assert answer.headers["X-Total"] == "4"


# -- issues --------------------------------------------------------------------------------


async def test_create_an_issue_from_json(http: Http, emu: GitLabEmulator) -> None:
    answer = await http(
        "POST",
        f"{WEB}/issues",
        json={"title": "Flaky test", "description": "It fails", "labels": "ci,bug"},
    )
    assert answer.status == 201
    issue = answer.body
    assert issue["iid"] == 1
    assert issue["project_id"] == 1
    assert issue["state"] == "opened"
    assert issue["labels"] == ["bug", "ci"]
    assert issue["assignees"] == [] and issue["assignee"] is None
    assert issue["author"]["username"] == "opsloop-bot"
    assert issue["web_url"] == f"{emu.url}/acme/web/-/issues/1"
    assert issue["references"] == {"short": "#1", "relative": "#1", "full": "acme/web#1"}
    assert issue["created_at"].endswith("Z") and issue["closed_at"] is None
    assert set(issue["author"]) >= {"id", "username", "name", "state", "avatar_url", "web_url"}
    assert emu.issues("acme/web") == [issue]


async def test_create_an_issue_from_a_form(http: Http) -> None:
    form = [("title", "From a form"), ("labels", "a,b"), ("assignee_ids[]", "1")]
    form.append(("assignee_ids[]", "2"))
    answer = await http("POST", f"{WEB}/issues", data=form)
    assert answer.status == 201
    assert [a["username"] for a in answer.body["assignees"]] == ["alice", "bob"]
    assert answer.body["assignee"]["username"] == "alice"
    assert answer.body["labels"] == ["a", "b"]


async def test_iids_count_per_project_from_1(http: Http) -> None:
    web = [await http("POST", f"{WEB}/issues", json={"title": f"w{n}"}) for n in range(2)]
    api = await http("POST", "/api/v4/projects/2/issues", json={"title": "a"})
    assert [a.body["iid"] for a in web] == [1, 2]
    assert api.body["iid"] == 1
    assert api.body["references"]["full"] == "acme/api#1"
    assert len({a.body["id"] for a in [*web, api]}) == 3


async def test_a_blank_or_missing_title_is_refused_like_gitlab(http: Http) -> None:
    blank = await http("POST", f"{WEB}/issues", json={"title": "  "})
    missing = await http("POST", f"{WEB}/issues", json={"description": "x"})
    assert (blank.status, blank.body) == (400, {"message": {"title": ["can't be blank"]}})
    assert (missing.status, missing.body) == (400, {"error": "title is missing"})


async def test_get_an_issue(http: Http) -> None:
    await http("POST", f"{WEB}/issues", json={"title": "One", "assignee_id": 3})
    answer = await http("GET", f"{WEB}/issues/1")
    assert answer.status == 200
    assert answer.body["title"] == "One"
    assert answer.body["assignee"]["username"] == "carol"
    unknown = await http("GET", f"{WEB}/issues/7")
    assert (unknown.status, unknown.body) == (404, {"message": "404 Not found"})
    not_a_number = await http("GET", f"{WEB}/issues/x")
    assert not_a_number.status == 400


async def test_close_and_reopen_with_state_event(http: Http, emu: GitLabEmulator) -> None:
    await http("POST", f"{WEB}/issues", json={"title": "One"})
    closed = await http("PUT", f"{WEB}/issues/1", json={"state_event": "close"})
    assert closed.status == 200
    assert closed.body["state"] == "closed"
    assert closed.body["closed_at"] is not None
    assert closed.body["closed_by"]["username"] == "opsloop-bot"
    assert emu.issues("acme/web")[0]["state"] == "closed"
    again = await http("PUT", f"{WEB}/issues/1", json={"state_event": "close"})
    assert again.body["state"] == "closed"
    reopened = await http("PUT", f"{WEB}/issues/1", data={"state_event": "reopen"})
    assert reopened.body["state"] == "opened"
    assert reopened.body["closed_at"] is None


async def test_edit_labels_assignees_title(http: Http) -> None:
    await http("POST", f"{WEB}/issues", json={"title": "One", "labels": ["a"]})
    edited = await http(
        "PUT",
        f"{WEB}/issues/1",
        json={"title": "Two", "add_labels": "b", "assignee_ids": [2], "description": "d"},
    )
    assert edited.status == 200
    assert (edited.body["title"], edited.body["description"]) == ("Two", "d")
    assert edited.body["labels"] == ["a", "b"]
    assert [a["username"] for a in edited.body["assignees"]] == ["bob"]
    unassigned = await http("PUT", f"{WEB}/issues/1", json={"assignee_ids": [0], "labels": ""})
    assert unassigned.body["assignees"] == [] and unassigned.body["labels"] == []


async def test_bad_edits_are_400(http: Http) -> None:
    await http("POST", f"{WEB}/issues", json={"title": "One"})
    nothing = await http("PUT", f"{WEB}/issues/1", json={})
    bad_event = await http("PUT", f"{WEB}/issues/1", json={"state_event": "explode"})
    blank = await http("PUT", f"{WEB}/issues/1", json={"title": ""})
    assert nothing.status == bad_event.status == blank.status == 400
    assert blank.body == {"message": {"title": ["can't be blank"]}}
    missing = await http("PUT", f"{WEB}/issues/9", json={"state_event": "close"})
    assert (missing.status, missing.body) == (404, {"message": "404 Not found"})


async def test_list_filters(http: Http, emu: GitLabEmulator) -> None:
    emu.add_issue("acme/web", "Login broken", labels=["bug"], assignees=["alice"])
    emu.add_issue("acme/web", "Dark mode", labels=["feature"], assignees=["bob"])
    emu.add_issue("acme/web", "Old crash", labels=["bug"], state="closed")
    emu.add_issue("acme/api", "Elsewhere", assignees=["alice"])

    async def titles(query: str) -> list[str]:
        answer = await http("GET", f"{WEB}/issues?{query}")
        assert answer.status == 200, answer.body
        return [i["title"] for i in answer.body]

    assert await titles("") == ["Old crash", "Dark mode", "Login broken"]  # all, newest first
    assert await titles("state=opened") == ["Dark mode", "Login broken"]
    assert await titles("state=closed") == ["Old crash"]
    assert await titles("labels=bug") == ["Old crash", "Login broken"]
    assert await titles("assignee_username=alice") == ["Login broken"]
    assert await titles("assignee_id=2") == ["Dark mode"]
    assert await titles("assignee_id=None") == ["Old crash"]
    assert await titles("search=DARK") == ["Dark mode"]
    assert await titles("order_by=title&sort=asc") == ["Dark mode", "Login broken", "Old crash"]
    bad = await http("GET", f"{WEB}/issues?state=sleeping")
    assert (bad.status, bad.body) == (400, {"error": "state does not have a valid value"})
    everywhere = await http("GET", "/api/v4/issues?scope=all&assignee_username=alice")
    assert [i["references"]["full"] for i in everywhere.body] == ["acme/api#1", "acme/web#1"]


async def test_pagination_headers_and_link(http: Http, emu: GitLabEmulator) -> None:
    for n in range(25):
        emu.add_issue("acme/web", f"Issue {n}")
    answer = await http("GET", f"{WEB}/issues?state=opened&per_page=10&page=2")
    assert answer.status == 200
    assert len(answer.body) == 10
    headers = answer.headers
    assert headers["X-Total"] == "25"
    assert headers["X-Total-Pages"] == "3"
    assert (headers["X-Page"], headers["X-Per-Page"]) == ("2", "10")
    assert (headers["X-Next-Page"], headers["X-Prev-Page"]) == ("3", "1")
    links = {
        part.split('rel="')[1].rstrip('"'): part.split(">")[0].lstrip(" <")
        for part in headers["Link"].split(",")
    }
    assert set(links) == {"prev", "next", "first", "last"}
    assert links["next"] == f"{emu.url}{WEB}/issues?state=opened&page=3&per_page=10"
    last = await http("GET", f"{WEB}/issues?per_page=10&page=3")
    assert len(last.body) == 5
    assert last.headers["X-Next-Page"] == ""
    assert 'rel="next"' not in last.headers["Link"]
    default = await http("GET", f"{WEB}/issues")
    assert len(default.body) == 20 and default.headers["X-Per-Page"] == "20"
    capped = await http("GET", f"{WEB}/issues?per_page=500")
    assert capped.headers["X-Per-Page"] == "100"


# -- users ---------------------------------------------------------------------------------


async def test_user_search_by_email_name_and_username(http: Http) -> None:
    by_email = await http("GET", "/api/v4/users?search=Bob@Example.com")
    assert [u["username"] for u in by_email.body] == ["bob"]
    assert "email" not in by_email.body[0]  # private: found, never shown
    by_part_of_email = await http("GET", "/api/v4/users?search=example.com")
    assert by_part_of_email.body == []
    by_name = await http("GET", "/api/v4/users?search=oncall")
    assert [u["username"] for u in by_name.body] == ["carol"]
    by_username = await http("GET", "/api/v4/users?username=alice")
    assert [u["username"] for u in by_username.body] == ["alice"]
    nobody = await http("GET", "/api/v4/users?username=ali")
    assert (nobody.status, nobody.body) == (200, [])
    user = await http("GET", "/api/v4/users/1")
    assert user.body["username"] == "alice" and user.body["state"] == "active"
    unknown = await http("GET", "/api/v4/users/999")
    assert (unknown.status, unknown.body) == (404, {"message": "404 User Not Found"})


async def test_users_and_projects_can_be_chosen() -> None:
    emu = GitLabEmulator(
        token="t",
        users=[EmulatedUser(7, "zed", "Zed", "zed@example.com")],
        projects=[EmulatedProject(5, "team/app", "trunk", ["zed"])],
    )
    async with emu.serve(), aiohttp.ClientSession() as session:
        http = Http(session, emu)
        project = await http("GET", "/api/v4/projects/team%2Fapp")
        users = await http("GET", "/api/v4/users?search=zed@example.com")
    assert project.body["default_branch"] == "trunk"
    assert [u["id"] for u in users.body] == [7]


# -- switches and malformed requests ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"message": "401 Unauthorized"}),
        (403, {"message": "403 Forbidden"}),
        (404, {"message": "404 Not found"}),
        (500, {"message": "500 Internal Server Error"}),
    ],
)
async def test_fail_answers_gitlabs_json(
    http: Http, emu: GitLabEmulator, status: int, body: dict[str, str]
) -> None:
    emu.fail(status)
    for _ in range(3):
        answer = await http("GET", WEB)
        assert (answer.status, answer.body) == (status, body)
    emu.heal()
    assert (await http("GET", WEB)).status == 200


async def test_fail_429_carries_retry_after(http: Http, emu: GitLabEmulator) -> None:
    emu.fail(429, retry_after=7)
    answer = await http("GET", WEB)
    assert answer.status == 429
    assert answer.headers["Retry-After"] == "7"
    assert answer.headers["RateLimit-Remaining"] == "0"
    assert int(answer.headers["RateLimit-Reset"]) >= int(time.time()) + 6
    assert answer.body.strip() == "Retry later"


async def test_fail_502_is_the_proxys_html_page(http: Http, emu: GitLabEmulator) -> None:
    emu.fail(502)
    answer = await http("GET", WEB)
    assert answer.status == 502
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "502" in answer.body


async def test_fail_times_path_and_method(http: Http, emu: GitLabEmulator) -> None:
    emu.fail(500, times=2, path="*/issues", method="POST")
    assert (await http("GET", f"{WEB}/issues")).status == 200
    assert (await http("GET", WEB)).status == 200
    statuses = [(await http("POST", f"{WEB}/issues", json={"title": "x"})).status for _ in "abc"]
    assert statuses == [500, 500, 201]
    emu.fail(403, path="/api/v4/projects/acme/web")  # decoded form matches too
    assert (await http("GET", WEB)).status == 403
    assert (await http("GET", "/api/v4/projects/acme%2Fapi")).status == 200


async def test_fail_after_handling_does_the_work(http: Http, emu: GitLabEmulator) -> None:
    emu.fail(504, times=1, method="POST", after_handling=True)
    answer = await http("POST", f"{WEB}/issues", json={"title": "Made anyway"})
    assert answer.status == 504
    assert [i["title"] for i in emu.issues("acme/web")] == ["Made anyway"]


async def test_delay_holds_every_answer(http: Http, emu: GitLabEmulator) -> None:
    emu.delay = 0.3
    started = time.monotonic()
    assert (await http("GET", "/api/v4/version")).status == 200
    assert time.monotonic() - started >= 0.3


async def test_delay_by_path_and_release(http: Http, emu: GitLabEmulator) -> None:
    emu.delays["*/issues*"] = 30.0
    started = time.monotonic()
    assert (await http("GET", "/api/v4/version")).status == 200
    assert time.monotonic() - started < 1.0
    held = asyncio.create_task(http("GET", f"{WEB}/issues"))
    await asyncio.sleep(0.2)
    assert not held.done()
    assert emu.requests[-1].status is None  # recorded on arrival, not answered yet
    emu.delays.clear()
    assert (await asyncio.wait_for(held, 2.0)).status == 200
    assert emu.requests[-1].status == 200


async def test_hold_by_method_after_the_work_and_release(http: Http, emu: GitLabEmulator) -> None:
    hold = emu.hold("*/issues", 30.0, method="POST", after_handling=True)
    held = asyncio.create_task(http("POST", f"{WEB}/issues", json={"title": "Filed, unheard"}))
    await asyncio.sleep(0.2)
    assert not held.done()
    # The issue exists while its answer waits; a look at the issues is not held.
    listed = await asyncio.wait_for(http("GET", f"{WEB}/issues"), 1.0)
    assert [i["title"] for i in listed.body] == ["Filed, unheard"]
    hold.seconds = 0
    assert (await asyncio.wait_for(held, 2.0)).status == 201


async def test_hold_before_the_work_finishes_after_the_client_left(
    http: Http, emu: GitLabEmulator
) -> None:
    emu.hold("*/issues", 30.0, method="POST")
    held = asyncio.create_task(http("POST", f"{WEB}/issues", json={"title": "Slow create"}))
    await asyncio.sleep(0.2)
    held.cancel()  # the client gives up, as after its time-out
    await asyncio.sleep(0.1)
    assert emu.issues("acme/web") == []
    emu.release_holds()

    async def filed() -> bool:
        return bool(emu.issues("acme/web"))

    deadline = time.monotonic() + 2
    while not await filed():
        assert time.monotonic() < deadline, "the held request was not handled"
        await asyncio.sleep(0.02)


async def test_malformed_bodies_are_400_never_500(http: Http, emu: GitLabEmulator) -> None:
    json_header = {"Content-Type": "application/json"}
    broken = await http("POST", f"{WEB}/issues", data=b'{"title": ', headers=json_header)
    not_object = await http("POST", f"{WEB}/issues", data=b'["title"]', headers=json_header)
    not_utf8 = await http("POST", f"{WEB}/issues", data=b"title=\xff\xfe", headers={})
    wrong_type = await http("POST", f"{WEB}/issues", json={"title": {"a": 1}})
    assert [a.status for a in (broken, not_object, not_utf8, wrong_type)] == [400] * 4
    assert broken.body == {"error": "the request body is not valid JSON"}
    assert emu.issues("acme/web") == []
    assert [r.status for r in emu.requests] == [400] * 4


async def test_requests_are_recorded(http: Http, emu: GitLabEmulator) -> None:
    await http("POST", f"{WEB}/issues?confidential=false", json={"title": "Recorded"})
    await http("GET", f"{WEB}/issues?state=opened")
    post, get = emu.requests
    assert (post.method, post.path, post.status) == ("POST", f"{WEB}/issues", 201)
    assert post.body == {"title": "Recorded"}
    assert post.query == {"confidential": "false"}
    assert (get.method, get.query, get.body, get.status) == ("GET", {"state": "opened"}, None, 200)
    assert post.at <= get.at
    assert emu.requests_to("*/issues", "POST") == [post]
