"""The canary's evidence: each of a service's `analysis` queries measured for the canary and
for the stable version, judged against `max_regression`, and kept on the rollout.

A measurement is a plain dict stored on the rollout (`Rollout.evidence`), so the approval
message (bot/deploys/evidence_messages.py) shows it without the YAML, and a job run twice
stores the same thing twice:

    {"step": 0, "version": "2", "stable": "1", "at": <epoch>, "max_regression": 0.2,
     "note": None,  # why nothing was measured ("the canary does not run yet", ...)
     "rows": [{"name": "error_rate", "canary": 0.1, "stable": 0.05, "regression": 1.0,
               "verdict": "worse", "required": False, "problem": None}, ...]}

Every query is "higher is worse" (an error rate, a latency). The canary is worse when its value
exceeds stable's by more than `max_regression`, relatively: canary > stable + |stable| * r. A
stable value of 0 makes any canary value above 0 worse (there is no ratio to allow); a query
that should tolerate small values says so itself, e.g. `clamp_min(<expr>, 0.001)`. A query that
fails or gives nothing is unknown, which blocks only when the YAML names it in `required`.

`measure` asks the Measures port (bot/deploys/ports.py); everything else here is pure. The
deploy flow measures afresh when a person clicks Approve (bot/deploys/service.py) and a job
measures again while the request waits (bot/deploys/evidence_watch.py); `recorded` stores a
measurement on the rollout it was taken for, withdrawing approvals given while the canary was
still healthy.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import replace
from typing import Any

from bot.config_types import Analysis, Service
from bot.deploys.changes import audit_entry, reply_entry
from bot.deploys.ports import Measures
from bot.deploys.rollout import AWAITING, Refused, Rollout, Stale
from bot.errors import IntegrationError

# One query's answer, however the metrics system's client is set: Approve runs in a job and
# the person hears within 30 s, so a slow system makes a query unknown instead.
ANSWER_SECONDS = 5.0

OK = "ok"
WORSE = "worse"
UNKNOWN = "unknown"
MISSING = "missing"  # unknown, and `required`: blocks like worse

NO_SYSTEM = "OPSLOOP_PROMETHEUS_URL is unset, so approvals carry no evidence"
NO_STABLE = "no stable version to compare the canary with"
NOT_RUNNING = "the canary does not run yet; it is measured once it does"

_PLACEHOLDER = re.compile(r"\$(version|service|namespace)\b")


def substitute(query: str, values: dict[str, str]) -> str:
    """`$version`, `$service` and `$namespace` in `query`, each as the inside of a PromQL
    string literal (a backslash or a quote escaped)."""

    def value(match: re.Match[str]) -> str:
        return values.get(match.group(1), "").replace("\\", "\\\\").replace('"', '\\"')

    return _PLACEHOLDER.sub(value, query)


def judge(canary: float | None, stable: float | None, max_regression: float) -> tuple[str, Any]:
    """(verdict, regression): the canary's excess over stable as a fraction of stable (None
    when unknown; "inf" when stable is 0 and the canary is not)."""
    if canary is None or stable is None:
        return UNKNOWN, None
    if stable == 0:
        return (OK, 0.0) if canary <= 0 else (WORSE, "inf")
    regression = (canary - stable) / abs(stable)
    # A hair of tolerance: exactly `max_regression` more is allowed, whatever floats make of it.
    return (WORSE if regression > max_regression + 1e-9 else OK), regression


def blocking(evidence: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The rows that refuse an approval: worse than allowed, or required and unknown."""
    if not evidence:
        return []
    return [row for row in evidence.get("rows", []) if row["verdict"] in (WORSE, MISSING)]


def _number(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4g}"


def regression_words(row: dict[str, Any]) -> str:
    """`+100%`, `-5%`, `+∞` (stable 0), or "" when unknown."""
    regression = row.get("regression")
    if regression is None:
        return ""
    if regression == "inf":
        return "+∞"
    return f"{float(regression) * 100:+.0f}%"


def row_words(row: dict[str, Any], evidence: dict[str, Any]) -> str:
    """One query as a person reads it in a refusal or the thread."""
    name = f"`{row['name']}`"
    if row["verdict"] == MISSING:
        why = f" ({row['problem']})" if row.get("problem") else ""
        return f"{name} is required and gave no answer{why}"
    limit = f"{evidence['max_regression'] * 100:g}%"
    return (
        f"{name} is {_number(row['canary'])} for the canary `{evidence['version']}` against "
        f"{_number(row['stable'])} for stable `{evidence['stable']}` "
        f"({regression_words(row)}, more than the {limit} allowed)"
    )


def refusal(evidence: dict[str, Any] | None) -> Refused | None:
    """Why Approve is refused by the evidence, with the numbers; None when it is not."""
    rows = blocking(evidence)
    if not rows or evidence is None:
        return None
    return Refused(
        "Approve is refused: " + "; ".join(row_words(r, evidence) for r in rows) + ".",
        "Look at the canary, then approve again once its numbers recover, or reject it.",
    )


