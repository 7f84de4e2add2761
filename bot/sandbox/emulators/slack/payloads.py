"""Requests to the bot, encoded exactly as Slack encodes them.

A slash command is a urlencoded form; every interaction is a form with one field, `payload`,
holding JSON. Field names and nesting follow the payloads Slack sends.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from .lookup import elements_of, find_option, options_of
from .models import JSON, Ephemeral, Message, View

if TYPE_CHECKING:
    from .emulator import SlackEmulator

_SINGLE_OPTION = frozenset({"static_select", "external_select", "radio_buttons", "overflow"})
_MULTI_OPTION = frozenset({"multi_static_select", "multi_external_select", "checkboxes"})
_SCALAR = {
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}
_STATELESS = frozenset({"button", "overflow", "workflow_button", "image"})
REQUIRED_MESSAGE = "Please complete this required field."


def user_ref(emu: SlackEmulator, user_id: str) -> JSON:
    """The `user` object of an interaction payload."""
    name = emu.user_name(user_id)
    return {"id": user_id, "username": name, "name": name, "team_id": emu.team_id}


def team_ref(emu: SlackEmulator) -> JSON:
    """The `team` object of an interaction payload."""
    return {"id": emu.team_id, "domain": emu.team_domain}


def encode_form(fields: list[tuple[str, str]]) -> bytes:
    """A urlencoded body, fields in the order given."""
    return urlencode(fields).encode("utf-8")


def encode_payload(payload: JSON) -> bytes:
    """An interaction body: one form field `payload` holding the JSON."""
    return encode_form([("payload", json.dumps(payload, separators=(",", ":")))])


def slash_command_fields(
    emu: SlackEmulator,
    *,
    command: str,
    text: str,
    user: str,
    channel: str,
    response_url: str,
    trigger_id: str,
) -> list[tuple[str, str]]:
    """The form fields of a slash command, in Slack's order."""
    return [
        ("token", emu.verification_token),
        ("team_id", emu.team_id),
        ("team_domain", emu.team_domain),
        ("channel_id", channel),
        ("channel_name", emu.channel_name(channel)),
        ("user_id", user),
        ("user_name", emu.user_name(user)),
        ("command", command),
        ("text", text),
        ("api_app_id", emu.app_id),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", trigger_id),
    ]


def option_for(element: JSON, wanted: Any) -> JSON:
    """The option a person picks by value or visible text; ValueError naming the choices."""
    if isinstance(wanted, dict):
        return copy.deepcopy(wanted)
    if element.get("type") in ("external_select", "multi_external_select"):
        return {"text": {"type": "plain_text", "text": str(wanted)}, "value": str(wanted)}
    option = find_option(element, wanted)
    if option is None:
        choices = [o.get("value") for o in options_of(element)]
        raise ValueError(f"no option {wanted!r} in {element.get('action_id')!r}; has {choices}")
    return option


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def selection_for(element: JSON, given: Any) -> JSON:
    """The state of an element after a person set it to `given` (a value, or Slack's shape)."""
    kind = str(element.get("type"))
    if isinstance(given, dict):
        out = dict(given)
        if isinstance(out.get("selected_option"), str):
            out["selected_option"] = option_for(element, out["selected_option"])
        return out
    if kind in _SINGLE_OPTION:
        return {"selected_option": option_for(element, given)}
    if kind in _MULTI_OPTION:
        return {"selected_options": [option_for(element, g) for g in _as_list(given)]}
    if kind in _SCALAR:
        key = _SCALAR[kind]
        return {key: _as_list(given) if kind.startswith("multi_") else given}
    # An empty text input reaches the app as null, however the person left it.
    return {"value": None if given in (None, "") else str(given)}


def untouched_selection(element: JSON) -> JSON:
    """The state of an element nobody touched: its initial value, as the Slack client sends."""
    kind = str(element.get("type"))
    if kind in _SINGLE_OPTION:
        return {"selected_option": element.get("initial_option")}
    if kind in _MULTI_OPTION:
        return {"selected_options": element.get("initial_options", [])}
    if kind in _SCALAR:
        key = _SCALAR[kind]
        default: Any = [] if kind.startswith("multi_") else None
        return {key: element.get("initial_" + key.removeprefix("selected_"), default)}
    return {"value": element.get("initial_value")}


def _is_empty(selection: JSON) -> bool:
    return all(v in (None, "", []) for v in selection.values())


