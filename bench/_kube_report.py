"""What the Kubernetes cases of `bench.deploy_flow` measured, and the tables they print:
opsloop next to kubectl (and its ack next to the bare Bolt app's), percentiles and ratios, as
the Docker case prints its own."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.deploy_flow import ACK_DEADLINE_MS, BARE_BOLT, OPSLOOP, STATS, fmt, ratio, summary

KUBECTL = "kubectl"


@dataclass
class KubeClick:
    """One Approve click on opsloop, and the bare Bolt app's ack of the same button."""

    kind: str
    round: int
    percent: int
    ack_ms: float = math.nan
    ack_status: int = 0
    bare_ack_ms: float = math.nan
    reply_s: float = math.nan  # click -> the "Approved by" thread reply was posted
    read_s: float = math.nan  # click -> the step's job read the object, before its write
    patch_s: float = math.nan  # click -> the step's first write arrived at the API server
    cluster_s: float = math.nan  # click -> the cluster stands at the step, pods available
    done_reply_s: float = math.nan  # click -> the thread reply saying the step is done
    slack_s: float = math.nan  # click -> the rollout's message says the step is done
    min_available: int = 0  # fewest pods of the service available during the step
    note: str = ""


@dataclass
class KubectlStep:
    """The same step made with kubectl, timed from its first command's start."""

    kind: str
    round: int
    percent: int
    commands: int = 0
    patch_s: float = math.nan  # -> the first write arrived at the API server
    exit_s: float = math.nan  # -> the last command exited
    cluster_s: float = math.nan  # -> the cluster stands at the step
    min_available: int = 0  # fewest pods of the service available during the step


