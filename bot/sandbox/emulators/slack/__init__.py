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

As the sandbox runs it: SlackEmulator(commands=["/ops", ...]) knows the app's commands, and
Slackbot answers any other as Slack does (the app is never asked); usergroup_handles name the
groups (default: S0SRE is @sre); GET /archives/<channel>/p<ts> (a chat.getPermalink link)
redirects to the page at the message; POST /_emulator/session (the page loading) drops the
ephemerals and closes the open modal, as a reloading Slack client does.
"""

from .driver import DriverRequest, DriverResponse, SlackDriver, Transport
from .emulator import DEFAULT_CHANNELS, DEFAULT_USERGROUPS, DEFAULT_USERS, SlackEmulator
from .models import (
    SLACKBOT,
    Delivery,
    EmulatorUser,
    Ephemeral,
    Message,
    MessageVersion,
    RecordedCall,
    View,
)
from .socket_mode import SocketAnswer, SocketConnection, SocketModeHub

__all__ = [
    "DEFAULT_CHANNELS",
    "DEFAULT_USERGROUPS",
    "DEFAULT_USERS",
    "SLACKBOT",
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
