"""How a command family describes itself to `/ops help` and the manifest.

Plain data with no imports of the bot, so that the shared wording (bot.replies) and the manifest
can use it without loading the process's wiring (bot.deps) and every client behind it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandHelp:
    """One slash-command family as `/ops help` and the manifest describe it."""

    command: str
    summary: str
    usage: tuple[str, ...]


@dataclass(frozen=True)
class Shortcut:
    """A message shortcut as the manifest declares it."""

    name: str
    callback_id: str
    description: str
