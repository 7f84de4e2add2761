"""What the HA soak's requests left behind, counted per kind, and the table and targets.

Per kind: sent (requests as their senders meant them; a person's retyped command is the same
request), acknowledged (a 2xx with an empty ack for Slack, any 2xx for Alertmanager, on some
delivery), took effect, duplicated, lost (acknowledged, no effect after the drain), 5xx and
unanswered deliveries (a refused connection or no answer within Slack's 3 s / Alertmanager's
10 s), all deliveries, and error answers (the person was told through the response_url that
something went wrong).

The effects, as a person would see them:
- task: an issue with the request's title in GitLab; duplicated when there are two, or two task
  messages in Slack with that title.
- build: a pipeline with the request's `SOAK` variable; duplicated when there are two, or two
  live build messages for its pipelines.
- help: an answer posted to one of the request's response_urls; duplicated when one
  response_url was answered twice.
- alert: the group's parent message in its channel, showing the state of the group's last
  acknowledged notification (so a lost edit counts as lost); duplicated when a group has two
  parent messages (counted on its first notification).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench._soak import BUILD_CHANNEL, KINDS, TASK_CHANNELS, Item
from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.sandbox.emulators.slack import Message, SlackEmulator

PIPELINE_ID = re.compile(r"Pipeline <[^|>]*\|#(\d+)>|Pipeline #(\d+)")


@dataclass
class Row:
    kind: str
    sent: int = 0
    acked: int = 0
    effect: int = 0
    duplicated: int = 0
    lost: int = 0
    server_errors: int = 0
    no_answer: int = 0
    deliveries: int = 0
    error_answers: int = 0
    lost_keys: list[str] = field(default_factory=list)
    duplicated_keys: list[str] = field(default_factory=list)


@dataclass
class Seen:
    """What GitLab and Slack hold after the drain, and the response_url answers by token."""

    issues: Counter[str]  # by title
    pipelines: dict[str, list[int]]  # SOAK value -> pipeline ids
    messages: dict[str, list[Message]]  # channel -> top-level messages
    answers: Counter[str]  # response_url token -> accepted posts

    def messages_in(self, channels: Iterable[str]) -> list[Message]:
        return [m for c in channels for m in self.messages.get(c, [])]


def seen(gitlab: GitLabEmulator, slack: SlackEmulator, answers: Counter[str]) -> Seen:
    pipelines: dict[str, list[int]] = {}
    for p in gitlab.ci.pipelines.values():
        for key, value, _ in p.variables:
            if key == "SOAK":
                pipelines.setdefault(value, []).append(p.id)
    return Seen(
        issues=Counter(i["title"] for i in gitlab.issues("acme/web")),
        pipelines=pipelines,
        messages={c: slack.messages(c) for c in slack.channels},
        answers=Counter(answers),
    )


def _token(response_url: str) -> str:
    return response_url.rstrip("/").rsplit("/", 1)[-1]


def _answers(item: Item, s: Seen) -> list[int]:
    return [s.answers[_token(u)] for u in item.response_urls]


# Each judge returns (took effect, duplicated, what was seen).
Judged = tuple[bool, bool, str]


def _task(item: Item, s: Seen) -> Judged:
    messages = [m for m in s.messages_in(TASK_CHANNELS) if item.key in m.text]
    issues = s.issues[item.key]
    return issues > 0, issues > 1 or len(messages) > 1, f"{issues} issues, {len(messages)} msgs"


def _build(item: Item, s: Seen) -> Judged:
    ids = set(s.pipelines.get(item.key, []))
    messages = [m for m in s.messages.get(BUILD_CHANNEL, []) if _pipeline_id(m.text) in ids]
    seen_ = f"pipelines {sorted(ids)}, {len(messages)} msgs"
    return bool(ids), len(ids) > 1 or len(messages) > 1, seen_


def _pipeline_id(text: str) -> int | None:
    found = PIPELINE_ID.search(text)
    return int(found.group(1) or found.group(2)) if found else None


def _help(item: Item, s: Seen) -> Judged:
    answered = _answers(item, s)
    return any(answered), any(n > 1 for n in answered), f"answers per response_url {answered}"


def _alert(item: Item, s: Seen, last_acked: dict[str, Item], first: set[str]) -> Judged:
    parents = [m for m in s.messages.get(item.channel, []) if item.group in m.text]
    shown = bool(parents)
    if last_acked.get(item.group) is item:
        # The newest state the bot accepted must be what the group's message shows.
        shown = any(f"[{item.state}]" in m.text for m in parents)
    showing = "; ".join(m.text[:60] for m in parents)
    seen_ = f"{len(parents)} parents, wanted [{item.state}], showing: {showing}"
    return shown, item.key in first and len(parents) > 1, seen_


def count(items: list[Item], s: Seen) -> list[Row]:
    rows = {k: Row(k) for k in KINDS}
    last_acked: dict[str, Item] = {}
    first_of: dict[str, str] = {}  # group -> its first notification's key
    for item in sorted((i for i in items if i.kind == "alert"), key=lambda i: i.at):
        first_of.setdefault(item.group, item.key)
        if item.acked:
            last_acked[item.group] = item
    first = set(first_of.values())
    for item in items:
        row = rows[item.kind]
        if item.kind == "task":
            effect, duplicated, what = _task(item, s)
        elif item.kind == "build":
            effect, duplicated, what = _build(item, s)
        elif item.kind == "help":
            effect, duplicated, what = _help(item, s)
        else:
            effect, duplicated, what = _alert(item, s, last_acked, first)
        row.sent += 1
        row.acked += item.acked
        row.effect += effect
        row.duplicated += duplicated
        if duplicated:
            row.duplicated_keys.append(f"{item.key} ({what})")
        if item.acked and not effect:
            row.lost += 1
            row.lost_keys.append(f"{item.key} ({what})")
        row.server_errors += item.server_errors
        row.no_answer += item.statuses.count(0)
        row.deliveries += item.deliveries
        if item.kind in ("task", "build"):
            row.error_answers += sum(_answers(item, s))
    return [rows[k] for k in KINDS]


def table(rows: list[Row]) -> list[str]:
    head = (
        f"{'kind':<6} {'sent':>5} {'acked':>6} {'took effect':>11} {'duplicated':>10} "
        f"{'lost':>5} {'5xx':>5} {'no answer':>9} {'deliveries':>10} {'error answers':>13}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.kind:<6} {r.sent:>5} {r.acked:>6} {r.effect:>11} {r.duplicated:>10} "
            f"{r.lost:>5} {r.server_errors:>5} {r.no_answer:>9} {r.deliveries:>10} "
            f"{r.error_answers:>13}"
        )
    lines.append(
        "acked: a 2xx (for Slack with an empty ack) on some delivery; lost: acked, no effect "
        "after the drain;\nno answer: a delivery refused or unanswered in time; deliveries: "
        "HTTP requests with every retry;\nerror answers: task/build requests answered through "
        "their response_url (only failures are)"
    )
    return lines


def verdicts(rows: list[Row], alert_statuses: Counter[int]) -> list[tuple[str, bool, str]]:
    """The issue's targets: 0 duplicated, 0 lost, 0 5xx. Alertmanager's 503 while Redis is
    away is the contract's own answer ("cannot be stored yet", Alertmanager repeats it), so
    Alertmanager is judged on any other 5xx and the 503s are shown beside it."""
    slack_5xx = sum(r.server_errors for r in rows if r.kind != "alert")
    other_alert_5xx = sum(n for s, n in alert_statuses.items() if s >= 500 and s != 503)

    def detail(attr: str) -> str:
        return ", ".join(f"{r.kind} {getattr(r, attr)}" for r in rows)

    return [
        ("0 duplicated", not any(r.duplicated for r in rows), detail("duplicated")),
        ("0 lost", not any(r.lost for r in rows), detail("lost")),
        ("0 5xx to Slack", slack_5xx == 0, detail("server_errors")),
        (
            "0 5xx to Alertmanager other than 503 (store not ready, repeated)",
            other_alert_5xx == 0,
            f"503: {alert_statuses.get(503, 0)}, other 5xx: {other_alert_5xx}",
        ),
    ]


def rows_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
