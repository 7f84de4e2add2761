"""What the emulated workspace holds: its directory, channels, messages and ephemerals.

Every change bumps `version` and wakes long-polls, so the sandbox page can follow along.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from .lookup import element_label, find_by_label, interactive_elements, ts_key
from .models import (
    JSON,
    Delivery,
    EmulatorUser,
    Ephemeral,
    Message,
    MessageVersion,
    RecordedCall,
    View,
)

BUTTON = frozenset({"button"})


class WorkspaceState:
    """The workspace's contents and the queries tests make on them."""

    def __init__(
        self,
        *,
        team_id: str,
        team_domain: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        users: Iterable[EmulatorUser],
        channels: dict[str, str],
        usergroups: dict[str, list[str]],
        approvers: Iterable[str],
        clock: Callable[[], float],
        usergroup_handles: dict[str, str] | None = None,
        commands: Iterable[str] = (),
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.users: dict[str, EmulatorUser] = {u.id: u for u in users}
        self.channels: dict[str, str] = dict(channels)
        self.dm_channels: dict[str, str] = {}
        self.usergroups: dict[str, list[str]] = {k: list(v) for k, v in usergroups.items()}
        self.approvers: set[str] = set(approvers)
        self.usergroup_handles: dict[str, str] = dict(usergroup_handles or {})
        # The slash commands the app registered (its manifest); empty: every command reaches
        # the app, as in tests that register none.
        self.commands: list[str] = list(commands)
        self.clock = clock
        self.calls: list[RecordedCall] = []
        self.deliveries: list[Delivery] = []
        self.views: dict[str, View] = {}
        # Seconds to hold a method's answer (key: "chat.postMessage", "response_url", ...), so a
        # test can make Slack slow; clearing an entry releases calls already held.
        self.delays: dict[str, float] = {}
        self.version = 0
        self._messages: dict[str, list[Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._closing = False
        self._last_ts_us = 0

    # -- change notification -------------------------------------------------------------

    def changed(self) -> None:
        """Marks the workspace as changed and wakes everyone waiting for a change."""
        self.version += 1
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def stop_waiting(self) -> None:
        """Releases every long-poll at once, so a server can shut down without waiting 20 s."""
        self._closing = True
        self._wake()

    async def wait_for_change(self, since: int, max_wait: float) -> int:
        """Waits until `version` moves off `since` or `max_wait` seconds pass; returns it."""
        deadline = time.monotonic() + max_wait
        # A `since` beyond our version comes from a page that saw an earlier run: answer now.
        while since == self.version and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await asyncio.wait({fut}, timeout=remaining)
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)
        return self.version

    async def hold(self, method: str) -> None:
        """Waits as long as `delays` says for this method, re-reading it as time passes."""
        started = time.monotonic()
        while True:
            # Polled rather than awaited on an event: `delays` is a plain dict tests edit.
            remaining = self.delays.get(method, 0.0) - (time.monotonic() - started)
            if remaining <= 0 or self._closing:
                return
            await asyncio.sleep(min(remaining, 0.02))

    # -- directory -----------------------------------------------------------------------

    def new_ts(self) -> str:
        """A message timestamp, unique and increasing like Slack's."""
        now_us = int(time.time() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def resolve_channel(self, ref: Any) -> str | None:
        """A channel ID from an ID, a `#name`, or a user ID (its direct message channel)."""
        if not isinstance(ref, str) or not ref:
            return None
        if ref in self.channels or ref in self.dm_channels:
            return ref
        if ref in self.users:
            dm = "D" + ref[1:]
            self.dm_channels[dm] = ref
            return dm
        name = ref.removeprefix("#")
        for channel_id, channel_name in self.channels.items():
            if channel_name == name:
                return channel_id
        return None

    def channel_name(self, channel_id: str) -> str:
        """The channel's name as Slack shows it in payloads."""
        if channel_id in self.dm_channels:
            return "directmessage"
        return self.channels.get(channel_id, channel_id)

    def user_name(self, user_id: str) -> str:
        """The user's handle, or the ID when the user is unknown."""
        user = self.users.get(user_id)
        return user.name if user else user_id

    def group_members(self, group_id: str) -> list[str]:
        """Members of a user group; empty for an unknown group."""
        return list(self.usergroups.get(group_id, []))

    def group_handle(self, group_id: str) -> str:
        """The group's handle (`sre` for @sre): as given, else made from its id (S0SRE: sre)."""
        given = self.usergroup_handles.get(group_id)
        if given:
            return given
        return group_id.removeprefix("S").lstrip("0").lower() or group_id

    def knows_command(self, command: str) -> bool:
        """Whether Slack would deliver this command to the app (its manifest registers it)."""
        return not self.commands or command in self.commands

    def is_approver(self, user_id: str) -> bool:
        """Whether the user is named as an approver, directly or through a user group."""
        if user_id in self.approvers:
            return True
        return any(user_id in self.usergroups.get(g, []) for g in self.approvers)

    # -- messages ------------------------------------------------------------------------

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel, oldest first."""
        return list(self._messages.get(channel, []))

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The replies in the thread under message `ts` (the parent itself not included)."""
        return list(self.message(channel, ts).replies)

    def message(self, channel: str, ts: str) -> Message:
        """The message (top-level or reply) with this ts; LookupError when there is none."""
        found = self.find_message(channel, ts)
        if found is None:
            raise LookupError(f"no message {ts} in channel {channel}")
        return found

    def find_message(self, channel: str, ts: str) -> Message | None:
        """The message (top-level or reply) with this ts, or None."""
        for msg in self._messages.get(channel, []):
            if msg.ts == ts:
                return msg
            for reply in msg.replies:
                if reply.ts == ts:
                    return reply
        return None

    def all_messages(self, channel: str | None = None) -> list[Message]:
        """Every message and reply (in one or all channels), newest first."""
        channels = [channel] if channel is not None else list(self._messages)
        seen: dict[int, Message] = {}
        for ch in channels:
            for msg in self._messages.get(ch, []):
                seen[id(msg)] = msg
                for reply in msg.replies:
                    seen[id(reply)] = reply
        return sorted(seen.values(), key=lambda m: ts_key(m.ts), reverse=True)

    def post(
        self,
        channel: str,
        *,
        user: str,
        text: str,
        blocks: list[JSON],
        attachments: list[JSON] | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        metadata: JSON | None = None,
    ) -> Message:
        """Adds a message (a reply when thread_ts is set) and returns it."""
        is_bot = user == self.bot_user_id
        msg = Message(
            ts=self.new_ts(),
            channel=channel,
            user=user,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            bot_id=self.bot_id if is_bot else None,
            app_id=self.app_id if is_bot else None,
            team=self.team_id,
            attachments=list(attachments or []),
            metadata=metadata,
        )
        channel_messages = self._messages.setdefault(channel, [])
        if thread_ts is None:
            channel_messages.append(msg)
        else:
            parent = self.message(channel, thread_ts)
            parent.thread_ts = parent.ts
            parent.replies.append(msg)
            if broadcast:
                # One object in both places, so an edit shows in the thread and the channel.
                msg.subtype = "thread_broadcast"
                channel_messages.append(msg)
        self.changed()
        return msg

    def edit(
        self,
        target: Message | Ephemeral,
        *,
        text: str,
        blocks: list[JSON],
        attachments: list[JSON],
    ) -> None:
        """Replaces a message's content, keeping the earlier version in `edits`."""
        target.edits.append(
            MessageVersion(text=target.text, blocks=target.blocks, attachments=target.attachments)
        )
        target.text, target.blocks, target.attachments = text, blocks, attachments
        if isinstance(target, Message):
            target.edited_ts = self.new_ts()
        self.changed()

    def delete(self, msg: Message) -> None:
        """Removes a message, from the channel and from its thread."""
        channel_messages = self._messages.get(msg.channel, [])
        if msg in channel_messages:
            channel_messages.remove(msg)
        if msg.thread_ts and msg.thread_ts != msg.ts:
            parent = self.find_message(msg.channel, msg.thread_ts)
            if parent is not None and msg in parent.replies:
                parent.replies.remove(msg)
        self.changed()

    # -- ephemerals ----------------------------------------------------------------------

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages, oldest first, optionally for one channel and/or one user."""
        return [
            e
            for e in self._ephemerals
            if (channel is None or e.channel == channel) and (user is None or e.user == user)
        ]

    def find_ephemeral(self, ts: str) -> Ephemeral | None:
        """The ephemeral message with this ts, or None."""
        return next((e for e in self._ephemerals if e.ts == ts), None)

    def add_ephemeral(
        self,
        channel: str,
        user: str,
        *,
        text: str,
        blocks: list[JSON],
        attachments: list[JSON] | None = None,
        thread_ts: str | None = None,
        sender: str | None = None,
    ) -> Ephemeral:
        """Shows a message to one user in a channel (from the app, unless `sender` says)."""
        eph = Ephemeral(
            ts=self.new_ts(),
            channel=channel,
            user=user,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            attachments=list(attachments or []),
            sender=sender,
        )
        self._ephemerals.append(eph)
        self.changed()
        return eph

    def start_page_session(self) -> None:
        """A person (re)loaded the page: like a Slack client that reloads, they see none of the
        ephemerals shown before, and the modal that was open is gone. Closed without
        view_closed (Slack sends none when a client goes away); the app's views.update on it
        then gets `not_found`, as from Slack."""
        self._ephemerals.clear()
        for view in self.views.values():
            view.is_open = False
        self.changed()

    def delete_ephemeral(self, eph: Ephemeral) -> None:
        """Removes an ephemeral message (a response_url delete_original on it)."""
        if eph in self._ephemerals:
            self._ephemerals.remove(eph)
        self.changed()

    # -- buttons -------------------------------------------------------------------------

    def find_button(self, label: str, *, channel: str | None = None) -> tuple[Message, str, JSON]:
        """The newest message with a button labelled `label`: (message, block_id, button)."""
        found = _first_with_button(self.all_messages(channel), label, channel)
        assert isinstance(found[0], Message)
        return found[0], found[1], found[2]

    def find_ephemeral_button(
        self, label: str, *, user: str | None = None, channel: str | None = None
    ) -> tuple[Ephemeral, str, JSON]:
        """Like find_button, over ephemeral messages (newest first)."""
        found = _first_with_button(
            list(reversed(self.ephemerals(channel=channel, user=user))), label, channel
        )
        assert isinstance(found[0], Ephemeral)
        return found[0], found[1], found[2]

    def visible_messages(self, user: str, channel: str | None = None) -> list[Message | Ephemeral]:
        """What `user` has on screen: messages, replies and their own ephemerals, newest first."""
        seen: list[Message | Ephemeral] = [*self.all_messages(channel)]
        seen += self.ephemerals(channel=channel, user=user)
        return sorted(seen, key=lambda m: ts_key(m.ts), reverse=True)

    def find_visible_button(
        self, label: str, *, user: str, channel: str | None = None
    ) -> tuple[Message | Ephemeral, str, JSON]:
        """The newest button labelled `label` that `user` can see, ephemerals included."""
        return _first_with_button(self.visible_messages(user, channel), label, channel)


def _first_with_button(
    candidates: list[Message] | list[Ephemeral] | list[Message | Ephemeral],
    label: str,
    channel: str | None,
) -> tuple[Message | Ephemeral, str, JSON]:
    seen: list[str] = []
    for msg in candidates:
        hit = find_by_label(msg.blocks, label, BUTTON)
        if hit is not None:
            return msg, hit[0], hit[1]
        seen.extend(
            element_label(e) for _, e in interactive_elements(msg.blocks) if e["type"] in BUTTON
        )
    where = f" in channel {channel}" if channel else ""
    raise LookupError(f"no button labelled {label!r}{where}; buttons seen: {seen}")
