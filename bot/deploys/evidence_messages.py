"""The canary's evidence as the approval message shows it: one line per query, the canary's
value beside stable's, the regression, and when it was measured (bot/deploys/evidence.py keeps
the measurement on the rollout)."""

from __future__ import annotations

from typing import Any

from bot.deploys.evidence import MISSING, UNKNOWN, WORSE, applies, blocking, regression_words
from bot.deploys.rollout import AWAITING, PROMOTING, Rollout
from bot.replies import clock, escape, mrkdwn_section

_MARK = {WORSE: ":red_circle:", MISSING: ":no_entry:", UNKNOWN: ":white_circle:"}


def _number(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4g}"


def _row(row: dict[str, Any], limit: str) -> str:
    mark = _MARK.get(row["verdict"], ":large_green_circle:")
    name = f"`{escape(row['name'])}`"
    if row["verdict"] in (UNKNOWN, MISSING):
        why = f" ({escape(row['problem'])})" if row.get("problem") else ""
        must = ", required: Approve is refused until it answers" if row["required"] else ""
        return f"{mark} {name}: unknown{why}{must}"
    values = f"canary {_number(row['canary'])} vs stable {_number(row['stable'])}"
    said = f"{mark} {name}: {values} ({regression_words(row)})"
    if row["verdict"] == WORSE:
        said += f": worse than stable by more than {limit}"
    return said


def evidence_blocks(r: Rollout) -> list[dict[str, Any]]:
    """The evidence section of `r`'s approval message; none when the rollout has no
    measurement for what runs now, or is past its approvals."""
    evidence = r.evidence
    if not evidence or r.state not in (AWAITING, PROMOTING) or not applies(r, evidence):
        return []
    measured = f"measured {clock(evidence['at'])}"
    if evidence.get("note"):
        return [mrkdwn_section(f"*Evidence*: {escape(evidence['note'])} ({measured}).")]
    limit = f"{evidence['max_regression'] * 100:g}%"
    head = (
        f"*Evidence*: canary `{escape(evidence['version'])}` vs stable "
        f"`{escape(evidence['stable'])}`, {measured}"
    )
    lines = [head, *(_row(row, limit) for row in evidence["rows"])]
    if blocking(evidence) and r.state == AWAITING:
        lines.append(":no_entry: Approve is refused while this holds.")
    return [mrkdwn_section("\n".join(lines))]


__all__ = ["evidence_blocks"]
