"""An Alertmanager storm against `opsloop serve`: 10,000 alerts in 1,000 groups.

    python -m bench.alert_storm [--groups 1000] [--alerts 10] [--first 7] [--concurrency 50]
                                [--workers 1] [--timeout 600] [--json PATH]

The bench starts everything itself on free loopback ports, each in its own process, and stops
each by its PID at the end (also on Ctrl-C, SIGTERM or an error): a real redis-server, Slack's
side (the project's Slack emulator, `python -m bench._storm slack`, which limits chat.postMessage
per channel like Slack: 1 a second, bursts of 3, 429 with Retry-After beyond it), `opsloop serve`
(HTTP and its in-process job worker) and `--workers` more `opsloop worker` processes, all on one
Redis, with an alerts route config (critical -> #incident, team=web -> #web, the rest -> #alerts)
and a webhook token.

Each group's notifications are posted to `POST /hooks/alertmanager` in order, as Alertmanager
does: the first carries `--first` of the group's alerts (those that arrived within group_wait),
the second all `--alerts` of them (group_interval later, the others joined); a group's second
notification is sent once its first was accepted. `--concurrency` requests are in flight; 5xx
answers and connection errors are retried with backoff, as Alertmanager retries them.

Measured: webhook accept latency (client side, per request); seconds from the first POST until
every group, then every alert, is in Redis (polled); Slack calls, 429s and whether each 429 was
honoured (the same call made again, no sooner than its Retry-After, and accepted); groups lost
(every groupKey must map to an open group holding all its alerts, i.e. listed by `/alerts`); how
long Slack took to catch up (every thread message posted, every storm summary showing its final
count, no update pending); and beside it the Slack messages a one-message-per-notification
design would need. While alerts are being stored, the job queue is sampled: how many jobs run at
once against the workers' slots, and how long 90% of them were taken while due jobs waited (jobs
that wait for Slack's budget or a lock hold their slot). Exit status 0 unless the bench itself
broke; misses are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import math
import os
import secrets
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench._common import (
    Children,
    base_env,
    bench_main,
    free_port,
    machine_info,
    opsloop_argv,
    process_cpu_seconds,
    read_port,
    start_redis,
    wait_http_ok,
    wait_workers,
)
from bench._load import percentile
from bench._storm import StormGroup, storm_notifications
from bot.jobs import build_worker
from bot.store.keys import (
    ALERT_BY_KEY,
    ALERTS_OPEN,
    PREFIX,
    QUEUE,
    alert_group_key,
    storm_key,
)

# Jobs one worker process runs at once (each `serve` or `worker` process has one worker).
SLOTS_PER_WORKER = int(inspect.signature(build_worker).parameters["max_jobs"].default)

START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
MAX_ATTEMPTS = 8  # per notification; Alertmanager gives up after its own limit too
STORED_POLL = 0.05
SLOTS_POLL = 0.25
BUSY_SHARE = 0.9  # "every slot taken", allowing for a worker between two jobs
COMPLETE_POLL = 0.5
CATCH_UP_POLL = 1.0
# A retry this much earlier than Retry-After still counts as honouring it (clock granularity
# of the emulator's record and of the bot's sleep).
RETRY_AFTER_SLACK = 0.05

ROUTES = {"critical": "C0INCIDENT", "web": "C0WEB", "default": "C0ALERTS"}
CHANNEL_NAMES = {"C0INCIDENT": "#incident", "C0WEB": "#web", "C0ALERTS": "#alerts"}


def routes_yaml() -> str:
    return (
        "alerts:\n"
        "  routes:\n"
        "    - match: {severity: critical}\n"
        f"      channel: {ROUTES['critical']}\n"
        "      escalate_after: 30m\n"
        "      escalate_to: [S0ONCALL]\n"
        "    - match: {team: web}\n"
        f"      channel: {ROUTES['web']}\n"
        f"    - channel: {ROUTES['default']}\n"
    )


# -- the stack ------------------------------------------------------------------------------


@dataclass
class Stack:
    children: Children
    redis_port: int
    redis_version: str
    slack_url: str
    hook_url: str
    token: str
    pids: dict[str, int]
    workers: int  # processes running jobs: serve's in-process worker and the others


def start_stack(children: Children, extra_workers: int) -> Stack:
    deadline = time.monotonic() + START_TIMEOUT
    env = base_env()
    bot_token = "xoxb-bench-" + secrets.token_hex(8)
    signing_secret = secrets.token_hex(16)
    hook_token = secrets.token_hex(16)

    redis, redis_port, redis_version = start_redis(children, env, deadline)
    pids = {"redis-server": redis.proc.pid}

    secrets_env = {**env, "SLACK_BOT_TOKEN": bot_token, "SLACK_SIGNING_SECRET": signing_secret}
    slack = children.start(
        "slack", [sys.executable, "-m", "bench._storm", "slack"], secrets_env, stdout_pipe=True
    )
    slack_url = f"http://127.0.0.1:{read_port(slack, deadline)}"
    pids["slack emulator"] = slack.proc.pid

    config = children.workdir / "opsloop.yml"
    config.write_text(routes_yaml())
    server_env = {
        **secrets_env,
        "OPSLOOP_SLACK_API_URL": f"{slack_url}/api/",
        "OPSLOOP_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "OPSLOOP_HOST": "127.0.0.1",
        "OPSLOOP_CONFIG_FILE": str(config),
        "OPSLOOP_DATA_DIR": str(children.workdir / "data"),
        "OPSLOOP_LOG_LEVEL": "WARNING",
        "OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN": hook_token,
    }
    port = free_port()
    serve = children.start(
        "opsloop serve", opsloop_argv("serve"), {**server_env, "OPSLOOP_PORT": str(port)}
    )
    pids["opsloop serve"] = serve.proc.pid
    for n in range(1, extra_workers + 1):
        worker = children.start(f"opsloop worker {n}", opsloop_argv("worker"), server_env)
        pids[f"opsloop worker {n}"] = worker.proc.pid
    wait_http_ok(serve, f"http://127.0.0.1:{port}/readyz", deadline)
    wait_workers(children, redis_port, 1 + extra_workers, deadline)
    return Stack(
        children=children,
        redis_port=redis_port,
        redis_version=redis_version,
        slack_url=slack_url,
        hook_url=f"http://127.0.0.1:{port}/hooks/alertmanager",
        token=hook_token,
        pids=pids,
        workers=1 + extra_workers,
    )


@contextlib.contextmanager
def running_stack(extra_workers: int) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="opsloop-storm-") as tmp:
        children = Children(Path(tmp))
        try:
            yield start_stack(children, extra_workers)
        except BaseException:
            for child in children.started:
                if child.name.startswith("opsloop") and child.proc.poll() is not None:
                    print(f"{child.name} ended early:\n{child.tail()}", file=sys.stderr)
            raise
        finally:
            children.stop_all()


def cpu_seconds(stack: Stack) -> dict[str, float]:
    return {name: process_cpu_seconds(pid) for name, pid in stack.pids.items()}


# -- sending --------------------------------------------------------------------------------


@dataclass
class Sent:
    latencies_ms: list[float] = field(default_factory=list)  # every attempt, answered or not
    statuses: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    given_up: int = 0
    first_at: float = math.nan
    last_at: float = math.nan


async def post_notification(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes, sent: Sent
) -> bool:
    """POST one notification until it is accepted; 5xx and connection errors are retried with
    backoff, a 4xx is final (Alertmanager drops those too). True when accepted."""
    for attempt in range(MAX_ATTEMPTS):
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                status, kind = resp.status, str(resp.status)
        except (aiohttp.ClientError, TimeoutError) as e:
            status, kind = 0, type(e).__name__
        sent.latencies_ms.append((time.perf_counter() - started) * 1000)
        sent.statuses[kind] += 1
        if 200 <= status < 300:
            return True
        if 400 <= status < 500:
            return False
        sent.retries += 1
        await asyncio.sleep(min(0.25 * 2**attempt, 5.0))
    return False


async def send_storm(stack: Stack, groups: list[StormGroup], concurrency: int) -> Sent:
    """Every group's notifications in order, `concurrency` in flight, 5xx retried."""
    sent = Sent()
    queue: asyncio.Queue[tuple[StormGroup, int]] = asyncio.Queue()
    for g in groups:
        queue.put_nowait((g, 0))
    headers = {"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"}

    async def sender(session: aiohttp.ClientSession) -> None:
        while True:
            group, phase = await queue.get()
            try:
                body = group.bodies[phase]
                if not await post_notification(session, stack.hook_url, headers, body, sent):
                    sent.given_up += 1
                elif phase + 1 < len(group.bodies):
                    queue.put_nowait((group, phase + 1))  # the group's next notification
            finally:
                queue.task_done()

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sent.first_at = time.monotonic()
        tasks = [asyncio.create_task(sender(session)) for _ in range(concurrency)]
        try:
            await queue.join()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        sent.last_at = time.monotonic()
    return sent


