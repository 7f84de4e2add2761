"""Exactly once under an operator's bad day: two replicas, two workers, crashes and an outage.

    python -m bench.ha_soak [--tasks 60] [--builds 30] [--help-requests 100] [--alert-groups 20]
                            [--notifications 3] [--seconds 40] [--concurrency 16]
                            [--retry-share 0.2] [--seed 1] [--no-faults] [--json PATH]

The bench starts, on free loopback ports, a real redis-server (append-only, fsync on every
write, so a stop keeps its data), two `opsloop serve --no-worker` replicas and two
`opsloop worker`s on it, each a process of its own with its environment and a YAML file (one
project, alert routes, webhook tokens), and a short job time-out (10 s: arq runs a killed
worker's job again 20 s later). Slack and GitLab are the project's emulators, served by the
bench's own process; GitLab answers every POST 0.2 s late, refuses a few creates with 500 and
loses the answer to a few pipeline creates (made, then 502) midway, and runs pipelines to the
end in a few seconds.

Load (bench/_soak.py): signed `/task <unique title>`, `/build web main SOAK=<unique>`,
`/ops help` and Alertmanager notifications (each group firing, growing, then resolved), spread
over `--seconds`, sent to one replica or the other; a share of Slack deliveries is sent again,
same body, `X-Slack-Retry-Num: 1`, to the other replica, as Slack does after a slow ack. The
senders retry as Slack, the person and Alertmanager do.

Faults, unless `--no-faults`: at 25% of the load the second replica is killed (SIGKILL); its
requests fail until, 2 s later, a load balancer sends them to the first, until a supervisor has
it answering /healthz again 5 s after the kill; at 40%, while GitLab holds its answers to issue
and pipeline creates (made, not yet answered), the first worker is killed (SIGKILL) and started
again 3 s later; at 60% redis-server is stopped (SIGTERM) for 5 s and started again on the same
port and directory.

Then the bench waits until nothing changes for 10 s (at most 120 s, and at least until every
killed job's in-progress mark has lapsed and its job could run again), and counts per kind:
sent, acknowledged, took effect, duplicated, lost, 5xx (bench/_soak_count.py says how each is
seen). Targets (issue 14): 0 duplicated, 0 lost, 0 5xx. Misses are printed; the exit status is
0 unless the bench itself broke. The results also go to bench/results/ as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio
import redis.exceptions

from bench._common import REPO, BenchError, bench_main, machine_info
from bench._soak import KINDS, Item, Replicas, Sender, gist, plan
from bench._soak_count import count, rows_json, seen, table, verdicts
from bench._soak_sides import ISSUE_CREATE, PIPELINE_CREATE, GitLabSide, SlackSide
from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.sandbox.emulators.slack import SlackDriver, SlackEmulator
from bot.serving import served
from bot.store.keys import QUEUE
from tests.processes import (
    DurableRedis,
    OpsloopProcess,
    Processes,
    opsloop_env,
    running_processes,
    wait_workers,
)

JOB_TIMEOUT = 10.0  # short, so that a killed worker's job runs again within the run
IN_PROGRESS_MARGIN = 10  # arq's mark on a running job lives job timeout + 10 s (bot/jobs.py)
GITLAB_POST_SECONDS = 0.2
PIPELINE_STEP_SECONDS = 2.0
REPLICA_DOWN_SECONDS = 5.0
LB_NOTICES_SECONDS = 2.0  # until the load balancer's health check takes a dead replica out
WORKER_DOWN_SECONDS = 3.0
REDIS_DOWN_SECONDS = 5.0
HELD_CREATE_WAIT = 8.0  # for a create of the worker to kill to reach GitLab
RESULTS = REPO / "bench" / "results"

CONFIG = """\
roles: {deployers: [U0ALICE]}
projects:
  web: {gitlab: acme/web, channel: C0WEB, default_ref: main}
alerts:
  routes:
    - match: {severity: critical}
      channel: C0INCIDENT
    - channel: C0ALERTS
