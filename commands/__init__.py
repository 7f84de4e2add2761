"""Slash-command families. Each module exposes HELP, register(app, deps) and
register_jobs(registry); adding a family here adds it to /ops help and the manifest."""

from __future__ import annotations

from types import ModuleType

from commands import ack, alerts, ops

FAMILIES: tuple[ModuleType, ...] = (ops, alerts, ack)