# -- watching Redis and Slack ---------------------------------------------------------------


def redis_client(stack: Stack) -> Any:
    import redis.asyncio

    return redis.asyncio.Redis(host="127.0.0.1", port=stack.redis_port, socket_timeout=10)


async def load_groups(r: Any, group_keys: list[str]) -> list[dict[str, Any] | None]:
    """The stored record of each groupKey's open group (None where there is none)."""
    refs = await r.hmget(ALERT_BY_KEY, group_keys)
    keyed = [alert_group_key(ref.decode()) for ref in refs if ref is not None]
    raws = iter(await r.mget(keyed) if keyed else [])
    out: list[dict[str, Any] | None] = []
    for ref in refs:
        raw = next(raws) if ref is not None else None
        out.append(json.loads(raw) if raw else None)
    return out


def complete(record: dict[str, Any] | None, group: StormGroup) -> bool:
    if record is None:
        return False
    alerts = record.get("alerts", {})
    firing = sum(1 for a in alerts.values() if a.get("status") == "firing")
    return firing == group.alerts


@dataclass
class Timeline:
    groups_stored_s: float = math.nan
    alerts_stored_s: float = math.nan
    slack_caught_up_s: float = math.nan
    stored_when_sent: int = 0  # groups in Redis when the last webhook was answered
    # Every alert stored, of the groups counted in a storm summary / with a thread of their own.
    storm_alerts_stored_s: float = math.nan
    own_alerts_stored_s: float = math.nan
    # Until every alert was stored: the most jobs running at once, and for how long (nearly)
    # every job slot of every worker was taken while jobs that were due waited in the queue.
    max_running: int = 0
    slots: int = 0
    starved_s: float = 0.0
    max_waiting: int = 0