"""


# -- the stack ------------------------------------------------------------------------------


@dataclass
class Stack:
    procs: Processes
    redis: DurableRedis
    replicas: list[OpsloopProcess]
    workers: list[OpsloopProcess]
    gitlab: GitLabSide
    slack: SlackSide
    alert_token: str
    redis_version: str


@contextlib.asynccontextmanager
async def running_stack(workdir: Path, job_timeout: float) -> AsyncIterator[Stack]:
    token, secret = "xoxb-soak-" + secrets.token_hex(8), secrets.token_hex(16)
    alert_token, gitlab_secret = secrets.token_hex(16), secrets.token_hex(16)
    slack = SlackSide(token, secret)
    gitlab = GitLabSide("glpat-" + secrets.token_hex(10))
    # The emulators outlive the processes, so nothing of opsloop talks to a vanished peer.
    async with (
        served(slack.app()) as slack_url,
        served(gitlab.app()) as gitlab_url,
        running_processes(workdir) as procs,
    ):
        slack.emu.base_url, gitlab.emu.url = slack_url, gitlab_url
        try:
            redis = await procs.redis()
        except RuntimeError as e:
            raise BenchError(str(e)) from e
        config = workdir / "opsloop.yml"
        config.write_text(CONFIG)
        env = opsloop_env(
            SLACK_BOT_TOKEN=token,
            SLACK_SIGNING_SECRET=secret,
            OPSLOOP_SLACK_API_URL=slack.emu.api_url,
            OPSLOOP_REDIS_URL=redis.url,
            OPSLOOP_CONFIG_FILE=str(config),
            OPSLOOP_DATA_DIR=str(workdir / "data"),
            OPSLOOP_GITLAB_URL=gitlab_url,
            OPSLOOP_GITLAB_TOKEN=gitlab.emu.token,
            OPSLOOP_GITLAB_WEBHOOK_SECRET=gitlab_secret,
            OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=alert_token,
            OPSLOOP_JOB_TIMEOUT=str(job_timeout),
            OPSLOOP_BUILD_POLL_SECONDS="2",
            # Twenty groups in two channels: each gets its own message, no storm summary.
            OPSLOOP_STORM_THRESHOLD="100",
            OPSLOOP_LOG_LEVEL="WARNING",
        )
        try:
            replicas = [await procs.serve(env, f"serve-{n}") for n in (1, 2)]
            workers = [procs.worker(env, f"worker-{n}") for n in (1, 2)]
            await wait_workers(redis.url, len(workers))
        except RuntimeError as e:
            raise BenchError(f"{e}\n{procs.logs()}") from e
        yield Stack(procs, redis, replicas, workers, gitlab, slack, alert_token, _version(redis))


def _version(redis: DurableRedis) -> str:
    for line in redis.tail(200).splitlines():
        if "version=" in line:
            return line.split("version=", 1)[1].split(",", 1)[0]
    return "unknown"


def shape_gitlab(gitlab: GitLabEmulator) -> None:
    """A GitLab that is a little slow and runs pipelines to the end by itself."""
    gitlab.hold(None, GITLAB_POST_SECONDS, method="POST")
    gitlab.pipeline_step_seconds = PIPELINE_STEP_SECONDS


# -- faults ---------------------------------------------------------------------------------


@dataclass
class Faults:
    """The bad day, at fixed shares of the load's length; each event logged with its time."""

    stack: Stack
    replicas: Replicas
    seconds: float
    started: float = field(default_factory=time.monotonic)
    log: list[tuple[float, str]] = field(default_factory=list)
    last: float = 0.0  # when the last fault that can interrupt a job was over

    def note(self, what: str) -> None:
        at = time.monotonic() - self.started
        self.log.append((at, what))
        print(f"  {at:5.1f} s  {what}", flush=True)

    async def until(self, share: float) -> None:
        await asyncio.sleep(max(self.started + share * self.seconds - time.monotonic(), 0))

    async def run(self) -> None:
        gitlab = self.stack.gitlab.emu
        await self.until(0.15)
        gitlab.fail(500, times=2, path=ISSUE_CREATE, method="POST")
        self.note("GitLab: the next 2 issue creates answer 500")
        await self.until(0.25)
        await self.kill_replica(1)
        await self.until(0.40)
        await self.kill_worker(0)
        await self.until(0.60)
        await self.stop_redis()
        await self.until(0.75)
        gitlab.fail(502, times=2, path=PIPELINE_CREATE, method="POST", after_handling=True)
        self.note("GitLab: the next 2 pipeline creates are made, then answered 502")

    async def kill_replica(self, n: int) -> None:
        replica = self.stack.replicas[n]
        replica.kill()
        self.note(f"SIGKILL {replica.name} (pid {replica.pid})")
        await asyncio.sleep(LB_NOTICES_SECONDS)
        self.replicas.down.add(n)
        self.note(f"the load balancer sends {replica.name}'s requests to the other")
        await asyncio.sleep(REPLICA_DOWN_SECONDS - LB_NOTICES_SECONDS)
        replica.launch()
        await replica.wait_healthy()
        self.replicas.down.discard(n)
        self.note(f"{replica.name} started again and healthy; back behind the load balancer")

    async def kill_worker(self, n: int) -> None:
        """Kill a worker while GitLab has made something for it and holds back the answer."""
        gitlab, worker = self.stack.gitlab, self.stack.workers[n]
        holds = [
            gitlab.emu.hold(path, 60, method="POST", after_handling=True)
            for path in (ISSUE_CREATE, PIPELINE_CREATE)
        ]
        for _ in range(int(HELD_CREATE_WAIT / 0.05)):  # polled: creates arrive by HTTP
            if gitlab.held_by(worker.pid):
                break
            await asyncio.sleep(0.05)
        mine, held = gitlab.held_by(worker.pid), gitlab.held()
        worker.kill()
        for hold in holds:
            hold.seconds = 0
        self.note(
            f"SIGKILL {worker.name} (pid {worker.pid}) while GitLab held {mine} of its "
            f"creates ({held} in all)"
        )
        self.last = time.monotonic()
        await asyncio.sleep(WORKER_DOWN_SECONDS)
        worker.launch()
        self.note(f"{worker.name} started again")

    async def stop_redis(self) -> None:
        redis = self.stack.redis
        await asyncio.to_thread(redis.stop)
        self.note(f"redis-server stopped (SIGTERM) for {REDIS_DOWN_SECONDS:g} s")
        await asyncio.sleep(REDIS_DOWN_SECONDS)
        await redis.start()
        self.last = time.monotonic()
        self.note("redis-server started again, same port and data")