@dataclass
class KubeRound:
    number: int
    canary_s: dict[str, float] = field(default_factory=dict)  # /deploy -> first step, per kind
    promotes: dict[str, int] = field(default_factory=dict)  # promote patches opsloop sent (Argo)
    slack_posts: int = 0
    slack_429s: int = 0
    clicks: list[KubeClick] = field(default_factory=list)
    kubectl: list[KubectlStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


Row = tuple[str, dict[str, float] | None, str]


def table(kind: str, rounds: list[KubeRound]) -> tuple[list[str], dict[str, Any]]:
    clicks = [c for r in rounds for c in r.clicks if c.kind == kind]
    floor = [s for r in rounds for s in r.kubectl if s.kind == kind]
    rows: list[Row] = []
    measures: dict[str, Any] = {}

    def measure(title: str, unit: str, ours: list[float], base: list[float], name: str) -> None:
        s_ours, s_base = summary(ours), summary(base)
        ratios = {k: ratio(s_ours[k], s_base[k]) for k in STATS}
        measures[title] = {OPSLOOP: s_ours, name: s_base, "ratio": ratios}
        rows.extend([(f"{title} ({unit})", None, ""), ("  " + OPSLOOP, s_ours, unit)])
        rows.extend([("  " + name, s_base, unit), (f"  ratio {OPSLOOP} / {name}", ratios, "x")])

    acked = [c.ack_ms for c in clicks if 200 <= c.ack_status < 300]
    measure("click -> ack", "ms", acked, [c.bare_ack_ms for c in clicks], BARE_BOLT)
    for title, ours, base, name in (
        ("click -> first write at the API server", "patch_s", "patch_s", KUBECTL),
        ("click -> cluster at the step", "cluster_s", "cluster_s", KUBECTL),
        ("click -> Slack message says done", "slack_s", "exit_s", KUBECTL + " exits"),
    ):
        mine, theirs = [getattr(c, ours) for c in clicks], [getattr(s, base) for s in floor]
        measure(title, "s", mine, theirs, name)
    width = max(len(r[0]) for r in rows)
    head = f"{kind:<{width}} {'n':>3} " + " ".join(f"{k:>8}" for k in STATS)
    lines = [head, "-" * len(head)]
    for name, stats, unit in rows:
        if stats is None:
            lines.append(name)
            continue
        cells = " ".join(fmt(stats[k], unit) for k in STATS)
        n = f"{stats['n']:>3}" if "n" in stats else "   "
        lines.append(f"{name:<{width}} {n} {cells}")
    return lines, measures


BY_STEP: tuple[tuple[str, str, str], ...] = (
    # (heading, opsloop click or kubectl step, field); the width is the heading's
    ("ack ms", "click", "ack_ms"),
    ("reply s", "click", "reply_s"),
    ("read s", "click", "read_s"),
    ("write s", "click", "patch_s"),
    ("cluster s", "click", "cluster_s"),
    ("done reply", "click", "done_reply_s"),
    ("message s", "click", "slack_s"),
    ("kubectl write", "floor", "patch_s"),
    ("kubectl exit", "floor", "exit_s"),
    ("kubectl cluster", "floor", "cluster_s"),
)


def by_step(kind: str, rounds: list[KubeRound]) -> list[str]:
    """p50 of each measure per step: where opsloop's time goes, next to kubectl's."""
    head = f"{'step':>5} {'n':>3} " + " ".join(h for h, _, _ in BY_STEP)
    lines = [f"{kind}: p50 by step", head, "-" * len(head)]
    percents = sorted({c.percent for r in rounds for c in r.clicks if c.kind == kind})
    for percent in percents:
        this = (kind, percent)
        rows: dict[str, list[Any]] = {
            "click": [c for r in rounds for c in r.clicks if (c.kind, c.percent) == this],
            "floor": [s for r in rounds for s in r.kubectl if (s.kind, s.percent) == this],
        }
        cells = []
        for heading, who, name in BY_STEP:
            p50 = summary([getattr(x, name) for x in rows[who]])["p50"]
            unit = "ms" if name == "ack_ms" else ("s" if who == "click" else "s3")
            text = f"{p50:.3f}" if unit == "s3" and not math.isnan(p50) else fmt(p50, unit)
            cells.append(text.strip().rjust(len(heading)))
        lines.append(f"{percent:>4}% {len(rows['click']):>3} " + " ".join(cells))
    return lines


def checks(rounds: list[KubeRound], kinds: list[str], replicas: int) -> list[tuple[str, bool, str]]:
    clicks = [c for r in rounds for c in r.clicks]
    acked = [c for c in clicks if 200 <= c.ack_status < 300 and c.ack_ms < ACK_DEADLINE_MS]
    reached = [c for c in clicks if not math.isnan(c.cluster_s)]
    said = [c for c in clicks if not math.isnan(c.slack_s)]
    argo_clicks = {r.number: sum(c.kind == "argo" for c in r.clicks) for r in rounds}
    twice = [
        f"round {r.number}: {r.promotes['argo']} promotes for {argo_clicks[r.number]} clicks"
        for r in rounds
        if "argo" in r.promotes and r.promotes["argo"] != argo_clicks[r.number]
    ]
    missed = [f"round {r.number}: {n}" for r in rounds for n in r.notes]
    slowest = max((c.ack_ms for c in clicks), default=math.nan)
    out = [
        (
            f"every Approve acknowledged (2xx) within {ACK_DEADLINE_MS / 1000:g} s",
            len(acked) == len(clicks) > 0,
            f"{len(acked)} of {len(clicks)} clicks, slowest {slowest:.1f} ms",
        ),
        ("every step reached on the cluster", len(reached) == len(clicks), f"{len(reached)}"),
        ("every step shown as done in the message", len(said) == len(clicks), f"{len(said)}"),
        ("every round ran all its clicks", not missed, "; ".join(missed) or "yes"),
    ]
    if "argo" in kinds:
        out.append(("one promote patch per Argo click", not twice, "; ".join(twice) or "yes"))
    if "deployment" in kinds:  # opsloop is the Deployment's canary controller (Argo is its own)
        ours = min((c.min_available for c in clicks if c.kind == "deployment"), default=0)
        floor = [s.min_available for r in rounds for s in r.kubectl if s.kind == "deployment"]
        out.append(
            (
                f"never fewer than {replicas} pods available during a Deployment step",
                ours >= replicas,
                f"fewest {ours} (kubectl's commands as typed: fewest {min(floor, default=0)})",
            )
        )
    return out


NOTE = """\
All from the click (kubectl's from its first command's start). reply: the "Approved by" thread
reply was posted (the click's job ran); read: the step's job read the object (its last GET
before the write); write: the step's first write arrived at the API server (Argo: the promote
PATCH of rollouts/<name>/status; a Deployment: its canary's scale, at 100% the stable one's
image); cluster: the emulator's objects stand at the step, pods available (looked at every
20 ms); done reply: the thread reply saying the step is done was posted; message: the
rollout's Slack message says so. kubectl: the same writes as kubectl commands one after the
other; exits: the last one returned (what the person has instead of the message)."""


def report(
    rounds: list[KubeRound], kinds: list[str], args: argparse.Namespace, info: dict[str, Any]
) -> dict[str, Any]:
    summaries = {}
    for kind in kinds:
        lines, summaries[kind] = table(kind, rounds)
        print("\n" + "\n".join(lines) + "\n\n" + "\n".join(by_step(kind, rounds)))
    print("\n" + NOTE + "\n\nChecks:")
    verdicts = checks(rounds, kinds, args.replicas)
    for name, ok, detail in verdicts:
        print(f"  {'PASS' if ok else 'MISS'}  {name}: {detail}")
    return {
        "machine": info,
        "rounds": args.rounds,
        "replicas": args.replicas,
        "kinds": kinds,
        "summary": summaries,
        "checks": [{"name": n, "pass": ok, "measured": d} for n, ok, d in verdicts],
        "per_round": [asdict(r) for r in rounds],
    }
