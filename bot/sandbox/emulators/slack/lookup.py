"""Finding interactive elements inside Block Kit blocks, the way a person scans a message."""

from __future__ import annotations

import copy
import secrets
import string
from collections.abc import Iterator
from typing import Any

from .models import JSON

_ID_ALPHABET = string.ascii_letters + string.digits


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def with_generated_ids(blocks: list[JSON]) -> list[JSON]:
    """A copy of the blocks where missing block_id/action_id are filled in, as Slack does."""
    out = copy.deepcopy(blocks)
    for block in out:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", _random_id(5))
        for element in elements_of(block):
            if element.get("type") != "image":
                element.setdefault("action_id", _random_id(5))
    return out


def elements_of(block: JSON) -> Iterator[JSON]:
    """The elements a block carries: an actions block's, a section's accessory, an input's."""
    kind = block.get("type")
    if kind == "actions":
        for element in block.get("elements") or []:
            if isinstance(element, dict):
                yield element
    elif kind == "section" and isinstance(block.get("accessory"), dict):
        yield block["accessory"]
    elif kind == "input" and isinstance(block.get("element"), dict):
        yield block["element"]


def interactive_elements(blocks: list[JSON]) -> Iterator[tuple[str, JSON]]:
    """Every (block_id, element) a user can act on, in reading order."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        for element in elements_of(block):
            if element.get("type") != "image":
                yield str(block.get("block_id", "")), element


def element_label(element: JSON) -> str:
    """What a person reads on an element: a button's text or a select's placeholder."""
    for key in ("text", "placeholder"):
        obj = element.get(key)
        if isinstance(obj, dict) and isinstance(obj.get("text"), str):
            return str(obj["text"])
    return str(element.get("action_id", ""))


def find_element(blocks: list[JSON], block_id: str, action_id: str) -> JSON | None:
    """The element with this block_id and action_id, if the blocks hold one."""
    for bid, element in interactive_elements(blocks):
        if bid == block_id and element.get("action_id") == action_id:
            return element
    return None


def find_by_label(blocks: list[JSON], label: str, types: frozenset[str]) -> tuple[str, JSON] | None:
    """The first element of one of these types whose label or action_id is `label`."""
    for block_id, element in interactive_elements(blocks):
        if element.get("type") not in types:
            continue
        if element_label(element) == label or element.get("action_id") == label:
            return block_id, element
    return None


def options_of(element: JSON) -> list[JSON]:
    """Every option of a select, radio group, checkbox group or overflow menu."""
    found: list[JSON] = [o for o in element.get("options") or [] if isinstance(o, dict)]
    for group in element.get("option_groups") or []:
        if isinstance(group, dict):
            found.extend(o for o in group.get("options") or [] if isinstance(o, dict))
    return found


def find_option(element: JSON, wanted: Any) -> JSON | None:
    """The option whose value (or visible text) is `wanted`."""
    for option in options_of(element):
        text = option.get("text")
        shown = text.get("text") if isinstance(text, dict) else None
        if option.get("value") == wanted or shown == wanted:
            return copy.deepcopy(option)
    return None


def ts_key(ts: str) -> tuple[int, int]:
    """Orders Slack timestamps numerically, as Slack does."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds or 0), int(fraction or 0)
