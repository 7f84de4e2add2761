"""Branches, tags and commits: `GET /projects/:id/repository/...`."""

from __future__ import annotations

from aiohttp import web

from . import ci_shapes
from .http import invalid, not_found, page_of, read_params, text_param
from .state import STATE

API = "/api/v4"


async def list_branches(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    repo = state.repos.of(project)
    params = await read_params(request)
    search = (text_param(params, "search") or "").lower()
    base = state.public_url(request)
    found = [
        ci_shapes.branch(name, repo.commit(sha), project, base)
        for name, sha in sorted(repo.branches.items())
        if search in name.lower()
    ]
    return page_of(request, found)


async def get_branch(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    repo = state.repos.of(project)
    name = request.match_info["branch"]
    head = repo.commit(repo.branch(name))
    return web.json_response(ci_shapes.branch(name, head, project, state.public_url(request)))


async def list_tags(request: web.Request) -> web.Response:
    """Newest first by default (`order_by=updated`), or by name."""
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    repo = state.repos.of(project)
    params = await read_params(request)
    order_by = text_param(params, "order_by") or "updated"
    sort = text_param(params, "sort") or "desc"
    if order_by not in ("name", "updated", "version") or sort not in ("asc", "desc"):
        raise invalid("order_by does not have a valid value")
    search = (text_param(params, "search") or "").lower()
    tags = [t for t in repo.tags.values() if search in t.name.lower()]
    if order_by == "updated":
        tags.sort(key=lambda t: (repo.commit(t.sha).at, t.name), reverse=sort == "desc")
    else:
        tags.sort(key=lambda t: t.name, reverse=sort == "desc")
    base = state.public_url(request)
    return page_of(request, [ci_shapes.tag(t, repo.commit(t.sha), project, base) for t in tags])


async def get_tag(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    repo = state.repos.of(project)
    tag = repo.tag(request.match_info["tag"])
    body = ci_shapes.tag(tag, repo.commit(tag.sha), project, state.public_url(request))
    return web.json_response(body)


async def get_commit(request: web.Request) -> web.Response:
    """A commit by sha, or by a branch or tag name, as GitLab accepts both."""
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    repo = state.repos.of(project)
    ref = request.match_info["sha"]
    resolved = repo.resolve(ref)
    found = repo.commit(resolved[1] if resolved else ref)
    return web.json_response(ci_shapes.commit(found, project, state.public_url(request)))


async def compare(request: web.Request) -> web.Response:
    """`GET .../repository/compare?from=&to=`: the commits from `from` to `to` (branches, tags
    or shas), or GitLab's `404 Ref Not Found` when either is unknown."""
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    repo = state.repos.of(project)
    params = await read_params(request)
    from_ref, to_ref = text_param(params, "from"), text_param(params, "to")
    if not from_ref or not to_ref:
        raise invalid("from is missing, to is missing" if not from_ref else "to is missing")
    ends = []
    for ref in (from_ref, to_ref):
        resolved = repo.resolve(ref)
        sha = resolved[1] if resolved else next((s for s in repo.commits if s == ref), None)
        if sha is None:
            raise not_found("Ref")
        ends.append(sha)
    base = state.public_url(request)
    commits = repo.between(ends[0], ends[1])
    head = repo.commit(ends[1])
    return web.json_response(
        {
            "commit": ci_shapes.commit(head, project, base) if commits else None,
            "commits": [ci_shapes.commit(c, project, base) for c in commits],
            "diffs": [],
            "compare_timeout": False,
            "compare_same_ref": ends[0] == ends[1],
            "web_url": f"{base}/{project.path_with_namespace}/-/compare/{ends[0]}...{ends[1]}",
        }
    )


def add_routes(app: web.Application) -> None:
    repository = f"{API}/projects/{{id}}/repository"
    app.router.add_get(f"{repository}/branches", list_branches)
    app.router.add_get(f"{repository}/branches/{{branch}}", get_branch)
    app.router.add_get(f"{repository}/tags", list_tags)
    app.router.add_get(f"{repository}/tags/{{tag}}", get_tag)
    app.router.add_get(f"{repository}/commits/{{sha}}", get_commit)
    app.router.add_get(f"{repository}/compare", compare)