# -- the run --------------------------------------------------------------------------------


def activity(stack: Stack) -> tuple[int, ...]:
    """What changes while the bot still works: Slack calls and GitLab requests made."""
    return (len(stack.slack.emu.calls), len(stack.gitlab.emu.requests))


# Jobs of the requests the soak sent (slash commands, clicks, notifications): while one is still
# queued, possibly deferred until a lock or Slack's pause allows, the bot is not done. Polls and
# timers that the bot schedules for itself are left out.
_REQUEST_JOBS = (b"slash:", b"action:", b"view:", b"am:")


async def queued_requests(stack: Stack) -> int:
    client = redis.asyncio.Redis.from_url(stack.redis.url)
    try:
        queued = await client.zrange(QUEUE, 0, -1)
    except (OSError, redis.exceptions.RedisError):
        return 1  # Redis not back yet: not drained
    finally:
        await client.aclose()
    return sum(1 for job in queued if job.startswith(_REQUEST_JOBS))


async def drain(stack: Stack, quiet: float, most: float, not_before: float) -> float:
    """Until nothing changes for `quiet` s and no request's job is queued (and not before
    `not_before`), at most `most` s."""
    started = time.monotonic()
    last, changed = activity(stack), started
    while time.monotonic() - started < most:
        await asyncio.sleep(0.25)
        now = time.monotonic()
        if activity(stack) != last:
            last, changed = activity(stack), now
        elif now - changed >= quiet and now >= not_before and not await queued_requests(stack):
            break
    return time.monotonic() - started


def tracebacks(stack: Stack) -> dict[str, int]:
    out = {}
    for proc in stack.replicas + stack.workers:
        try:
            out[proc.name] = proc.log.read_text(errors="replace").count("Traceback")
        except OSError:
            out[proc.name] = 0
    return out


