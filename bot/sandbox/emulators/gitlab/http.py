"""Reading GitLab API requests and writing its answers: parameters, errors, pagination."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from multidict import MultiMapping

from .models import JSON

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100


class ApiError(Exception):
    """An answer other than success, with GitLab's JSON body for it."""

    def __init__(self, status: int, body: JSON | str) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body

    def response(self) -> web.Response:
        if isinstance(self.body, str):
            return web.Response(status=self.status, text=self.body, content_type="text/plain")
        return web.json_response(self.body, status=self.status)


def not_found(what: str = "") -> ApiError:
    """GitLab's 404: `404 Project Not Found` for a named kind, `404 Not found` for a record."""
    return ApiError(404, {"message": f"404 {what} Not Found" if what else "404 Not found"})


def invalid(message: str) -> ApiError:
    """A parameter GitLab's API layer refused (Grape): `{"error": "state does not have ..."}`."""
    return ApiError(400, {"error": message})


def unprocessable(field: str, problem: str) -> ApiError:
    """A record GitLab's model refused: `{"message": {"title": ["can't be blank"]}}`."""
    return ApiError(400, {"message": {field: [problem]}})


def _merge(params: JSON, pairs: Sequence[tuple[str, str]]) -> None:
    """Form or query pairs into params; `name[]` repeated gathers a list, as Rails reads it."""
    for key, value in pairs:
        if key.endswith("[]"):
            existing = params.get(key[:-2])
            params[key[:-2]] = [*existing, value] if isinstance(existing, list) else [value]
        else:
            params[key] = value


async def read_body(request: web.Request) -> JSON:
    """The body as a dict: a JSON object or form fields; empty without a body."""
    params: JSON = {}
    if not request.body_exists:
        return params
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        _merge(params, [(k, v) for k, v in form.items() if isinstance(v, str)])
        return params
    raw = await request.read()
    if not raw.strip():
        return params
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise invalid("the request body is not UTF-8") from e
    if request.content_type == "application/json":
        try:
            body: Any = json.loads(text)
        except ValueError as e:
            raise invalid("the request body is not valid JSON") from e
        if not isinstance(body, dict):
            raise invalid("the request body must be a JSON object")
        params.update(body)
    else:
        _merge(params, parse_qsl(text, keep_blank_values=True))
    return params


async def read_params(request: web.Request) -> JSON:
    """The query string and the body as one dict, like GitLab's `params` (the body wins)."""
    params: JSON = {}
    _merge(params, list(request.query.items()))
    params.update(await read_body(request))
    return params


def text_param(params: JSON, name: str) -> str | None:
    """A string parameter; numbers and booleans sent as JSON are read as GitLab would."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise invalid(f"{name} is invalid")


def time_param(params: JSON, name: str) -> datetime | None:
    """An ISO 8601 time (`created_after=...`); a time without a zone is UTC, as in GitLab."""
    value = text_param(params, name)
    if not value:
        return None
    try:
        # A `+` of the zone arrives as a space when the client did not escape it.
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as e:
        raise invalid(f"{name} is invalid") from e
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def int_param(params: JSON, name: str) -> int | None:
    value = text_param(params, name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as e:
        raise invalid(f"{name} is invalid") from e


def list_param(params: JSON, name: str) -> list[str] | None:
    """A list sent as a JSON array, `name[]=a&name[]=b`, or the comma-separated `a,b`."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        items = [str(v) for v in value if v is not None]
    elif isinstance(value, str | int):
        items = str(value).split(",")
    else:
        raise invalid(f"{name} is invalid")
    return [item.strip() for item in items if item.strip()]


def int_list_param(params: JSON, name: str) -> list[int] | None:
    items = list_param(params, name)
    if items is None:
        return None
    try:
        return [int(item) for item in items]
    except ValueError as e:
        raise invalid(f"{name} is invalid") from e


def page_of(request: web.Request, items: Sequence[JSON]) -> web.Response:
    """One page of `items` with GitLab's offset-pagination headers and `Link`."""
    query = request.query
    page = max(_positive(query, "page", 1), 1)
    per_page = _positive(query, "per_page", DEFAULT_PER_PAGE)
    per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
    total = len(items)
    pages = max(1, -(-total // per_page))
    start = (page - 1) * per_page
    headers = {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Total": str(total),
        "X-Total-Pages": str(pages),
        "X-Next-Page": str(page + 1) if page < pages else "",
        "X-Prev-Page": str(page - 1) if 1 < page <= pages + 1 else "",
    }
    links = []
    if headers["X-Prev-Page"]:
        links.append((page - 1, "prev"))
    if headers["X-Next-Page"]:
        links.append((page + 1, "next"))
    links += [(1, "first"), (pages, "last")]
    headers["Link"] = ", ".join(
        f'<{_page_url(request, query, n, per_page)}>; rel="{rel}"' for n, rel in links
    )
    return web.json_response(list(items[start : start + per_page]), headers=headers)


def _positive(query: MultiMapping[str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as e:
        raise invalid(f"{name} is invalid") from e


def _page_url(request: web.Request, query: MultiMapping[str], page: int, per_page: int) -> str:
    pairs = [(k, v) for k, v in query.items() if k not in ("page", "per_page")]
    pairs += [("page", str(page)), ("per_page", str(per_page))]
    return f"{request.scheme}://{request.host}{request.rel_url.raw_path}?{urlencode(pairs)}"
