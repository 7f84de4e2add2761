"""Modals as Slack keeps them: a stack per user, each view with an id, a hash and a root."""

from __future__ import annotations

import copy
import secrets
import string

from .lookup import with_generated_ids
from .models import JSON, View
from .state import WorkspaceState

MAX_STACK = 3


def _view_id() -> str:
    return "V" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10))


def _view_hash(state: WorkspaceState) -> str:
    return f"{int(state.clock())}.{secrets.token_hex(4)}"


def render(state: WorkspaceState, view: View, payload: JSON) -> JSON:
    """The full view object as Slack returns it from views.* and sends it in payloads."""
    out = copy.deepcopy(payload)
    out["blocks"] = with_generated_ids(payload.get("blocks") or [])
    out.update(
        {
            "id": view.id,
            "team_id": state.team_id,
            "private_metadata": payload.get("private_metadata", ""),
            "callback_id": payload.get("callback_id", ""),
            "external_id": payload.get("external_id", ""),
            "state": {"values": {}},
            "hash": view.hash,
            "clear_on_close": bool(payload.get("clear_on_close", False)),
            "notify_on_close": bool(payload.get("notify_on_close", False)),
            "root_view_id": view.root_view_id,
            "previous_view_id": view.previous_view_id,
            "app_id": state.app_id,
            "app_installed_team_id": state.team_id,
            "bot_id": state.bot_id,
        }
    )
    return out


def stack_of(state: WorkspaceState, view: View) -> list[View]:
    """The open views sharing this view's root, bottom first."""
    return [v for v in state.views.values() if v.is_open and v.root_view_id == view.root_view_id]


def top_view(state: WorkspaceState, user: str) -> View | None:
    """The modal on top of the user's screen, if any."""
    mine = [v for v in state.views.values() if v.is_open and v.user == user]
    return mine[-1] if mine else None


def by_external_id(state: WorkspaceState, external_id: str) -> View | None:
    """The view opened with this external_id."""
    return next((v for v in state.views.values() if v.external_id == external_id), None)


def open_view(state: WorkspaceState, user: str, payload: JSON, trigger_id: str | None) -> View:
    """Opens a new modal for the user; Slack shows one stack at a time, so others close."""
    for other in list(state.views.values()):
        if other.is_open and other.user == user:
            other.is_open = False
    view_id = _view_id()
    return _add(state, user, payload, trigger_id, view_id, root=view_id, previous=None)


def push_view(state: WorkspaceState, parent: View, payload: JSON, trigger_id: str | None) -> View:
    """Puts a view on top of the parent's stack."""
    view_id = _view_id()
    return _add(
        state,
        parent.user,
        payload,
        trigger_id,
        view_id,
        root=parent.root_view_id,
        previous=parent.id,
    )


def _add(
    state: WorkspaceState,
    user: str,
    payload: JSON,
    trigger_id: str | None,
    view_id: str,
    *,
    root: str,
    previous: str | None,
) -> View:
    external_id = payload.get("external_id") or None
    view = View(
        id=view_id,
        user=user,
        view={},
        trigger_id=trigger_id,
        hash=_view_hash(state),
        root_view_id=root,
        previous_view_id=previous,
        external_id=external_id,
    )
    view.view = render(state, view, payload)
    state.views[view_id] = view
    state.changed()
    return view


def update_view(state: WorkspaceState, view: View, payload: JSON) -> View:
    """Replaces a view's content in place; the id stays, the hash changes."""
    view.history.append(view.view)
    view.hash = _view_hash(state)
    view.errors = None
    if payload.get("external_id"):
        view.external_id = payload["external_id"]
    view.view = render(state, view, payload)
    state.changed()
    return view


def close_view(state: WorkspaceState, view: View, *, whole_stack: bool = False) -> None:
    """Closes a view (and, for response_action clear, every view in its stack)."""
    closing = stack_of(state, view) if whole_stack else [view]
    for v in closing:
        v.is_open = False
    state.changed()