async def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    run = secrets.token_hex(3)
    items = plan(
        run,
        tasks=args.tasks,
        builds=args.builds,
        helps=args.help_requests,
        groups=args.alert_groups,
        per_group=args.notifications,
        seconds=args.seconds,
        retry_share=args.retry_share,
        seed=args.seed,
    )
    async with running_stack(workdir, args.job_timeout) as stack:
        shape_gitlab(stack.gitlab.emu)
        replicas = Replicas([r.base_url for r in stack.replicas])
        drivers = [
            SlackDriver(stack.slack.emu, events_url=f"{url}/slack/events", timeout=3.0)
            for url in replicas.base_urls
        ]
        print(
            f"HA soak, run {run}: {len(items)} requests over {args.seconds:g} s to 2 replicas, "
            f"2 workers, Redis {stack.redis_version}" + ("" if args.no_faults else "; faults:"),
            flush=True,
        )
        faults = Faults(stack, replicas, args.seconds)
        try:
            async with aiohttp.ClientSession() as http:
                sender = Sender(replicas, drivers, http, stack.alert_token, args.concurrency)
                load, wall0 = time.monotonic(), time.time()
                work = [sender.run(items)] + ([] if args.no_faults else [faults.run()])
                await asyncio.gather(*work)
                load_s = time.monotonic() - load
            # A job interrupted by the last fault runs again once its mark lapses.
            lapse = args.job_timeout + IN_PROGRESS_MARGIN + 5
            not_before = faults.last + lapse if faults.last else 0.0
            drained = await drain(stack, args.quiet, args.drain_max, not_before)
        finally:
            for driver in drivers:
                await driver.close()
        rows = count(items, seen(stack.gitlab.emu, stack.slack.emu, stack.slack.answers))
        alert_statuses = Counter(s for i in items if i.kind == "alert" for s in i.statuses)
        report = {
            "machine": machine_info(stack.redis_version),
            "run": run,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "load_seconds": load_s,
            "drain_seconds": drained,
            "faults": [{"at": round(at, 2), "what": what} for at, what in faults.log],
            "rows": rows_json(rows),
            "targets": [],
            "alert_statuses": dict(alert_statuses),
            "acks_that_said_something": _said(items),
            "error_answers_said": _error_answers(items, stack.slack),
            "slack_429": sum(1 for c in stack.slack.emu.calls if c.status == 429),
            "early_slack_calls": stack.slack.early_calls(),
            "tracebacks_in_logs": tracebacks(stack),
            "requests": [
                {"kind": i.kind, "key": i.key, "acked": i.acked, "deliveries": i.trace}
                for i in items
            ],
            "alert_messages": alert_messages(stack.slack.emu, items, wall0),
        }
    checks = verdicts(rows, alert_statuses)
    report["targets"] = [{"name": n, "pass": ok, "measured": d} for n, ok, d in checks]
    print_report(report, rows, checks)
    return report


def alert_messages(
    emu: SlackEmulator, items: list[Item], wall0: float
) -> dict[str, list[tuple[float, str, str]]]:
    """Each alert group's Slack calls (seconds into the load, method, text), to tell from the
    JSON why a group has two messages or shows an old state."""
    groups = {i.group for i in items if i.kind == "alert"}
    out: dict[str, list[tuple[float, str, str]]] = {g: [] for g in groups}
    for call in emu.calls:
        text = str(call.args.get("text", "")) if isinstance(call.args, dict) else ""
        for group in groups:
            if group in text:
                out[group].append((round(call.at - wall0, 2), call.method, text[:70]))
    return out


def _error_answers(items: list[Item], slack: SlackSide) -> dict[str, dict[str, int]]:
    """What task and build requests were told through their response_url (only failures are)."""
    out: dict[str, Counter[str]] = {"task": Counter(), "build": Counter()}
    for item in items:
        if item.kind in out:
            for url in item.response_urls:
                for text in slack.answer_texts.get(url.rsplit("/", 1)[-1], []):
                    out[item.kind][gist(text)] += 1
    return {k: dict(v.most_common(5)) for k, v in out.items() if v}


