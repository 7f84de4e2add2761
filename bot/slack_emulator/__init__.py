"""An in-process Slack: the Web API the bot calls, and a driver that acts as Slack toward it.

emu = SlackEmulator()
async with emu.serve() as base_url:          # base_url: http://127.0.0.1:<free port>
    client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    emu.bot_events_url = "http://127.0.0.1:3000/slack/events"
    async with SlackDriver(emu) as driver:
        await driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
"""

from .driver import DriverRequest, DriverResponse, SlackDriver
from .emulator import DEFAULT_CHANNELS, DEFAULT_USERGROUPS, DEFAULT_USERS, SlackEmulator
from .models import Delivery, EmulatorUser, Ephemeral, Message, MessageVersion, RecordedCall, View

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
    "View",
]
