"""Block Kit validation with Slack's limits and Slack's way of naming each problem.

Slack names a problem as "<what is wrong> [json-pointer:/blocks/0/text/text]"; the same
strings come back here so a bot's logs read the same against the emulator as against Slack.
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100

BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)
SELECTS = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
INPUT_ELEMENTS = SELECTS | {
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "email_text_input",
    "file_input",
    "number_input",
    "plain_text_input",
    "radio_buttons",
    "rich_text_input",
    "timepicker",
    "url_text_input",
}
ACTION_ELEMENTS = (INPUT_ELEMENTS - {"file_input", "rich_text_input"}) | {
    "button",
    "overflow",
    "workflow_button",
}
ACCESSORY_ELEMENTS = ACTION_ELEMENTS | {"image"}
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})


class _Checker:
    """Collects Slack-style problem strings while walking one payload."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, pointer: str, problem: str) -> None:
        self.errors.append(f"{problem} [json-pointer:{pointer}]")

    def string(self, value: Any, pointer: str, max_len: int, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.fail(pointer, "missing required field")
            return
        if not isinstance(value, str):
            self.fail(pointer, "must be a string")
        elif len(value) > max_len:
            self.fail(pointer, f"must be less than {max_len + 1} characters")

    def text(
        self,
        obj: Any,
        pointer: str,
        max_len: int,
        *,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if obj is None:
            if required:
                self.fail(pointer, "missing required field")
            return
        if not isinstance(obj, dict):
            self.fail(pointer, "must provide an object")
            return
        kind = obj.get("type")
        if kind is None:
            self.fail(f"{pointer}/type", "missing required field: type")
        elif plain_only and kind != "plain_text":
            self.fail(f"{pointer}/type", "must be plain_text")
        elif kind not in TEXT_TYPES:
            self.fail(f"{pointer}/type", "must be one of plain_text, mrkdwn")
        text = obj.get("text")
        if text is None:
            self.fail(f"{pointer}/text", "missing required field: text")
        elif not isinstance(text, str):
            self.fail(f"{pointer}/text", "must be a string")
        elif not text:
            self.fail(f"{pointer}/text", "must be more than 0 characters")
        elif len(text) > max_len:
            self.fail(f"{pointer}/text", f"must be less than {max_len + 1} characters")

    def blocks(self, blocks: Any, pointer: str, max_blocks: int) -> None:
        if not isinstance(blocks, list):
            self.fail(pointer, "must provide an array")
            return
        if len(blocks) > max_blocks:
            self.fail(pointer, f"must be less than {max_blocks + 1} items")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            self.block(block, f"{pointer}/{i}", seen)

    def block(self, block: Any, pointer: str, seen_block_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.fail(pointer, "must provide an object")
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.fail(f"{pointer}/type", f"unsupported block type: {kind!r}")
            return
        block_id = block.get("block_id")
        self.string(block_id, f"{pointer}/block_id", 255)
        if isinstance(block_id, str):
            if block_id in seen_block_ids:
                self.fail(f"{pointer}/block_id", f"duplicate block_id: {block_id!r}")
            seen_block_ids.add(block_id)
        check = getattr(self, f"block_{kind}", None)
        if check is not None:
            check(block, pointer)

    def block_section(self, block: dict[str, Any], pointer: str) -> None:
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            self.fail(pointer, "must provide at least one of text, fields")
        self.text(text, f"{pointer}/text", 3000, required=False)
        if fields is not None:
            if not isinstance(fields, list):
                self.fail(f"{pointer}/fields", "must provide an array")
            else:
                if len(fields) > 10:
                    self.fail(f"{pointer}/fields", "must be less than 11 items")
                for i, item in enumerate(fields):
                    self.text(item, f"{pointer}/fields/{i}", 2000)
        accessory = block.get("accessory")
        if accessory is not None:
            self.element(accessory, f"{pointer}/accessory", ACCESSORY_ELEMENTS)

    def block_header(self, block: dict[str, Any], pointer: str) -> None:
        self.text(block.get("text"), f"{pointer}/text", 150, plain_only=True)

    def block_actions(self, block: dict[str, Any], pointer: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            self.fail(f"{pointer}/elements", "must provide a non-empty array")
            return
        if len(elements) > 25:
            self.fail(f"{pointer}/elements", "must be less than 26 items")
        seen: set[str] = set()
        for i, element in enumerate(elements):
            self.element(element, f"{pointer}/elements/{i}", ACTION_ELEMENTS)
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if isinstance(action_id, str):
                if action_id in seen:
                    self.fail(
                        f"{pointer}/elements/{i}/action_id", f"duplicate action_id: {action_id!r}"
                    )
                seen.add(action_id)

    def block_context(self, block: dict[str, Any], pointer: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            self.fail(f"{pointer}/elements", "must provide a non-empty array")
            return
        if len(elements) > 10:
            self.fail(f"{pointer}/elements", "must be less than 11 items")
        for i, element in enumerate(elements):
            where = f"{pointer}/elements/{i}"
            if isinstance(element, dict) and element.get("type") == "image":
                self.image(element, where)
            else:
                self.text(element, where, 3000)

    def block_input(self, block: dict[str, Any], pointer: str) -> None:
        self.text(block.get("label"), f"{pointer}/label", 2000, plain_only=True)
        self.text(block.get("hint"), f"{pointer}/hint", 2000, plain_only=True, required=False)
        element = block.get("element")
        if element is None:
            self.fail(f"{pointer}/element", "missing required field")
        else:
            self.element(element, f"{pointer}/element", INPUT_ELEMENTS)

    def block_image(self, block: dict[str, Any], pointer: str) -> None:
        self.image(block, pointer)
        self.text(block.get("title"), f"{pointer}/title", 2000, plain_only=True, required=False)

    def block_markdown(self, block: dict[str, Any], pointer: str) -> None:
        self.string(block.get("text"), f"{pointer}/text", 12000, required=True)

    def block_rich_text(self, block: dict[str, Any], pointer: str) -> None:
        if not isinstance(block.get("elements"), list):
            self.fail(f"{pointer}/elements", "must provide an array")

    def image(self, obj: dict[str, Any], pointer: str) -> None:
        if obj.get("image_url") is None and obj.get("slack_file") is None:
            self.fail(pointer, "must provide at least one of image_url, slack_file")
        self.string(obj.get("image_url"), f"{pointer}/image_url", 3000)
        self.string(obj.get("alt_text"), f"{pointer}/alt_text", 2000, required=True)

    def element(self, element: Any, pointer: str, allowed: frozenset[str]) -> None:
        if not isinstance(element, dict):
            self.fail(pointer, "must provide an object")
            return
        kind = element.get("type")
        if kind not in allowed:
            self.fail(f"{pointer}/type", f"unsupported element type here: {kind!r}")
            return
        if kind == "image":
            self.image(element, pointer)
            return
        self.string(element.get("action_id"), f"{pointer}/action_id", 255)
        if kind == "button":
            self.button(element, pointer)
        elif kind in ("static_select", "multi_static_select", "radio_buttons", "checkboxes"):
            self.options(element, pointer, max_items=100 if "select" in kind else 10)
        elif kind == "overflow":
            self.options(element, pointer, max_items=5)
        if "placeholder" in element:
            self.text(element["placeholder"], f"{pointer}/placeholder", 150, plain_only=True)

    def button(self, element: dict[str, Any], pointer: str) -> None:
        self.text(element.get("text"), f"{pointer}/text", 75, plain_only=True)
        if element.get("action_id") is None:
            self.fail(f"{pointer}/action_id", "missing required field: action_id")
        self.string(element.get("value"), f"{pointer}/value", 2000)
        self.string(element.get("url"), f"{pointer}/url", 3000)
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            self.fail(f"{pointer}/style", "must be one of primary, danger")

    def options(self, element: dict[str, Any], pointer: str, max_items: int) -> None:
        groups = element.get("option_groups")
        if groups is not None and isinstance(groups, list):
            for g, group in enumerate(groups):
                opts = group.get("options") if isinstance(group, dict) else None
                self.option_list(opts, f"{pointer}/option_groups/{g}/options", max_items)
            return
        self.option_list(element.get("options"), f"{pointer}/options", max_items)

    def option_list(self, options: Any, pointer: str, max_items: int) -> None:
        if not isinstance(options, list) or not options:
            self.fail(pointer, "must provide a non-empty array")
            return
        if len(options) > max_items:
            self.fail(pointer, f"must be less than {max_items + 1} items")
        for i, option in enumerate(options):
            where = f"{pointer}/{i}"
            if not isinstance(option, dict):
                self.fail(where, "must provide an object")
                continue
            self.text(option.get("text"), f"{where}/text", 75)
            self.string(option.get("value"), f"{where}/value", 150, required=True)


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Problems with a message's blocks, in Slack's wording; empty when Slack would accept them."""
    checker = _Checker()
    checker.blocks(blocks, "/blocks", max_blocks)
    return checker.errors


def validate_view(view: Any) -> list[str]:
    """Problems with a view payload (views.open/update/push, response_action update/push)."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.fail("/view", "must provide an object")
        return checker.errors
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.fail("/view/type", "must be one of modal, home")
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", 24, plain_only=True)
        for key in ("submit", "close"):
            checker.text(view.get(key), f"/view/{key}", 24, plain_only=True, required=False)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and view.get("submit") is None:
            checker.fail("/view/submit", "must provide submit when the view has input blocks")
    checker.string(view.get("callback_id"), "/view/callback_id", 255)
    checker.string(view.get("private_metadata"), "/view/private_metadata", 3000)
    checker.string(view.get("external_id"), "/view/external_id", 255)
    checker.blocks(view.get("blocks"), "/view/blocks", MAX_VIEW_BLOCKS)
    return checker.errors


def slack_messages(errors: list[str]) -> list[str]:
    """The same problems as Slack lists them in response_metadata.messages."""
    return [f"[ERROR] {e}" for e in errors]
