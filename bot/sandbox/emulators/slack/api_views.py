"""views.open, views.update and views.push."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import view_stack
from .api_result import ApiResult, Call, fail, invalid, ok
from .blockkit import validate_view
from .models import JSON

if TYPE_CHECKING:
    from .emulator import SlackEmulator


def _payload(emu: SlackEmulator, call: Call) -> JSON | ApiResult:
    view: Any = call.args.get("view")
    if view is None:
        return fail("invalid_arguments", errors=["missing required field: view"])
    problems = validate_view(view)
    if problems:
        # Slack refuses a bad view as invalid_arguments (not invalid_blocks), naming each problem.
        return invalid("invalid_arguments", problems)
    assert isinstance(view, dict)  # validate_view refuses anything else
    external_id = view.get("external_id")
    if external_id and view_stack.by_external_id(emu, str(external_id)) is not None:
        return fail("duplicate_external_id")
    return view


def open_(emu: SlackEmulator, call: Call) -> ApiResult:
    """views.open: a modal for the user who caused the trigger_id, within 3 seconds."""
    payload = _payload(emu, call)
    if isinstance(payload, ApiResult):
        return payload
    trigger_id = call.str_arg("trigger_id")
    trigger, error = emu.tokens.exchange_trigger(trigger_id)
    if trigger is None:
        return fail(error or "invalid_trigger_id")
    view = view_stack.open_view(emu, trigger.user, payload, trigger_id)
    return ok(view=view.view)


def push(emu: SlackEmulator, call: Call) -> ApiResult:
    """views.push: a view on top of the user's open modal (at most 3 deep)."""
    payload = _payload(emu, call)
    if isinstance(payload, ApiResult):
        return payload
    trigger_id = call.str_arg("trigger_id")
    trigger, error = emu.tokens.exchange_trigger(trigger_id)
    if trigger is None:
        return fail(error or "invalid_trigger_id")
    parent = view_stack.top_view(emu, trigger.user)
    if parent is None:
        return fail("not_found")
    if len(view_stack.stack_of(emu, parent)) >= view_stack.MAX_STACK:
        return fail("push_limit_reached")
    view = view_stack.push_view(emu, parent, payload, trigger_id)
    return ok(view=view.view)


def update(emu: SlackEmulator, call: Call) -> ApiResult:
    """views.update: by view_id or external_id; a stale `hash` is a hash_conflict."""
    view_id, external_id = call.str_arg("view_id"), call.str_arg("external_id")
    if view_id is not None:
        target = emu.views.get(view_id)
    elif external_id is not None:
        target = view_stack.by_external_id(emu, external_id)
    else:
        return fail("invalid_arguments", errors=["one of view_id, external_id is required"])
    if target is None or not target.is_open:
        return fail("not_found")
    view: Any = call.args.get("view")
    problems = validate_view(view)
    if problems:
        return invalid("invalid_arguments", problems)
    wanted_hash = call.str_arg("hash")
    if wanted_hash is not None and wanted_hash != target.hash:
        return fail("hash_conflict")
    view_stack.update_view(emu, target, view)
    return ok(view=target.view)
