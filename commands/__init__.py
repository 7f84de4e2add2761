"""Slash-command families. Each module exposes HELP, register(app, deps) and
register_jobs(registry); adding a family here adds it to /ops help and the manifest."""

from __future__ import annotations

from types import ModuleType

from bot.deps import Shortcut
from commands import ack, alerts, build, deploy, ops, task

FAMILIES: tuple[ModuleType, ...] = (ops, task, build, deploy, alerts, ack)


def shortcuts() -> list[Shortcut]:
    """Every family's message shortcuts (a family may declare SHORTCUTS)."""
    return [s for family in FAMILIES for s in getattr(family, "SHORTCUTS", ())]