async def watch_slots(r: Any, slots: int, tl: Timeline, done: asyncio.Event) -> None:
    """Sample the job queue: jobs running (arq's in-progress keys) and jobs due but waiting."""
    tl.slots = slots
    while not done.is_set():
        running = 0
        async for _key in r.scan_iter(match="arq:in-progress:*", count=1000):
            running += 1
        waiting = int(await r.zcount(QUEUE, "-inf", int(time.time() * 1000))) - running
        tl.max_running = max(tl.max_running, running)
        tl.max_waiting = max(tl.max_waiting, waiting)
        if running >= BUSY_SHARE * slots and waiting > 0:
            tl.starved_s += SLOTS_POLL
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), SLOTS_POLL)


async def watch_storing(
    r: Any, stack: Stack, groups: list[StormGroup], t0: float, deadline: float, tl: Timeline
) -> None:
    """Time until every group, then every alert, is in Redis."""
    done = asyncio.Event()
    sampler = asyncio.create_task(watch_slots(r, SLOTS_PER_WORKER * stack.workers, tl, done))
    try:
        await _watch_storing(r, groups, t0, deadline, tl)
    finally:
        done.set()
        await sampler


async def _watch_storing(
    r: Any, groups: list[StormGroup], t0: float, deadline: float, tl: Timeline
) -> None:
    keys = [g.group_key for g in groups]
    while time.monotonic() < deadline:
        if int(await r.zcard(ALERTS_OPEN)) >= len(groups):
            tl.groups_stored_s = time.monotonic() - t0
            break
        await asyncio.sleep(STORED_POLL)
    while time.monotonic() < deadline:
        records = await load_groups(r, keys)
        behind = [rec for rec, g in zip(records, groups, strict=True) if not complete(rec, g)]
        now = time.monotonic() - t0
        # A group is known to be in a storm or not once stored; unstored ones count for both.
        if math.isnan(tl.storm_alerts_stored_s) and all(
            rec and not rec.get("storm_id") for rec in behind
        ):
            tl.storm_alerts_stored_s = now
        if math.isnan(tl.own_alerts_stored_s) and all(
            rec and rec.get("storm_id") for rec in behind
        ):
            tl.own_alerts_stored_s = now
        if not behind:
            tl.alerts_stored_s = now
            return
        await asyncio.sleep(COMPLETE_POLL)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


