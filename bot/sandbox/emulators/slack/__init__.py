"""An in-process Slack: the Web API the bot calls, and a driver that acts as Slack toward it.

emu = SlackEmulator()
async with emu.serve() as base_url:          # base_url: http://127.0.0.1:<free port>
    client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    emu.bot_events_url = "http://127.0.0.1:3000/slack/events"
    async with SlackDriver(emu) as driver:
        await driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")

Socket Mode (or SlackEmulator(socket_mode=True)): the bot opens apps.connections.open with
emu.app_token and connects; then
    async with SlackDriver(emu, transport="socket") as driver:
        await driver.command("/ops", "help")   # an envelope; the ack's payload is applied
"""

from .driver import DriverRequest, DriverResponse, SlackDriver, Transport
from .emulator import DEFAULT_CHANNELS, DEFAULT_USERGROUPS, DEFAULT_USERS, SlackEmulator
from .models import Delivery, EmulatorUser, Ephemeral, Message, MessageVersion, RecordedCall, View
from .socket_mode import SocketAnswer, SocketConnection, SocketModeHub

__all__ = [
    "DEFAULT_CHANNELS",
    "DEFAULT_USERGROUPS",
    "DEFAULT_USERS",
    "Delivery",
    "DriverRequest",
    "DriverResponse",
    "EmulatorUser",
    "Ephemeral",
    "Message",
    "MessageVersion",
    "RecordedCall",
    "SlackDriver",
    "SlackEmulator",
    "SocketAnswer",
    "SocketConnection",
    "SocketModeHub",
    "Transport",
    "View",
]
