"""The shape a signed Slack body must have before Bolt or a job reads it.

Bolt reads a body's ids and nested objects without looking at their types
(slack_bolt/request/internals.py builds every request's context from `user`, `team`,
`channel`, `enterprise`, `authorizations`, `event`...; payload_utils.py takes `actions[0]` and
`view["type"]`), and so do the readers in `bot.slack_requests`. A body Slack would never send,
`{"type": "block_actions", "user": 1}`, would then raise inside Bolt: a 500 or a 503. Checked
here it gets a 400 that says what is wrong, e.g. "`user` must be an object".

Only the kinds of request opsloop answers reach Bolt (`HANDLED`); any other signed payload is
answered as Bolt answers a request no listener takes, without Bolt reading it. A listener for a
new kind (an event, a `block_suggestion`) needs its kind, and its shape, added here.

Each check raises `_Bad` at the first problem; the public functions return its text or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

Body = dict[str, Any]

# Bolt follows these into nested objects (an event's message, an authorization, ...) and reads
# the same ids there; deeper than this, nothing Slack sends goes.
MAX_DEPTH = 6
_ID_HOLDERS = ("user", "team", "channel", "enterprise")
_STRINGS = (
    "user_id",
    "team_id",
    "channel_id",
    "enterprise_id",
    "trigger_id",
    "response_url",
    "event_id",
    "function_execution_id",
    "bot_access_token",
)
_NESTED = ("message", "previous_message", "item", "assistant_thread")
_LONGEST_KEY_SHOWN = 40


class _Bad(Exception):
    """A body's first problem, as the 400 answer says it."""


def _fail(path: str, problem: str) -> NoReturn:
    raise _Bad(f"`{path}` {problem}")


def _at(path: str, key: str) -> str:
    shown = key if len(key) <= _LONGEST_KEY_SHOWN else key[:_LONGEST_KEY_SHOWN] + "…"
    return f"{path}.{shown}" if path else shown


def _text(data: Body, key: str, path: str, *, required: bool = False) -> None:
    value = data.get(key)
    if value is None:
        if required:
            _fail(_at(path, key), "is missing" if key not in data else "must be a string")
    elif not isinstance(value, str):
        _fail(_at(path, key), "must be a string")


def _object(data: Body, key: str, path: str, *, required: bool = False) -> Body:
    """`data[key]`, an object or absent (null counts as absent unless required)."""
    value = data.get(key)
    if value is None:
        if required:
            _fail(_at(path, key), "is missing" if key not in data else "must be an object")
        return {}
    if not isinstance(value, dict):
        _fail(_at(path, key), "must be an object")
    return value


def _objects(data: Body, key: str, path: str) -> list[Body]:
    """`data[key]`, a list of objects or absent."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        _fail(_at(path, key), "must be a list of objects")
    return value


def _readable(data: Body, path: str = "", depth: int = 0) -> None:
    """What Bolt reads of every request, at any depth it follows."""
    if depth > MAX_DEPTH:
        _fail(path, "is nested too deeply")
    for key in _ID_HOLDERS:
        value = data.get(key)
        if isinstance(value, dict):
            _text(value, "id", _at(path, key))
        elif value is not None and not isinstance(value, str):
            _fail(_at(path, key), "must be an object")
    for key in _STRINGS:
        _text(data, key, path)
    for i, authorization in enumerate(_objects(data, "authorizations", path)):
        _readable(authorization, _at(path, f"authorizations[{i}]"), depth + 1)
    for i, entry in enumerate(_objects(data, "response_urls", path)):
        _text(entry, "response_url", _at(path, f"response_urls[{i}]"))
    view = _object(data, "view", path)
    for key in ("team_id", "app_installed_team_id"):
        _text(view, key, _at(path, "view"))
    _text(_object(data, "function_data", path), "execution_id", _at(path, "function_data"))
    if "event" in data:  # Bolt reads `body.get("event", {}).get(...)`: not even null will do
        _readable(_object(data, "event", path, required=True), _at(path, "event"), depth + 1)
    for key in _NESTED:
        nested = _object(data, key, path)
        if nested:
            _readable(nested, _at(path, key), depth + 1)


def _person(body: Body) -> None:
    """An interaction's `user`: who clicked or submitted, an object with an id."""
    user = _object(body, "user", "", required=True)
    _text(user, "id", "user", required=True)
    for key in ("username", "name", "team_id"):
        _text(user, key, "user")


def _block_actions(body: Body) -> None:
    _person(body)
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        _fail("actions", "must be a list of at least one action")
    for i, action in enumerate(actions):
        where = f"actions[{i}]"
        if not isinstance(action, dict):
            _fail(where, "must be an object")
        _text(action, "action_id", where, required=True)
        for key in ("block_id", "value", "type", "action_ts"):
            _text(action, key, where)
        _text(_object(action, "selected_option", where), "value", f"{where}.selected_option")
    container = _object(body, "container", "")
    for key in ("channel_id", "message_ts", "thread_ts"):
        _text(container, key, "container")
    if container.get("is_ephemeral") not in (None, True, False):
        _fail("container.is_ephemeral", "must be true or false")
    for key in ("channel", "message", "state"):
        _object(body, key, "")


def _view(body: Body) -> None:
    _person(body)
    view = _object(body, "view", "", required=True)
    _text(view, "callback_id", "view", required=True)
    _text(view, "type", "view", required=True)
    for key in ("id", "private_metadata", "hash", "external_id", "root_view_id"):
        _text(view, key, "view")
    values = _object(_object(view, "state", "view"), "values", "view.state")
    for block_id, elements in values.items():
        where = _at("view.state.values", block_id)
        if not isinstance(elements, dict):
            _fail(where, "must be an object")
        for action_id, element in elements.items():
            if not isinstance(element, dict):
                _fail(_at(where, action_id), "must be an object")


def _shortcut(body: Body) -> None:
    _person(body)
    _text(body, "callback_id", "", required=True)
    _text(body, "message_ts", "")
    _object(body, "channel", "")
    message = _object(body, "message", "")
    for key in ("ts", "thread_ts", "text", "user", "bot_id"):
        _text(message, key, "message")


def _event_callback(body: Body) -> None:
    _text(_object(body, "event", "", required=True), "type", "event", required=True)


def _url_verification(body: Body) -> None:
    _text(body, "challenge", "", required=True)


_CHECKS: dict[str, Callable[[Body], None]] = {
    "block_actions": _block_actions,
    "view_submission": _view,
    "view_closed": _view,
    "message_action": _shortcut,
    "shortcut": _shortcut,
    "event_callback": _event_callback,
    "url_verification": _url_verification,
}
HANDLED = frozenset(_CHECKS)


def payload_problem(body: Body) -> str | None:
    """What is wrong with an interaction payload or an Events API body of a HANDLED kind."""
    try:
        if "command" in body:
            _fail("command", "belongs in a slash command's form, not in a JSON payload")
        _readable(body)
        _CHECKS[body["type"]](body)
    except _Bad as e:
        return str(e)
    return None


def form_problem(form: dict[str, str]) -> str | None:
    """What is wrong with a form (not a slash command's) that Bolt will read."""
    try:
        _readable(form)
    except _Bad as e:
        return str(e)
    return None
