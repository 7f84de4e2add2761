"""Slack's Socket Mode: `apps.connections.open` and the WebSocket that carries envelopes.

In Socket Mode Slack does not POST to the app's Request URL; the app opens a WebSocket and
Slack sends each slash command and interaction down it, as slack_sdk's SocketModeClient
expects:

1. `apps.connections.open`, with the app-level token (`xapp-`) as a Bearer header, answers
   `{"ok": true, "url": "wss://.../link/?ticket=...&app_id=..."}`; each ticket opens one
   connection. Here the URL is plain `ws://` on the emulator's own port.
2. On connect the server sends `{"type": "hello", "num_connections": N, ...}`.
3. Envelopes: `{"envelope_id", "type": "slash_commands" | "interactive" | "events_api",
   "payload", "accepts_response_payload"}`, plus `retry_attempt` and `retry_reason` on a retry.
   The app acks with `{"envelope_id"}` and, where accepted, a `payload` that Slack applies as
   it would an HTTP answer body. Slack waits 3 s for the ack and ignores a later one.
4. `{"type": "disconnect", "reason": ...}` asks the app to open a fresh connection.

WebSocket pings are answered with pongs by aiohttp (autoping), as Slack's servers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from .api_result import ApiResult, fail, ok
from .models import JSON

if TYPE_CHECKING:
    from .emulator import SlackEmulator

ROUTE = "/link/"
NO_CLIENT = "no Socket Mode client connected"
# Envelope type and accepts_response_payload for each kind of driver request. Slack takes a
# response payload for slash commands and view submissions only (for a click it is ignored).
ENVELOPE_TYPES: dict[str, tuple[str, bool]] = {
    "command": ("slash_commands", True),
    "block_actions": ("interactive", False),
    "message_action": ("interactive", False),
    "view_submission": ("interactive", True),
    "view_closed": ("interactive", False),
}
_DEBUG_HOST = "applink-emulator"


def connections_open(emu: SlackEmulator, token: str, base_url: str) -> ApiResult:
    """`apps.connections.open`: a one-connection WebSocket URL, for the app-level token only."""
    if token == emu.bot_token:
        # A real token of the wrong kind: Slack names the kind, not the token, as the problem.
        return fail("not_allowed_token_type")
    if token != emu.app_token:
        return fail("invalid_auth")
    ticket = emu.socket.issue_ticket()
    # http://host:port -> ws://host:port (https -> wss), the same server as the Web API.
    ws_base = "ws" + base_url.rstrip("/").removeprefix("http")
    return ok(url=f"{ws_base}{ROUTE}?ticket={ticket}&app_id={emu.app_id}")


@dataclass(eq=False)
class SocketConnection:
    """One open WebSocket from the app, and every message it sent, in order."""

    id: str
    ticket: str
    ws: web.WebSocketResponse
    opened_at: float
    received: list[Any] = field(default_factory=list)

    @property
    def open(self) -> bool:
        """Whether envelopes can still be sent down this connection."""
        return not self.ws.closed


@dataclass(frozen=True)
class SocketAnswer:
    """How the app answered one envelope: its ack (None when none came in time)."""

    envelope: JSON
    ack: JSON | None
    elapsed_ms: float
    note: str | None = None
    timed_out: bool = False

    @property
    def acked(self) -> bool:
        """Whether the app acked within the deadline."""
        return self.ack is not None

    @property
    def payload(self) -> Any:
        """The response payload of the ack (None: a bare ack)."""
        return None if self.ack is None else self.ack.get("payload")


@dataclass
class _Pending:
    future: asyncio.Future[JSON]
    connection: SocketConnection
    started: float
    expired: bool = False


class SocketModeHub:
    """The emulator's Socket Mode side: tickets, open connections and envelopes in flight."""

    def __init__(self, emu: SlackEmulator) -> None:
        self._emu = emu
        self.tickets: dict[str, bool] = {}  # ticket -> already used for a connection
        self.connections: list[SocketConnection] = []
        self.connects = 0  # connections ever accepted: a reconnect shows as a second one
        self.envelopes: list[JSON] = []  # every envelope sent, oldest first
        self.late_acks: list[JSON] = []  # acks that came after Slack had given up
        self._pending: dict[str, _Pending] = {}

    # -- connections ----------------------------------------------------------------------

    def issue_ticket(self) -> str:
        """A fresh ticket for one connection."""
        ticket = secrets.token_urlsafe(18)
        self.tickets[ticket] = False
        return ticket

    @property
    def connected(self) -> bool:
        """Whether an app is connected and can receive envelopes."""
        return self.current() is not None

    def current(self) -> SocketConnection | None:
        """The connection the next envelope goes to: the newest open one.

        While an app reconnects (after a `disconnect`) both may be open for a moment; the new
        one is the one the app keeps.
        """
        for conn in reversed(self.connections):
            if conn.open:
                return conn
        return None

    async def wait_for_client(self, within: float = 10.0) -> bool:
        """Waits until an app is connected; False if none connected within `within` s."""
        deadline = time.monotonic() + within
        while not self.connected:
            if time.monotonic() >= deadline:
                return False
            # Polled: connections come and go in the WebSocket handler, not in one place.
            await asyncio.sleep(0.02)
        return True

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket route: checks the ticket, says hello, then reads the app's acks."""
        ticket = request.query.get("ticket", "")
        if self.tickets.get(ticket, True):
            # Unknown or spent: the app must call apps.connections.open again.
            return web.Response(status=401, text="invalid or already used ticket\n")
        self.tickets[ticket] = True
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = SocketConnection(uuid.uuid4().hex, ticket, ws, time.time())
        self.connections.append(conn)
        self.connects += 1
        try:
            await ws.send_json(self._hello())
            self._emu.changed()
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._receive(conn, msg.data)
        finally:
            self.connections.remove(conn)
            self._fail_pending(conn)
            self._emu.changed()
        return ws

    def _hello(self) -> JSON:
        return {
            "type": "hello",
            "num_connections": sum(1 for c in self.connections if c.open),
            "debug_info": {
                "host": _DEBUG_HOST,
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self._emu.app_id},
        }

    def _receive(self, conn: SocketConnection, text: str) -> None:
        try:
            message: Any = json.loads(text)
        except ValueError:
            conn.received.append(text)
            return
        conn.received.append(message)
        if not isinstance(message, dict):
            return
        envelope_id = message.get("envelope_id")
        pending = self._pending.pop(envelope_id, None) if isinstance(envelope_id, str) else None
        if pending is None:
            return
        if pending.expired:
            elapsed = (time.perf_counter() - pending.started) * 1000
            self.late_acks.append({"envelope_id": envelope_id, "elapsed_ms": elapsed, **message})
        elif not pending.future.done():
            pending.future.set_result(message)

    def _fail_pending(self, conn: SocketConnection) -> None:
        # An envelope sent down a connection that closed will never be acked on it: say so now
        # rather than after the deadline.
        for envelope_id, pending in list(self._pending.items()):
            if pending.connection is conn:
                del self._pending[envelope_id]
                if not pending.future.done():
                    pending.future.set_exception(ConnectionResetError("connection closed"))

    async def disconnect(self, reason: str = "refresh_requested") -> int:
        """Sends `disconnect` on every open connection (the app reconnects); returns how many."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": _DEBUG_HOST}}
        sent = 0
        for conn in list(self.connections):
            if conn.open:
                with contextlib.suppress(ConnectionError):
                    await conn.ws.send_json(message)
                    sent += 1
        return sent

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Closes every connection from the server side (the emulator is stopping)."""
        for conn in list(self.connections):
            with contextlib.suppress(ConnectionError):
                await conn.ws.close(code=code, message=b"server shutting down")

    # -- envelopes ------------------------------------------------------------------------

    async def send(
        self,
        envelope_type: str,
        payload: JSON,
        *,
        accepts_response_payload: bool,
        retry_attempt: int | None = None,
        retry_reason: str = "timeout",
        deadline: float = 3.0,
    ) -> SocketAnswer:
        """Sends one envelope to the connected app and waits up to `deadline` s for its ack."""
        envelope: JSON = {
            "envelope_id": str(uuid.uuid4()),
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        self.envelopes.append(envelope)
        conn = self.current()
        if conn is None:
            return SocketAnswer(envelope, None, 0.0, note=NO_CLIENT)
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        pending = _Pending(future, conn, time.perf_counter())
        self._pending[envelope["envelope_id"]] = pending
        try:
            await conn.ws.send_json(envelope)
            # Shielded: on timeout the entry stays, so a late ack is recorded, not lost.
            ack = await asyncio.wait_for(asyncio.shield(future), deadline)
        except TimeoutError:
            pending.expired = True
            return SocketAnswer(
                envelope,
                None,
                self._elapsed(pending),
                note=f"no ack within {deadline:g} s; Slack shows the person operation_timeout "
                "and ignores a later ack",
                timed_out=True,
            )
        except ConnectionError as e:
            self._pending.pop(envelope["envelope_id"], None)
            note = f"the Socket Mode connection closed before the ack ({e})"
            return SocketAnswer(envelope, None, self._elapsed(pending), note=note)
        return SocketAnswer(envelope, ack, self._elapsed(pending))

    @staticmethod
    def _elapsed(pending: _Pending) -> float:
        return (time.perf_counter() - pending.started) * 1000