def state_values(
    blocks: list[JSON], given: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, dict[str, JSON]], dict[str, str]]:
    """`state.values` for blocks with some inputs set, and the required inputs left empty."""
    given = given or {}
    values: dict[str, dict[str, JSON]] = {}
    missing: dict[str, str] = {}
    used: set[tuple[str, str]] = set()
    for block in blocks:
        block_id = str(block.get("block_id", ""))
        for element in elements_of(block):
            kind = str(element.get("type"))
            if kind in _STATELESS:
                continue
            action_id = str(element.get("action_id", ""))
            if action_id in given.get(block_id, {}):
                used.add((block_id, action_id))
                selection = selection_for(element, given[block_id][action_id])
            else:
                selection = untouched_selection(element)
            values.setdefault(block_id, {})[action_id] = {"type": kind, **selection}
            required = block.get("type") == "input" and not block.get("optional", False)
            if required and _is_empty(selection):
                missing[block_id] = REQUIRED_MESSAGE
    unknown = [f"{b}/{a}" for b, inner in given.items() for a in inner if (b, a) not in used]
    if unknown:
        raise ValueError(f"no input element for {unknown}; the view has {sorted(values)}")
    return values, missing


def action_entry(block_id: str, element: JSON, action_ts: str, given: Any = None) -> JSON:
    """One entry of a block_actions payload's `actions` list."""
    kind = str(element.get("type"))
    entry: JSON = {"action_id": element.get("action_id"), "block_id": block_id, "type": kind}
    if kind == "button":
        entry["text"] = copy.deepcopy(element.get("text"))
        for key in ("value", "style", "url"):
            if key in element:
                entry[key] = element[key]
    else:
        entry.update(selection_for(element, given))
        if "placeholder" in element:
            entry["placeholder"] = copy.deepcopy(element["placeholder"])
    entry["action_ts"] = action_ts
    return entry


def block_actions(
    emu: SlackEmulator,
    *,
    user: str,
    target: Message | Ephemeral,
    action: JSON,
    response_url: str,
    trigger_id: str,
) -> JSON:
    """A block_actions payload for a click or a selection on a message or an ephemeral."""
    is_ephemeral = isinstance(target, Ephemeral)
    container: JSON = {
        "type": "message",
        "message_ts": target.ts,
        "channel_id": target.channel,
        "is_ephemeral": is_ephemeral,
    }
    if target.thread_ts:
        container["thread_ts"] = target.thread_ts
    values, _ = state_values(target.blocks)
    if action["type"] != "button" and action["block_id"] in values:
        selection = {k: v for k, v in action.items() if k.startswith("selected") or k == "value"}
        values[action["block_id"]][action["action_id"]] = {"type": action["type"], **selection}
    payload: JSON = {
        "type": "block_actions",
        "user": user_ref(emu, user),
        "api_app_id": emu.app_id,
        "token": emu.verification_token,
        "container": container,
        "trigger_id": trigger_id,
        "team": team_ref(emu),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": target.channel, "name": emu.channel_name(target.channel)},
        "state": {"values": values},
        "response_url": response_url,
        "actions": [action],
    }
    # Slack leaves the message out for ephemerals: the app never saw their content stored.
    if isinstance(target, Message):
        payload["message"] = target.to_slack()
    return payload


def message_action(
    emu: SlackEmulator,
    *,
    user: str,
    target: Message,
    callback_id: str,
    response_url: str,
    trigger_id: str,
) -> JSON:
    """A message shortcut (type message_action) chosen on a message's "More actions" menu."""
    return {
        "type": "message_action",
        "token": emu.verification_token,
        "action_ts": emu.new_ts(),
        "team": team_ref(emu),
        "user": user_ref(emu, user),
        "channel": {"id": target.channel, "name": emu.channel_name(target.channel)},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "response_url": response_url,
        "message_ts": target.ts,
        "message": target.to_slack(),
    }


def view_submission(
    emu: SlackEmulator,
    view: View,
    *,
    user: str,
    values: dict[str, dict[str, JSON]],
    trigger_id: str,
) -> JSON:
    """A view_submission payload carrying the inputs' state."""
    submitted = copy.deepcopy(view.view)
    submitted["state"] = {"values": values}
    submitted["hash"] = view.hash
    return {
        "type": "view_submission",
        "team": team_ref(emu),
        "user": user_ref(emu, user),
        "api_app_id": emu.app_id,
        "token": emu.verification_token,
        "trigger_id": trigger_id,
        "view": submitted,
        "response_urls": [],
        "enterprise": None,
        "is_enterprise_install": False,
    }


def view_closed(emu: SlackEmulator, view: View, *, user: str) -> JSON:
    """A view_closed payload (sent only for views opened with notify_on_close)."""
    return {
        "type": "view_closed",
        "team": team_ref(emu),
        "user": user_ref(emu, user),
        "api_app_id": emu.app_id,
        "token": emu.verification_token,
        "view": copy.deepcopy(view.view),
        "is_cleared": False,
        "enterprise": None,
        "is_enterprise_install": False,
    }