def _said(items: list[Item]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    for item in items:
        out[item.kind].update(item.said)
    return {k: dict(v.most_common(5)) for k, v in out.items() if v}


def print_report(report: dict[str, Any], rows: Any, checks: list[tuple[str, bool, str]]) -> None:
    print(
        f"\nLoad sent in {report['load_seconds']:.1f} s; drained in "
        f"{report['drain_seconds']:.1f} s\n"
    )
    for line in table(rows):
        print(line)
    print("\nTargets:")
    for name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")
    for r in report["rows"]:
        for what in ("duplicated", "lost"):
            if r[f"{what}_keys"]:
                print(f"  {r['kind']} {what}: {', '.join(r[f'{what}_keys'][:10])}")
    early = report["early_slack_calls"]
    print(
        f"\nSlack: {report['slack_429']} calls answered 429; early calls (before Retry-After): "
        + ("not recorded by this Slack emulator" if early is None else str(early))
    )
    for kind, said in report["acks_that_said_something"].items():
        for text, n in said.items():
            print(f"Ack with text ({kind}, {n}x): {text}")
    for kind, said in report["error_answers_said"].items():
        for text, n in said.items():
            print(f"Error answer ({kind}, {n}x): {text}")
    logs = report["tracebacks_in_logs"]
    print("Tracebacks in the logs: " + ", ".join(f"{k} {v}" for k, v in logs.items()))


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ha_soak",
        description="Exactly once under crashes and a Redis outage: two replicas, two workers.",
    )

    def count_arg(name: str, default: int, what: str) -> None:
        parser.add_argument(name, type=int, default=default, help=f"{what} (default {default})")

    count_arg("--tasks", 60, "/task requests, each with its own title")
    count_arg("--builds", 30, "/build requests, each with its own SOAK variable")
    count_arg("--help-requests", 100, "/ops help requests")
    count_arg("--alert-groups", 20, "Alertmanager groups")
    count_arg("--notifications", 3, "notifications per group: firing, growing, resolved")
    count_arg("--concurrency", 16, "requests in flight at most")
    count_arg("--seed", 1, "seed of the load's timing, replicas and retries")
    parser.add_argument(
        "--seconds", type=float, default=40.0, help="length of the load (default 40)"
    )
    parser.add_argument(
        "--job-timeout",
        type=float,
        default=JOB_TIMEOUT,
        help=f"OPSLOOP_JOB_TIMEOUT of the workers (default {JOB_TIMEOUT:g}, opsloop's own 60): "
        "a killed worker's job runs again this + 10 s later",
    )
    parser.add_argument(
        "--retry-share",
        type=float,
        default=0.2,
        help="share of Slack deliveries also sent to the other replica as a retry (default 0.2)",
    )
    parser.add_argument(
        "--no-faults", action="store_true", help="no kills, no Redis stop: the baseline"
    )
    parser.add_argument(
        "--quiet", type=float, default=10.0, help="seconds without change that end the drain"
    )
    parser.add_argument(
        "--drain-max", type=float, default=120.0, help="longest drain, seconds (default 120)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the processes' logs, Redis's files and the YAML here (default: a temporary "
        "directory, removed at the end)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="where to write the results (default bench/results/ha_soak-<UTC time>.json)",
    )
    args = parser.parse_args(argv)
    for name in ("tasks", "builds", "help_requests", "alert_groups", "notifications"):
        if not 0 <= getattr(args, name) <= 10_000:
            parser.error(f"--{name.replace('_', '-')}: from 0 to 10000")
    if not 1 <= args.concurrency <= 500 or not 10 <= args.seconds <= 600:
        parser.error("--concurrency from 1 to 500, --seconds from 10 to 600")
    if not 0 <= args.retry_share <= 1 or not 1 <= args.job_timeout <= 600:
        parser.error("--retry-share from 0 to 1, --job-timeout from 1 to 600")
    if args.workdir is not None and args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error("--workdir: give a new or empty directory (Redis would load old data)")
    if args.json is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        args.json = RESULTS / f"ha_soak-{stamp}.json"
    args.json.parent.mkdir(parents=True, exist_ok=True)
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.workdir is not None:
        return asyncio.run(soak(args, args.workdir))
    with tempfile.TemporaryDirectory(prefix="opsloop-soak-") as tmp:
        return asyncio.run(soak(args, Path(tmp)))


def main(argv: list[str] | None = None) -> int:
    return bench_main(parse_args, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