@dataclass
class SlackView:
    """Whether Slack shows what Redis holds, and what is still missing."""

    caught_up: bool
    missing: Counter[str]
    own_threads: Counter[str]  # channel -> groups with a message of their own
    in_storm: Counter[str]  # channel -> groups counted in the channel's storm summary
    summaries: dict[str, str]  # channel -> the storm summary's text in Slack


async def slack_view(r: Any, stack: Stack, groups: list[StormGroup]) -> SlackView:
    records = await load_groups(r, [g.group_key for g in groups])
    messages = await asyncio.to_thread(get_json, f"{stack.slack_url}/_bench/messages")
    by_ts = {ch: {m["ts"]: m for m in msgs} for ch, msgs in messages.items()}
    missing: Counter[str] = Counter()
    own: Counter[str] = Counter()
    in_storm: Counter[str] = Counter()
    summaries: dict[str, str] = {}
    async for _key in r.scan_iter(match=f"{PREFIX}slack:pending:*", count=1000):
        missing["message updates pending"] += 1
    for rec in records:
        if rec is None:
            missing["group not stored"] += 1
            continue
        channel = str(rec.get("channel"))
        if rec.get("outbox"):
            missing["thread replies not sent"] += 1
        if rec.get("storm_id"):
            in_storm[channel] += 1
            continue
        ts = rec.get("message_ts")
        msg = by_ts.get(channel, {}).get(ts) if ts else None
        if msg is None:
            missing["group messages not posted"] += 1
            continue
        own[channel] += 1
        firing = sum(1 for a in rec["alerts"].values() if a["status"] == "firing")
        if f"[FIRING:{firing}]" not in msg["text"]:
            missing["group messages not up to date"] += 1
    for channel in in_storm:
        raw = await r.hgetall(storm_key(channel))
        storm = {k.decode(): v.decode() for k, v in raw.items()}
        msg = by_ts.get(channel, {}).get(storm.get("ts", ""))
        if msg is None:
            missing["storm summaries not posted"] += 1
            continue
        summaries[channel] = msg["text"]
        if not msg["text"].startswith(f"Alert storm: {storm.get('members')} new"):
            missing["storm summaries not up to date"] += 1
    return SlackView(not missing, missing, own, in_storm, summaries)


async def watch_slack(
    r: Any, stack: Stack, groups: list[StormGroup], t0: float, deadline: float, tl: Timeline
) -> SlackView:
    view = await slack_view(r, stack, groups)
    while not view.caught_up and time.monotonic() < deadline:
        await asyncio.sleep(CATCH_UP_POLL)
        view = await slack_view(r, stack, groups)
    if view.caught_up:
        tl.slack_caught_up_s = time.monotonic() - t0
    return view


# -- Slack's calls --------------------------------------------------------------------------


@dataclass
class SlackCalls:
    by_method: Counter[str]  # "chat.postMessage ok", "chat.update 429", ...
    posted: int  # messages opsloop put in Slack (accepted chat.postMessage)
    posted_top: int  # of which new channel messages (not thread replies)
    updates: int
    rate_limited: int
    honoured: int
    retried_early: int  # a 429'd call made again before its Retry-After
    never_retried: int  # a 429'd call never accepted later: a message lost
    inside_pause: int  # other calls to the channel inside a Retry-After pause
    other_errors: Counter[str]
    by_channel: dict[str, Counter[str]]


