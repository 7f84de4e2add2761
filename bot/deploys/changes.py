"""The small pieces every deploy decision is made of: a stored change that applies only to the
rollout it was meant for, the outbox entries (audit entries, thread replies) a decision stores
with it, and the value a button carries. Used by bot/deploys/service.py and by the Flagger
gate (bot/deploys/flagger_gate.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.deploys.rollout import Rollout, Stale
from bot.errors import UserError


def parse_button(value: str) -> tuple[str, str, int | None]:
    """A button's `<service>|<rollout id>|<step>`."""
    parts = value.split("|")
    if len(parts) not in (2, 3) or not all(parts) or (len(parts) == 3 and not _is_step(parts[2])):
        raise UserError("This button is not one opsloop made.")
    return parts[0], parts[1], int(parts[2]) if len(parts) == 3 else None


def _is_step(text: str) -> bool:
    return text.lstrip("-").isdigit()


def only(
    rollout_id: str, change: Callable[[Rollout], Rollout]
) -> Callable[[Rollout | None], tuple[Rollout, None]]:
    def decide(cur: Rollout | None) -> tuple[Rollout, None]:
        if cur is None or cur.id != rollout_id:
            raise Stale(rollout_id)
        return change(cur), None

    return decide


def without(item: dict[str, Any]) -> Callable[[Rollout], Rollout]:
    def drop(cur: Rollout) -> Rollout:
        kept = list(cur.outbox)
        if item in kept:
            kept.remove(item)
        return replace(cur, outbox=kept)

    return drop


def audit_entry(who: str, action: str, subject: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"audit": {"who": who, "action": action, "subject": subject, "detail": detail}}


def reply_entry(text: str) -> dict[str, Any]:
    return {"reply": text}


__all__ = ["audit_entry", "only", "parse_button", "reply_entry", "without"]
