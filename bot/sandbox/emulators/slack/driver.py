"""SlackDriver: plays Slack toward the bot, with signed requests to its `/slack/events`, or
with envelopes over the bot's Socket Mode connection (transport="socket").

What the bot answers is applied as Slack applies it: a slash command's answer becomes an
ephemeral (or a channel message), a view_submission's `response_action` acts on the modal.
Over Socket Mode the answer is the `payload` of the bot's ack, applied the same way.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import io
import json
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import aiohttp

from . import payloads, socket_mode, view_stack
from .api_result import ApiResult, message_content
from .blockkit import SELECTS, validate_view
from .lookup import find_by_label, find_element, with_generated_ids
from .models import JSON, SLACKBOT, Delivery, Ephemeral, Message, View
from .tokens import ResponseTarget

if TYPE_CHECKING:
    from .emulator import SlackEmulator

FORM = "application/x-www-form-urlencoded"
Transport = Literal["http", "socket"]
# Slack gives up on an app that has not answered within 3 seconds and ignores a late answer.
ACK_DEADLINE_SECONDS = 3.0
# Elements a person can pick from or set, beyond the select menus Block Kit validation knows.
SELECTABLE = SELECTS | frozenset(
    {
        "overflow",
        "radio_buttons",
        "checkboxes",
        "datepicker",
        "timepicker",
    }
)


def _payload(body: bytes) -> bytes | io.BytesIO:
    # aiohttp warns (an error under pytest's -W error) when a large body is raw bytes.
    return io.BytesIO(body) if len(body) > 2**20 else body


@dataclass(frozen=True)
class DriverRequest:
    """One request as delivered to the bot; re-send it with SlackDriver.retry()."""

    kind: str
    body: bytes
    content_type: str = FORM
    fields: JSON = field(default_factory=dict)
    view_id: str | None = None


@dataclass(frozen=True)
class DriverResponse:
    """How the bot answered one delivery."""

    status: int
    body: str
    json: Any
    elapsed_ms: float
    request: DriverRequest | None = None
    timed_out: bool = False
    note: str | None = None
    # Slack answered it itself (an unknown command) and never asked the app.
    by_slack: bool = False

    @property
    def ok(self) -> bool:
        """Whether the bot answered 2xx in time."""
        return 200 <= self.status < 300 and not self.timed_out


class SlackDriver:
    """Acts as Slack toward the bot: slash commands, clicks, selections and modal submissions."""

    def __init__(
        self,
        emu: SlackEmulator,
        signing_secret: str | None = None,
        *,
        events_url: str | None = None,
        timeout: float = 10.0,
        transport: Transport | None = None,
    ) -> None:
        self.emu = emu
        self._transport = transport
        self.signing_secret = signing_secret if signing_secret is not None else emu.signing_secret
        self.timeout = timeout
        self.ack_deadline = ACK_DEADLINE_SECONDS
        self.last_request: DriverRequest | None = None
        self._events_url = events_url
        self._session: aiohttp.ClientSession | None = None

    @property
    def events_url(self) -> str:
        """The bot's `/slack/events` URL: given here, else the emulator's bot_events_url."""
        url = self._events_url or self.emu.bot_events_url
        if not url:
            raise RuntimeError("no bot events URL: set emu.bot_events_url (or events_url=)")
        return url

    @property
    def transport(self) -> Transport:
        """How requests reach the bot: as given here, else "socket" while emu.socket_mode."""
        if self._transport is not None:
            return self._transport
        return "socket" if self.emu.socket_mode else "http"

    async def __aenter__(self) -> SlackDriver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the shared HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        """Slack's signature headers for a body sent at `timestamp` (Unix seconds)."""
        base = f"v0:{timestamp}:".encode() + body
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}

    # -- what a person does ---------------------------------------------------------------

    async def command(
        self,
        command: str,
        text: str = "",
        *,
        user: str | None = None,
        channel: str | None = None,
        retry_num: int | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> DriverResponse:
        """Types `/command text` in a channel. A command the app did not register (when the
        emulator knows its commands) never reaches the app: Slack itself answers, as it does."""
        slash = command if command.startswith("/") else f"/{command}"
        if not self.emu.knows_command(slash):
            return self._not_a_command(slash, user=user, channel=channel)
        request = self.command_request(command, text, user=user, channel=channel)
        return await self.deliver(request, retry_num=retry_num, extra_headers=extra_headers)

    def _not_a_command(
        self, command: str, *, user: str | None, channel: str | None
    ) -> DriverResponse:
        """Slackbot's ephemeral for an unknown command, naming the commands there are."""
        known = ", ".join(self.emu.commands)
        close = difflib.get_close_matches(command, self.emu.commands, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        text = (
            f"{command} is not a valid command.{hint} In Slack, all messages that start with "
            f'the "/" character are interpreted as commands. The commands here: {known}.'
        )
        self.emu.add_ephemeral(
            self._channel(channel), self._user(user), text=text, blocks=[], sender=SLACKBOT
        )
        note = f"{command} is not a valid command; Slack answered it without asking the app"
        return DriverResponse(0, "", None, 0.0, note=note, by_slack=True)

    def command_request(
        self, command: str, text: str = "", *, user: str | None = None, channel: str | None = None
    ) -> DriverRequest:
        """`/command text` as Slack would deliver it (a fresh trigger_id and response_url), not
        sent yet: `deliver()` sends it, to this driver's bot or another one's, as often as
        Slack would."""
        user = self._user(user)
        channel_id = self._channel(channel)
        target = ResponseTarget(channel=channel_id, user=user, issued_at=self.emu.clock())
        fields = payloads.slash_command_fields(
            self.emu,
            command=command if command.startswith("/") else f"/{command}",
            text=text,
            user=user,
            channel=channel_id,
            response_url=self.emu.response_url(target),
            trigger_id=self.emu.tokens.issue_trigger(user),
        )
        return DriverRequest("command", payloads.encode_form(fields), fields=dict(fields))

    async def click(
        self,
        label: str,
        *,
        user: str | None = None,
        channel: str | None = None,
        message: Message | None = None,
    ) -> DriverResponse:
        """Clicks the button labelled `label` on `message`, else on the newest message (or
        ephemeral of this user) that has one, as the person sees the channel."""
        target: Message | Ephemeral
        if message is None:
            target, block_id, button = self.emu.find_visible_button(
                label, user=self._user(user), channel=channel
            )
        else:
            hit = find_by_label(message.blocks, label, frozenset({"button"}))
            if hit is None:
                raise LookupError(f"no button labelled {label!r} on message {message.ts}")
            target, (block_id, button) = message, hit
        return await self.act(target, block_id, str(button.get("action_id")), user=user)

    async def click_ephemeral(
        self, label: str, *, user: str | None = None, channel: str | None = None
    ) -> DriverResponse:
        """Clicks a button on the newest ephemeral (of `user`) that has one labelled `label`."""
        eph, block_id, button = self.emu.find_ephemeral_button(label, user=user, channel=channel)
        return await self.act(eph, block_id, str(button.get("action_id")), user=eph.user)

    async def select(
        self,
        label: str,
        option: Any,
        *,
        user: str | None = None,
        channel: str | None = None,
        message: Message | None = None,
    ) -> DriverResponse:
        """Picks `option` (a value or visible text) in the select with this placeholder or
        action_id, on `message` or on the newest message that has one."""
        candidates: list[Message | Ephemeral] = (
            [message]
            if message is not None
            else self.emu.visible_messages(self._user(user), channel)
        )
        for msg in candidates:
            hit = find_by_label(msg.blocks, label, SELECTABLE)
            if hit is not None:
                block_id, element = hit
                action_id = str(element.get("action_id"))
                return await self.act(msg, block_id, action_id, user=user, value=option)
        raise LookupError(f"no select {label!r} on any message")

    async def act(
        self,
        target: Message | Ephemeral,
        block_id: str,
        action_id: str,
        *,
        user: str | None = None,
        value: Any = None,
    ) -> DriverResponse:
        """Sends block_actions for one element of a message or ephemeral (`value`: for selects)."""
        element = find_element(target.blocks, block_id, action_id)
        if element is None:
            raise LookupError(f"no element {block_id}/{action_id} on message {target.ts}")
        if isinstance(target, Ephemeral):
            user = target.user
        user = self._user(user)
        response_target = ResponseTarget(
            channel=target.channel,
            user=user,
            issued_at=self.emu.clock(),
            message_ts=target.ts if isinstance(target, Message) else None,
            ephemeral_ts=target.ts if isinstance(target, Ephemeral) else None,
            thread_ts=target.thread_ts,
        )
        action = payloads.action_entry(block_id, element, self.emu.new_ts(), value)
        payload = payloads.block_actions(
            self.emu,
            user=user,
            target=target,
            action=action,
            response_url=self.emu.response_url(response_target),
            trigger_id=self.emu.tokens.issue_trigger(user),
        )
        request = DriverRequest("block_actions", payloads.encode_payload(payload), fields=payload)
        return await self.deliver(request)

    async def message_shortcut(
        self, callback_id: str, message: Message, *, user: str | None = None
    ) -> DriverResponse:
        """Chooses a message shortcut (e.g. "Create task from message") on a message."""
        user = self._user(user)
        response_target = ResponseTarget(
            channel=message.channel,
            user=user,
            issued_at=self.emu.clock(),
            message_ts=None,  # a shortcut's response_url answers the person, not the message
            ephemeral_ts=None,
            thread_ts=message.thread_ts,
        )
        payload = payloads.message_action(
            self.emu,
            user=user,
            target=message,
            callback_id=callback_id,
            response_url=self.emu.response_url(response_target),
            trigger_id=self.emu.tokens.issue_trigger(user),
        )
        request = DriverRequest("message_action", payloads.encode_payload(payload), fields=payload)
        return await self.deliver(request)

    async def submit_view(
        self,
        view_id: str,
        values: dict[str, dict[str, Any]] | None = None,
        *,
        user: str | None = None,
    ) -> DriverResponse:
        """Fills in a modal's inputs and presses its submit button.

        Like the Slack client, it does not send a modal with an empty required input: the
        answer then has status 0 and the view gets the client's errors.
        """
        view = self._open_view(view_id)
        user = user or view.user
        values_state, missing = payloads.state_values(view.view.get("blocks") or [], values)
        if missing:
            view.errors = missing
            self.emu.changed()
            return DriverResponse(
                status=0,
                body="",
                json={"response_action": "errors", "errors": missing},
                elapsed_ms=0.0,
                note="not sent: the Slack client refuses empty required inputs",
            )
        payload = payloads.view_submission(
            self.emu,
            view,
            user=user,
            values=values_state,
            trigger_id=self.emu.tokens.issue_trigger(user),
        )
        request = DriverRequest(
            "view_submission", payloads.encode_payload(payload), fields=payload, view_id=view.id
        )
        return await self.deliver(request)

    async def close_view(self, view_id: str, *, user: str | None = None) -> DriverResponse | None:
        """Presses a modal's close button; the bot hears of it only with notify_on_close.

        Closing a view that is already closed does nothing (the page may ask twice).
        """
        known = self.emu.views.get(view_id)
        if known is not None and not known.is_open:
            return None
        view = self._open_view(view_id)
        view_stack.close_view(self.emu, view)
        if not view.view.get("notify_on_close"):
            return None
        payload = payloads.view_closed(self.emu, view, user=user or view.user)
        request = DriverRequest(
            "view_closed", payloads.encode_payload(payload), fields=payload, view_id=view.id
        )
        return await self.deliver(request)

    # -- raw delivery ---------------------------------------------------------------------

    async def send_raw(
        self,
        body: bytes,
        content_type: str = FORM,
        *,
        sign: bool = True,
        timestamp: int | None = None,
        retry_num: int | None = None,
        extra_headers: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> DriverResponse:
        """Posts any body (signed unless sign=False), for tests of malformed requests.

        `headers` and `extra_headers` are the same thing: sent as given, after the signature.
        """
        request = DriverRequest("raw", body, content_type)
        return await self.deliver(
            request,
            sign=sign,
            timestamp=timestamp,
            retry_num=retry_num,
            extra_headers={**(headers or {}), **(extra_headers or {})},
        )

    async def retry(
        self,
        request: DriverRequest | DriverResponse | None = None,
        *,
        retry_num: int = 1,
        reason: str | None = None,
    ) -> DriverResponse:
        """Re-delivers the same body (the last request by default) as Slack's retry does.

        The reason defaults to Slack's: `http_timeout` over HTTP, `timeout` over Socket Mode.
        """
        if isinstance(request, DriverResponse):
            request = request.request
        request = request or self.last_request
        if request is None:
            raise RuntimeError("nothing to retry: no request was delivered yet")
        return await self.deliver(request, retry_num=retry_num, retry_reason=reason)

    async def deliver(
        self,
        request: DriverRequest,
        *,
        sign: bool = True,
        timestamp: int | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> DriverResponse:
        """Sends a request to the bot, applies its answer and records the delivery.

        Over HTTP it is a signed POST; over Socket Mode an envelope (no signature: the
        connection itself is authenticated), whose ack is awaited up to `ack_deadline`.
        """
        transport = self.transport
        self.last_request = request
        if transport == "socket":
            response, sent = await self._send_envelope(
                request, retry_num, retry_reason or "timeout"
            )
        else:
            headers = {"Content-Type": request.content_type}
            if sign:
                headers.update(self.sign(request.body, timestamp or int(time.time())))
            if retry_num is not None:
                headers["X-Slack-Retry-Num"] = str(retry_num)
                headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
            headers.update(extra_headers or {})
            response = await self._post(request, headers)
            sent = request.body.decode("utf-8", "replace")
        note = self._apply(request, response) if response.ok else self._failure_note(response)
        response = DriverResponse(
            status=response.status,
            body=response.body,
            json=response.json,
            elapsed_ms=response.elapsed_ms,
            request=request,
            timed_out=response.timed_out,
            note=note or response.note,
        )
        self.emu.deliveries.append(
            Delivery(
                kind=request.kind,
                body=sent,
                status=response.status,
                answer=response.body,
                elapsed_ms=response.elapsed_ms,
                at=time.time(),
                retry_num=retry_num,
                note=response.note,
                transport=transport,
            )
        )
        return response

    async def _send_envelope(
        self, request: DriverRequest, retry_num: int | None, retry_reason: str
    ) -> tuple[DriverResponse, str]:
        """Sends a request as a Socket Mode envelope: (the answer, the envelope as sent)."""
        spec = socket_mode.ENVELOPE_TYPES.get(request.kind)
        if spec is None:
            note = f"{request.kind!r} requests have no Socket Mode envelope; send them over HTTP"
            return DriverResponse(0, "", None, 0.0, note=note, by_slack=True), ""
        envelope_type, accepts_payload = spec
        # The payload is what the HTTP body encodes: the command's fields, or the interaction.
        answer = await self.emu.socket.send(
            envelope_type,
            dict(request.fields),
            accepts_response_payload=accepts_payload,
            retry_attempt=retry_num,
            retry_reason=retry_reason,
            deadline=self.ack_deadline,
        )
        sent = json.dumps(answer.envelope, separators=(",", ":"))
        if not answer.acked:
            response = DriverResponse(
                0, "", None, answer.elapsed_ms, timed_out=answer.timed_out, note=answer.note
            )
            return response, sent
        payload = answer.payload
        body = "" if payload is None else json.dumps(payload)
        return DriverResponse(200, body, payload, answer.elapsed_ms), sent

    async def _post(self, request: DriverRequest, headers: dict[str, str]) -> DriverResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        started = time.perf_counter()
        try:
            async with self._session.post(
                self.events_url,
                data=_payload(request.body),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                status, text = resp.status, (await resp.read()).decode("utf-8", "replace")
        except TimeoutError:
            elapsed = (time.perf_counter() - started) * 1000
            return DriverResponse(0, "", None, elapsed, timed_out=True, note="no answer")
        except aiohttp.ClientError as e:
            elapsed = (time.perf_counter() - started) * 1000
            return DriverResponse(0, f"delivery failed: {e!r}", None, elapsed, note=repr(e))
        elapsed = (time.perf_counter() - started) * 1000
        parsed: Any = None
        if text.strip():
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        late = elapsed > self.ack_deadline * 1000
        return DriverResponse(status, text, parsed, elapsed, timed_out=late)

    def _failure_note(self, response: DriverResponse) -> str | None:
        if response.timed_out and response.status:
            return (
                f"answered after {response.elapsed_ms:.0f} ms; Slack gives up after "
                f"{self.ack_deadline:.0f} s (operation_timeout) and ignores the answer"
            )
        if response.status and not 200 <= response.status < 300:
            return f"the bot answered HTTP {response.status}; Slack shows the person an error"
        return response.note

    # -- applying answers -----------------------------------------------------------------

    def _apply(self, request: DriverRequest, response: DriverResponse) -> str | None:
        if request.kind == "command":
            return self._apply_command_answer(request, response)
        if request.kind == "view_submission" and request.view_id is not None:
            return self._apply_view_answer(request.view_id, response)
        return None

    def _apply_command_answer(self, request: DriverRequest, response: DriverResponse) -> str | None:
        if not response.body.strip():
            return None
        data = response.json if isinstance(response.json, dict) else {"text": response.body}
        content = message_content(data)
        if isinstance(content, ApiResult):
            return f"Slack refused the answer: {content.error} {content.body.get('errors', '')}"
        if content.empty:
            return None
        channel, user = str(request.fields["channel_id"]), str(request.fields["user_id"])
        blocks = with_generated_ids(content.blocks or [])
        if data.get("response_type") == "in_channel":
            self.emu.post(
                channel,
                user=self.emu.bot_user_id,
                text=content.text or "",
                blocks=blocks,
                attachments=content.attachments,
            )
        else:
            self.emu.add_ephemeral(
                channel,
                user,
                text=content.text or "",
                blocks=blocks,
                attachments=content.attachments,
            )
        return None

    def _apply_view_answer(self, view_id: str, response: DriverResponse) -> str | None:
        view = self.emu.views[view_id]
        data = response.json if isinstance(response.json, dict) else {}
        action = data.get("response_action")
        if action is None:
            view_stack.close_view(self.emu, view)
            return None
        if action == "errors":
            errors = data.get("errors")
            view.errors = {str(k): str(v) for k, v in (errors or {}).items()}
            self.emu.changed()
            inputs = {
                str(b.get("block_id"))
                for b in view.view.get("blocks") or []
                if b.get("type") == "input"
            }
            unknown = sorted(set(view.errors) - inputs)
            if unknown:
                return f"errors name blocks that are not inputs of the view: {unknown}"
            return None
        if action == "clear":
            view_stack.close_view(self.emu, view, whole_stack=True)
            return None
        if action in ("update", "push"):
            new_view = data.get("view")
            problems = validate_view(new_view)
            if problems:
                return f"Slack refused the {action}d view: {problems}"
            assert isinstance(new_view, dict)  # validate_view refuses anything else
            if action == "update":
                view_stack.update_view(self.emu, view, new_view)
            else:
                view_stack.push_view(self.emu, view, new_view, None)
            return None
        return f"unknown response_action {action!r}"

    # -- helpers --------------------------------------------------------------------------

    def _user(self, user: str | None) -> str:
        if user is None:
            return self.emu.default_user()
        if user not in self.emu.users:
            raise ValueError(f"unknown user {user!r}; the emulator has {sorted(self.emu.users)}")
        return user

    def _channel(self, channel: str | None) -> str:
        if channel is None:
            return self.emu.default_channel()
        resolved = self.emu.resolve_channel(channel)
        if resolved is None:
            raise ValueError(f"unknown channel {channel!r}; the emulator has {self.emu.channels}")
        return resolved

    def _open_view(self, view_id: str) -> View:
        view = self.emu.views.get(view_id)
        if view is None:
            raise LookupError(f"no view {view_id!r}; views: {sorted(self.emu.views)}")
        if not view.is_open:
            raise ValueError(f"view {view_id} is closed")
        return view