def measurement(
    r: Rollout,
    analysis: Analysis,
    now: float,
    *,
    note: str | None = None,
    answers: dict[str, tuple[float | str | None, float | str | None]] | None = None,
) -> dict[str, Any]:
    """The record of one measurement of `r`: `answers` gives each query's (canary, stable)
    value, None when it gave nothing, or a string saying why it failed."""
    rows = []
    for name, (canary, stable) in (answers or {}).items():
        value_c = canary if isinstance(canary, float) else None
        value_s = stable if isinstance(stable, float) else None
        verdict, regression = judge(value_c, value_s, analysis.max_regression)
        required = name in analysis.required
        if verdict == UNKNOWN and required:
            verdict = MISSING
        problems = [p for p in (canary, stable) if isinstance(p, str)]
        if not problems and verdict in (UNKNOWN, MISSING):
            problems = ["no data"]
        rows.append(
            {
                "name": name,
                "canary": value_c,
                "stable": value_s,
                "regression": regression,
                "verdict": verdict,
                "required": required,
                "problem": problems[0] if problems else None,
            }
        )
    return {
        "step": r.step,
        "version": r.version,
        "stable": r.stable,
        "at": now,
        "max_regression": analysis.max_regression,
        "note": note,
        "rows": rows,
    }


def namespace_of(service: Service) -> str:
    """`$namespace`: the service's namespace where its kind of deployer has one (Kubernetes,
    Flagger), else empty. Read by name: the shared model does not know the plugins' keys."""
    namespace = getattr(service, "namespace", None)
    return namespace if isinstance(namespace, str) else ""


async def _ask(measures: Measures, query: str) -> float | str | None:
    """One query's number, None for nothing, or a few words saying why it failed."""
    try:
        async with asyncio.timeout(ANSWER_SECONDS):
            value = await measures.value(query)
    except IntegrationError as e:  # its message names the system ("Prometheus at ... is ...")
        return e.message
    except TimeoutError:
        return f"no answer within {ANSWER_SECONDS:g} s"
    if value is None or math.isnan(value):
        return None
    return float(value)


async def measure(
    measures: Measures | None, name: str, service: Service, r: Rollout, now: float
) -> dict[str, Any] | None:
    """Measure the canary of `r` against its stable version; None when the service has no
    `analysis` (or `r` is a request of Flagger's gate, whose own analysis runs in Flagger)."""
    analysis = service.analysis
    if analysis is None or r.checksum is not None:
        return None
    if measures is None:
        return measurement(r, analysis, now, note=NO_SYSTEM)
    if r.stable is None:
        return measurement(r, analysis, now, note=NO_STABLE)
    if r.step < 0:
        return measurement(r, analysis, now, note=NOT_RUNNING)
    shared = {"service": name, "namespace": namespace_of(service)}
    names = list(analysis.queries)
    asked = [
        _ask(measures, substitute(analysis.queries[n], {**shared, "version": version}))
        for n in names
        for version in (r.version, r.stable)
    ]
    values = await asyncio.gather(*asked)
    answers = {n: (values[2 * i], values[2 * i + 1]) for i, n in enumerate(names)}
    return measurement(r, analysis, now, answers=answers)


def applies(r: Rollout | None, evidence: dict[str, Any]) -> bool:
    """Whether `evidence` was measured for what `r` runs now."""
    return (
        r is not None
        and r.checksum is None
        and r.step == evidence["step"]
        and r.version == evidence["version"]
        and r.stable == evidence["stable"]
    )


def recorded(cur: Rollout | None, rollout_id: str, evidence: dict[str, Any]) -> Rollout:
    """`cur` with `evidence` stored; approvals already given are withdrawn, and the thread
    told why, when the canary has regressed while its request waits. Stale when the rollout
    moved on since the measurement began, or a newer one is stored."""
    if cur is None or cur.id != rollout_id or not applies(cur, evidence):
        raise Stale(rollout_id)
    stored = cur.evidence or {}
    if stored.get("step") == evidence["step"] and stored.get("at", 0) > evidence["at"]:
        raise Stale("a newer measurement is stored")
    r = replace(cur, evidence=evidence)
    rows = blocking(evidence)
    if r.state == AWAITING and r.approvals and rows:
        withdrawn = list(r.approvals)
        detail = {
            "withdrawn": withdrawn,
            "step": r.step + 1,
            "queries": {
                row["name"]: {"canary": row["canary"], "stable": row["stable"]} for row in rows
            },
        }
        words = "; ".join(row_words(row, evidence) for row in rows)
        who = ", ".join(f"<@{u}>" for u in withdrawn)
        r = replace(r, approvals=[])
        r.outbox = [
            *r.outbox,
            audit_entry("opsloop", "deploy.approvals_withdrawn", r.subject(), detail),
            reply_entry(
                f":warning: Approvals withdrawn ({who}): the canary regressed before the step "
                f"ran. {words}. Approve again once the numbers recover."
            ),
        ]
    return r


__all__ = [
    "MISSING",
    "OK",
    "UNKNOWN",
    "WORSE",
    "applies",
    "blocking",
    "judge",
    "measure",
    "measurement",
    "recorded",
    "refusal",
    "regression_words",
    "substitute",
]