def fetch_calls(slack_url: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for _ in range(1000):  # pages of up to 50,000; bounded
        page = get_json(f"{slack_url}/_bench/calls?since={len(calls)}")
        calls += page["calls"]
        if len(calls) >= page["total"] or not page["calls"]:
            break
    return calls


def analyse_calls(calls: list[dict[str, Any]]) -> SlackCalls:
    by_method: Counter[str] = Counter()
    other: Counter[str] = Counter()
    by_channel: dict[str, Counter[str]] = defaultdict(Counter)
    later: dict[str, list[dict[str, Any]]] = defaultdict(list)  # args key -> calls in order
    for c in calls:
        outcome = "ok" if c["ok"] else str(c["status"]) if c["status"] == 429 else "error"
        by_method[f"{c['method']} {outcome}"] += 1
        later[c["key"]].append(c)
        if c["channel"]:
            kind = c["method"] + (" reply" if c["thread_ts"] else "")
            by_channel[c["channel"]][f"{kind} {outcome}"] += 1
        if not c["ok"] and c["status"] != 429:
            other[f"{c['method']}: {c['error']}"] += 1
    honoured = early = never = inside = 0
    limited = [c for c in calls if c["status"] == 429]
    same_target: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for x in calls:
        same_target[(x["method"], x["channel"] or "")].append(x)
    for c in limited:
        pause_end = c["at"] + (c["retry_after"] or 1.0) - RETRY_AFTER_SLACK
        retries = [x for x in later[c["key"]] if x["i"] > c["i"]]
        if not any(x["ok"] for x in retries):
            never += 1
        elif retries[0]["at"] < pause_end:
            early += 1
        else:
            honoured += 1
        # Other calls of the same method to the same channel made while it was paused (calls
        # already on their way when the 429 came are counted too: an upper bound).
        for x in same_target[(c["method"], c["channel"] or "")]:
            if x["i"] > c["i"] and x["at"] < pause_end and x["key"] != c["key"]:
                inside += 1
    posts = [c for c in calls if c["method"] == "chat.postMessage" and c["ok"]]
    return SlackCalls(
        by_method=by_method,
        posted=len(posts),
        posted_top=sum(1 for c in posts if not c["thread_ts"]),
        updates=sum(1 for c in calls if c["method"] == "chat.update" and c["ok"]),
        rate_limited=len(limited),
        honoured=honoured,
        retried_early=early,
        never_retried=never,
        inside_pause=inside,
        other_errors=other,
        by_channel=dict(by_channel),
    )


# -- verification ---------------------------------------------------------------------------


@dataclass
class Lost:
    groups_lost: int  # a groupKey with no open group record
    incomplete: int  # an open group missing some of its alerts
    not_listed: int  # a group record not in the open index `/alerts` reads
    duplicate_refs: int  # two groupKeys sharing one AL-<n>


async def verify(r: Any, groups: list[StormGroup]) -> Lost:
    keys = [g.group_key for g in groups]
    refs = await r.hmget(ALERT_BY_KEY, keys)
    records = await load_groups(r, keys)
    listed = {m.decode() for m in await r.zrange(ALERTS_OPEN, 0, -1)}
    named = [ref.decode() for ref in refs if ref is not None]
    return Lost(
        groups_lost=sum(1 for rec in records if rec is None),
        incomplete=sum(
            1 for rec, g in zip(records, groups, strict=True) if rec and not complete(rec, g)
        ),
        not_listed=sum(1 for ref in named if ref not in listed),
        duplicate_refs=len(named) - len(set(named)),
    )


# -- the run --------------------------------------------------------------------------------


@dataclass
class Result:
    sent: Sent
    timeline: Timeline
    view: SlackView
    calls: SlackCalls
    lost: Lost
    notifications: int
    cpu_s: dict[str, float]


async def storm(stack: Stack, groups: list[StormGroup], args: argparse.Namespace) -> Result:
    r = redis_client(stack)
    tl = Timeline()
    try:
        t0 = time.monotonic()
        deadline = t0 + args.timeout
        cpu_before = cpu_seconds(stack)
        watcher = asyncio.create_task(watch_storing(r, stack, groups, t0, deadline, tl))
        sent = await send_storm(stack, groups, args.concurrency)
        tl.stored_when_sent = int(await r.zcard(ALERTS_OPEN))
        print(
            f"  {sum(sent.statuses.values())} webhook requests answered in "
            f"{sent.last_at - sent.first_at:.1f} s; waiting for Redis...",
            flush=True,
        )
        await watcher
        print("  waiting for Slack to catch up...", flush=True)
        view = await watch_slack(r, stack, groups, t0, deadline, tl)
        cpu_after = cpu_seconds(stack)
        lost = await verify(r, groups)
    finally:
        await r.aclose()
    calls = analyse_calls(await asyncio.to_thread(fetch_calls, stack.slack_url))
    return Result(
        sent=sent,
        timeline=tl,
        view=view,
        calls=calls,
        lost=lost,
        notifications=sum(len(g.bodies) for g in groups),
        cpu_s={k: cpu_after[k] - v for k, v in cpu_before.items()},
    )


# -- report ---------------------------------------------------------------------------------


def seconds(value: float) -> str:
    return "did not happen in time" if math.isnan(value) else f"{value:.1f} s after the first POST"


def report(res: Result, groups: list[StormGroup], args: argparse.Namespace) -> list[str]:
    lat = sorted(res.sent.latencies_ms)
    tl = res.timeline
    accepted = sum(n for k, n in res.sent.statuses.items() if k.startswith("2"))
    answers = ", ".join(f"{n} x {k}" for k, n in sorted(res.sent.statuses.items()))
    wall = res.sent.last_at - res.sent.first_at
    c = res.calls
    lost_msgs = c.never_retried + sum(
        n for k, n in res.view.missing.items() if k != "message updates pending"
    )
    one_per = res.notifications
    ratio = c.posted / one_per if one_per else math.nan
    rows = [
        (
            "alerts / groups / notifications",
            f"{sum(g.alerts for g in groups)} / {len(groups)} / {res.notifications}",
        ),
        (
            "webhook answers",
            answers + (f" ({res.sent.retries} retried)" if res.sent.retries else ""),
        ),
        (
            "webhook accept latency p50 / p99 / max",
            f"{percentile(lat, 50):.1f} / {percentile(lat, 99):.1f} / {lat[-1]:.1f} ms",
        ),
        ("webhook throughput", f"{accepted / wall:.0f} notifications/s ({wall:.1f} s)"),
        (
            "groups in Redis when the last webhook was answered",
            f"{res.timeline.stored_when_sent} of {len(groups)}",
        ),
        (f"every group stored ({len(groups)})", seconds(res.timeline.groups_stored_s)),
        (
            f"every alert stored ({sum(g.alerts for g in groups)})",
            seconds(res.timeline.alerts_stored_s),
        ),
        (
            "  of the groups in a storm summary / with their own thread",
            f"{tl.storm_alerts_stored_s:.1f} s / {tl.own_alerts_stored_s:.1f} s",
        ),
        (
            "jobs running at once (max) / worker job slots",
            f"{tl.max_running} / {tl.slots}",
        ),
        (
            "  time >= 90% of the slots were taken while due jobs waited",
            f"{tl.starved_s:.1f} s (at most {tl.max_waiting} jobs waiting)",
        ),
        ("Slack caught up (threads, storm summaries)", seconds(res.timeline.slack_caught_up_s)),
        ("Slack calls", ", ".join(f"{k}: {n}" for k, n in sorted(c.by_method.items()))),
        (
            "429s received / honoured",
            f"{c.rate_limited} / {c.honoured}"
            + (f" ({c.retried_early} retried before Retry-After)" if c.retried_early else ""),
        ),
        ("other calls to a channel during its 429 pause", str(c.inside_pause)),
        ("Slack messages lost", str(lost_msgs)),
        (
            "groups lost (not in Redis or not listed by /alerts)",
            str(res.lost.groups_lost + res.lost.not_listed),
        ),
        (
            "groups missing alerts / sharing an AL-<n>",
            f"{res.lost.incomplete} / {res.lost.duplicate_refs}",
        ),
        (
            "Slack messages opsloop posted (threads + replies)",
            f"{c.posted} ({c.posted_top} + {c.posted - c.posted_top}), plus {c.updates} edits",
        ),
        ("one message per notification would need", str(one_per)),
        (
            "ratio opsloop / one-per-notification",
            f"{ratio:.4f} ({one_per / c.posted:.0f}x fewer messages)" if c.posted else "-",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{'measure':<{width}}  value", f"{'-' * width}  {'-' * 40}"]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    head = (
        f"{'channel':<10} {'groups':>6} {'own thread':>10} {'in storm':>8} {'posts':>6} "
        f"{'replies':>7} {'edits':>6} {'429s':>5}"
    )
    lines += [head, "-" * len(head)]
    per_channel = Counter(g.channel for g in groups)
    for channel, n in sorted(per_channel.items()):
        cc = c.by_channel.get(channel, Counter())
        lines.append(
            f"{CHANNEL_NAMES.get(channel, channel):<10} {n:>6} {res.view.own_threads[channel]:>10} "
            f"{res.view.in_storm[channel]:>8} {cc['chat.postMessage ok']:>6} "
            f"{cc['chat.postMessage reply ok']:>7} {cc['chat.update ok']:>6} "
            f"{cc['chat.postMessage 429'] + cc['chat.postMessage reply 429']:>5}"
        )
    for channel, text in sorted(res.view.summaries.items()):
        lines.append(f"{CHANNEL_NAMES.get(channel, channel)} storm summary: {text}")
    if res.view.missing:
        lines.append(
            "Slack is behind: " + ", ".join(f"{k}: {n}" for k, n in res.view.missing.items())
        )
    if c.other_errors:
        lines.append("Slack errors: " + ", ".join(f"{k}: {n}" for k, n in c.other_errors.items()))
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in res.cpu_s.items())
    lines.append(f"CPU seconds used during the run: {cpu}")
    return lines


def verdicts(res: Result, groups: list[StormGroup]) -> list[tuple[str, bool, str]]:
    lost = res.lost.groups_lost + res.lost.not_listed + res.lost.incomplete
    c = res.calls
    return [
        ("0 groups lost", lost == 0, str(lost)),
        ("every notification accepted", res.sent.given_up == 0, f"{res.sent.given_up} given up"),
        ("every 429 honoured", c.honoured == c.rate_limited, f"{c.honoured} of {c.rate_limited}"),
        (
            "Slack caught up",
            res.view.caught_up,
            ", ".join(f"{k}: {n}" for k, n in res.view.missing.items()) or "yes",
        ),
    ]


def plain(obj: Any) -> Any:
    """Dataclasses, Counters and NaNs as JSON values (the per-request latencies left out)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: plain(getattr(obj, f.name)) for f in fields(obj) if f.name != "latencies_ms"
        }
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(x) for x in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.alert_storm",
        description="An Alertmanager storm against opsloop serve and the Slack emulator.",
    )
    parser.add_argument("--groups", type=int, default=1000, help="alert groups (default 1000)")
    parser.add_argument("--alerts", type=int, default=10, help="alerts per group (default 10)")
    parser.add_argument(
        "--first",
        type=int,
        default=7,
        help="alerts in a group's first notification; the second carries all (default 7; "
        "0 or --alerts: one notification per group)",
    )
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight (50)")
    parser.add_argument(
        "--workers", type=int, default=1, help="opsloop worker processes beside serve (1)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds the whole run may take (600)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if not 1 <= args.groups <= 100_000 or not 1 <= args.alerts <= 1000:
        parser.error("--groups from 1 to 100000, --alerts from 1 to 1000")
    if not 0 <= args.first <= args.alerts:
        parser.error("--first from 0 to --alerts")
    if not 1 <= args.concurrency <= 1000 or not 0 <= args.workers <= 16:
        parser.error("--concurrency from 1 to 1000, --workers from 0 to 16")
    if not 10 <= args.timeout <= 3600:
        parser.error("--timeout from 10 to 3600 seconds")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    groups = storm_notifications(args.groups, args.alerts, args.first, ROUTES, time.time())
    with running_stack(args.workers) as stack:
        info = machine_info(stack.redis_version)
        print(
            f"opsloop alert storm: {info['cpus']} cores ({info['cpu_model']}), Python "
            f"{info['python']}, Redis {info['redis']}, aiohttp {info['aiohttp']}, arq "
            f"{info['arq']}, opsloop {info['opsloop_commit']}; load average before start "
            f"{load_before:.2f}"
        )
        shape = (
            f"first {args.first}, then all {args.alerts}"
            if 0 < args.first < args.alerts
            else f"all {args.alerts} at once"
        )
        print(
            f"{args.groups} groups x {args.alerts} alerts, each group's notifications in order "
            f"({shape}), {args.concurrency} in flight; opsloop serve (HTTP + in-process worker) "
            f"+ {args.workers} opsloop worker, one Redis; routes: severity=critical -> #incident, "
            "team=web -> #web, else #alerts; storm threshold 10 new groups a minute a channel; "
            "Slack emulator: chat.postMessage 1/s per channel, bursts of 3, 429 + Retry-After\n",
            flush=True,
        )
        result = asyncio.run(storm(stack, groups, args))
        for child in stack.children.started:
            if child.proc.poll() is not None:
                print(f"{child.name} ended during the run:\n{child.tail()}", file=sys.stderr)
    print()
    for line in report(result, groups, args):
        print(line)
    print("\nTargets:")
    checks = verdicts(result, groups)
    for name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {name}: {detail}")
    return {
        "machine": info,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "result": plain(result),
        "targets": [{"name": n, "pass": ok, "measured": d} for n, ok, d in checks],
    }


def main(argv: list[str] | None = None) -> int:
    return bench_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
