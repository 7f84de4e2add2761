"""From an Approve click to a canary step on Docker: what opsloop adds to the engine's own work.

    python -m bench.deploy_flow [--rounds N] [--replicas R] [--step-timeout S]
                                [--serve-worker] [--kind all|docker|kubernetes|argo|deployment]
                                [--json PATH]

The Kubernetes cases (an Argo Rollout, a plain Deployment; next to kubectl) are in
bench/_kube_flow.py; `--kind all` (the default) runs every case that can run here.

Each round starts everything afresh and stops it at the end (also on Ctrl-C, SIGTERM or an
error): a dockerd of its own with local/app:1 (no healthcheck) and local/app:2 (HEALTHCHECK
every second) (bench/_deploy.py, after tests/dockerd_server.py), a real redis-server, the
project's Slack emulator, and opsloop as in production: `opsloop serve --no-worker` answers
Slack and `opsloop worker` runs the jobs, each its own process, configured with one docker
service `web` (image local/app, replicas R (4), steps [25, 50, 100], one approval,
`container: {network_mode: host}`).

Why processes and not tests/harness.running_bot in the bench's event loop: the bench's own
work (polling dockerd, the Slack emulator recording opsloop's calls, the driver's clicks) would
then share an interpreter, a GIL and a loop with the code it times, and the click's ack would
be answered by a process that is also running the step's docker calls. As processes, the ack
comes from a server that only stores the job (as opsloop serve does when workers scale out),
and the step runs in a worker's own process, which is also how the end-to-end test of a
worker killed mid-promotion runs it. `--serve-worker` runs the jobs in `opsloop serve`'s own
worker instead (its default, one process), to see what that costs the ack.

The Slack emulator runs in the bench's process (it is Slack's side): the driver signs the
block_actions POSTs to opsloop's /slack/events, and opsloop's chat.postMessage/chat.update land
in it, so the bench sees the message change the moment it happens. Docker is polled from
threads, and only after the click was answered, so the loop that times the ack has nothing
else to do meanwhile.

A round: the bare baseline first, on the clean engine, then opsloop's rollout.
- Bare docker SDK (bench/_deploy.py `BareService`): the container changes opsloop's deployer
  makes, made directly: R x local/app:1, the 25% canary (untimed), then the 50% and 100% steps,
  timed: create and start the new containers one by one, wait until each is running and healthy
  (checked every 50 ms), stop and remove the surplus in parallel. Then its containers go.
- opsloop: `/deploy web 1` (a first deploy: full size, no approval), `/deploy web 2` (the 25%
  canary), then Approve clicked twice by an approver: 25 -> 50 and 50 -> 100. Before each
  opsloop click the same button is clicked on the bare Bolt app (after one unmeasured warm-up
  click), so both acks are taken at the same moment of the rollout.

Measured per Approve click: milliseconds from the click to its ack (the driver's clock around
the signed POST and the read of its answer); seconds from the click until the engine runs
exactly the step's plan (e.g. {2: 2, 1: 2} at 50%, {2: 4} at 100%) with no other container of
the service, running or not (dockerd's own container list, polled every 25 ms; the time is when
the look that saw it returned); seconds until the rollout's Slack message says the step is done
(the emulator's record, watched as it changes). For the bare baseline the same observer times
its steps from their start. Printed: p50, p90, max and mean of every measure over all clicks of
all rounds, opsloop next to its baseline, and their ratios (with few clicks p90 is the max:
nearest rank); then each step on its own, with where opsloop's time goes: when the "Approved
by" thread reply was posted (the emulator's record of the call) and when dockerd first changed.
Each round also counts opsloop's chat.postMessage calls and the 429s the emulator answered
(it limits each channel as Slack does: 1 a second, bursts of 3).

Checks, printed and not raised (the exit status is 0 unless the bench itself broke): every click
acknowledged with a 2xx within Slack's 3 s; every step reached on the engine and shown in the
message within --step-timeout; never fewer than R containers running while a step is made.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import math
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._common import (
    BenchError,
    Children,
    base_env,
    bench_main,
    free_port,
    machine_info,
    opsloop_argv,
    read_port,
    redis_executable,
    start_redis,
    wait_http_ok,
    wait_workers,
)
from bench._deploy import (
    BareService,
    EngineError,
    bare_step,
    docker_client,
    engine_missing,
    fresh_engine,
    watch_plan,
)
from bench._load import percentile
from bot.deploys.ports import canary_count
from bot.sandbox.emulators.slack import Message, SlackDriver, SlackEmulator

SERVICE = "web"
BARE_SERVICE = "bare-web"
CHANNEL = "C0DEPLOYS"
DEPLOYER = "U0ALICE"
APPROVER = "U0BOB"
STEPS = (25, 50, 100)
OLD, NEW = "1", "2"
ACK_DEADLINE_MS = 3000.0  # Slack shows the person an error after 3 s
START_TIMEOUT = 30.0

OPSLOOP = "opsloop"
BARE_BOLT = "bare Bolt inline"
BARE_SDK = "bare docker SDK"


def config_yaml(replicas: int) -> str:
    return (
        f"roles: {{deployers: [{DEPLOYER}], approvers: [{APPROVER}]}}\n"
        "services:\n"
        f"  {SERVICE}:\n"
        "    deployer: docker\n"
        "    image: local/app\n"
        f"    replicas: {replicas}\n"
        f"    steps: [{', '.join(map(str, STEPS))}]\n"
        "    approvals: 1\n"
        f"    channel: {CHANNEL}\n"
        "    container: {network_mode: host}\n"
    )


def plan(step: int, replicas: int) -> dict[str, int]:
    """{version: containers} once `step` of STEPS is applied (as bot/deploys/ports.plan)."""
    canary = canary_count(STEPS[step], replicas)
    return {v: n for v, n in ((NEW, canary), (OLD, replicas - canary)) if n}


def done_words(step: int) -> str:
    """How the rollout's message ends once `step` is applied (rollout.describe_state)."""
    if step == len(STEPS) - 1:
        return "complete"
    return f"at {STEPS[step]}%, waiting for approval to go to {STEPS[step + 1]}%"


# -- results --------------------------------------------------------------------------------


@dataclass
class Click:
    """One Approve click on opsloop, and the bare Bolt app's ack of the same button."""

    round: int
    percent: int
    ack_ms: float = math.nan
    ack_status: int = 0
    bare_ack_ms: float = math.nan
    engine_s: float = math.nan  # click -> the step's plan runs on dockerd, nothing else
    engine_begins_s: float = math.nan  # click -> the first change seen on dockerd
    approved_reply_s: float = math.nan  # click -> the "Approved by" thread reply was posted
    slack_s: float = math.nan  # click -> the rollout's message says the step is done
    min_running: int = 0
    max_containers: int = 0
    note: str = ""


@dataclass
class BareStep:
    round: int
    percent: int
    engine_s: float = math.nan  # start -> the observer sees the plan
    engine_begins_s: float = math.nan  # start -> the first change seen on dockerd
    sdk_s: float = math.nan  # start -> the last SDK call returned
    min_running: int = 0
    max_containers: int = 0


@dataclass
class Round:
    number: int
    engine_start_s: float = math.nan
    first_deploy_s: float = math.nan
    canary_s: float = math.nan
    slack_posts: int = 0  # chat.postMessage calls opsloop made, accepted or not
    slack_429s: int = 0  # of them, answered 429 by the emulator (Slack's 1/s per channel)
    clicks: list[Click] = field(default_factory=list)
    bare: list[BareStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class RoundMiss(Exception):
    """opsloop did not get the rollout to where the clicks are measured."""


# -- the stack ------------------------------------------------------------------------------


@dataclass
class Stack:
    children: Children
    events_url: str  # opsloop serve's /slack/events
    bare_url: str  # the bare Bolt app's /slack/events


def start_stack(
    children: Children,
    *,
    api_url: str,
    token: str,
    secret: str,
    redis_port: int,
    args: argparse.Namespace,
    config_text: str,
    system_env: dict[str, str],
) -> Stack:
    """opsloop serve (and a worker) with `config_text` as its YAML file and `system_env` naming
    the deploy system (the Kubernetes cases start theirs so too), and the bare Bolt app;
    blocking: run it in a thread."""
    deadline = time.monotonic() + START_TIMEOUT
    config = children.workdir / "opsloop.yml"
    config.write_text(config_text, encoding="utf-8")
    secrets_env = {**base_env(), "SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": secret}
    server_env = {
        **secrets_env,
        "OPSLOOP_SLACK_API_URL": api_url,
        "OPSLOOP_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "OPSLOOP_HOST": "127.0.0.1",
        "OPSLOOP_CONFIG_FILE": str(config),
        "OPSLOOP_DATA_DIR": str(children.workdir / "data"),
        "OPSLOOP_LOG_LEVEL": "WARNING",
        **system_env,
    }
    port = free_port()
    serve_argv = (
        opsloop_argv("serve") if args.serve_worker else opsloop_argv("serve", "--no-worker")
    )
    serve = children.start("opsloop serve", serve_argv, {**server_env, "OPSLOOP_PORT": str(port)})
    if not args.serve_worker:
        children.start("opsloop worker", opsloop_argv("worker"), server_env)
    bare = children.start(
        BARE_BOLT,
        [sys.executable, "-m", "bench._deploy", "bare-action", "--api-url", api_url],
        secrets_env,
        stdout_pipe=True,
    )
    bare_port = read_port(bare, deadline)
    wait_http_ok(serve, f"http://127.0.0.1:{port}/readyz", deadline)
    wait_workers(children, redis_port, 1, deadline)
    return Stack(
        children=children,
        events_url=f"http://127.0.0.1:{port}/slack/events",
        bare_url=f"http://127.0.0.1:{bare_port}/slack/events",
    )


def log_tails(children: Children) -> str:
    parts = []
    for child in children.started:
        if child.name.startswith("opsloop"):
            tail = child.tail(8)
            if tail:
                parts.append(f"--- {child.name} log ---\n{tail}")
    return "\n".join(parts)


# -- watching Slack's side ------------------------------------------------------------------


def rollout_message(emu: SlackEmulator, version: str) -> Message | None:
    found = [m for m in emu.messages(CHANNEL) if m.text.startswith(f"Deploy {SERVICE} {version} (")]
    return found[-1] if found else None


FAILED_WORDS = (": failed at", ": rolled back", ": rolling back", "approval request expired")


async def message_says(
    emu: SlackEmulator, version: str, words: str, t0: float, within: float
) -> tuple[float, str]:
    """Seconds from `t0` until the rollout's message ends with `words`: (NaN, why) if it did
    not `within` seconds or the rollout went elsewhere (failed, rolled back, expired)."""
    deadline = t0 + within
    while True:
        since = emu.version
        msg = rollout_message(emu, version)
        if msg is not None and msg.text.endswith(": " + words):
            return time.perf_counter() - t0, ""
        if msg is not None and any(w in msg.text for w in FAILED_WORDS):
            return math.nan, f"the message says: {msg.text}"
        left = deadline - time.perf_counter()
        if left <= 0:
            shown = msg.text if msg is not None else "no message"
            return math.nan, f"not within {within:g} s; the message says: {shown}"
        await emu.wait_for_change(since, min(left, 1.0))


def reply_posted(emu: SlackEmulator, starts: str, since: float) -> float:
    """Seconds from `since` (time.time) until a thread reply starting with `starts` was
    posted (the emulator records each call's wall-clock time); NaN if none was."""
    for call in emu.calls:
        reply = call.method == "chat.postMessage" and bool(call.args.get("thread_ts"))
        if reply and call.ok and call.at >= since and str(call.args.get("text")).startswith(starts):
            return call.at - since
    return math.nan


def told(emu: SlackEmulator, user: str) -> str:
    texts = [e.text for e in emu.ephemerals(user=user)]
    return f"; last ephemeral to {user}: {texts[-1]}" if texts else ""


# -- a round --------------------------------------------------------------------------------


async def deploy(
    driver: SlackDriver,
    emu: SlackEmulator,
    observer: Any,
    version: str,
    words: str,
    wanted: dict[str, int],
    args: argparse.Namespace,
) -> float:
    """`/deploy web <version>`; seconds until its message ends with `words` and the engine
    runs `wanted`."""
    t0 = time.perf_counter()
    resp = await driver.command("/deploy", f"{SERVICE} {version}", user=DEPLOYER, channel=CHANNEL)
    if not resp.ok:
        raise RoundMiss(f"`/deploy {SERVICE} {version}` answered {resp.status}: {resp.note}")
    (said, why), seen = await asyncio.gather(
        message_says(emu, version, words, t0, args.step_timeout),
        watch_plan(observer, SERVICE, wanted, t0, args.step_timeout),
    )
    if math.isnan(said) or math.isnan(seen.seconds):
        on_engine = seen.last.running if seen.last else "?"
        raise RoundMiss(
            f"`/deploy {SERVICE} {version}` did not get to {words!r}: message {why or 'ok'}; "
            f"engine runs {on_engine}, wanted {wanted}{told(emu, DEPLOYER)}"
        )
    return max(said, seen.seconds)


async def bare_round(number: int, docker_url: str, args: argparse.Namespace) -> list[BareStep]:
    """The baseline's R x 1 and 25% canary (untimed), then its timed 50% and 100% steps."""
    client, observer = docker_client(docker_url), docker_client(docker_url)
    bare = BareService(client, BARE_SERVICE)
    out: list[BareStep] = []
    try:
        await bare_step(bare, {}, {OLD: args.replicas}, args.step_timeout)
        await bare_step(bare, {OLD: args.replicas}, plan(0, args.replicas), args.step_timeout)
        for step in range(1, len(STEPS)):
            before, after = plan(step - 1, args.replicas), plan(step, args.replicas)
            t0 = time.perf_counter()
            sdk_s, seen = await asyncio.gather(
                bare_step(bare, before, after, args.step_timeout),
                watch_plan(observer, BARE_SERVICE, after, t0, args.step_timeout),
            )
            out.append(
                BareStep(
                    number,
                    STEPS[step],
                    engine_s=seen.seconds,
                    engine_begins_s=seen.first_change_s,
                    sdk_s=sdk_s,
                    min_running=seen.min_running,
                    max_containers=seen.max_containers,
                )
            )
        await asyncio.to_thread(bare.remove_everything)
    finally:
        await asyncio.to_thread(client.close)
        await asyncio.to_thread(observer.close)
    return out


async def approve(
    number: int,
    step: int,
    driver: SlackDriver,
    bare: SlackDriver,
    emu: SlackEmulator,
    observer: Any,
    args: argparse.Namespace,
) -> Click:
    """Click Approve on the bare Bolt app, then on opsloop; time the step that follows."""
    click = Click(number, STEPS[step])
    message = rollout_message(emu, NEW)
    assert message is not None
    bare_resp = await bare.click("Approve", user=APPROVER, message=message)
    click.bare_ack_ms = bare_resp.elapsed_ms if bare_resp.ok else math.nan
    t0, t0_wall = time.perf_counter(), time.time()
    resp = await driver.click("Approve", user=APPROVER, message=message)
    click.ack_ms, click.ack_status = resp.elapsed_ms, resp.status
    if not 200 <= resp.status < 300:  # a late 2xx still stored the job: watch the step
        click.note = f"the click was answered {resp.status}: {resp.note}"
        return click
    # Watched from here on, so nothing else ran in this process while the ack was timed.
    wanted = plan(step, args.replicas)
    (said, why), seen = await asyncio.gather(
        message_says(emu, NEW, done_words(step), t0, args.step_timeout),
        watch_plan(observer, SERVICE, wanted, t0, args.step_timeout),
    )
    click.slack_s, click.engine_s = said, seen.seconds
    click.engine_begins_s = seen.first_change_s
    click.approved_reply_s = reply_posted(emu, ":white_check_mark: Approved by", t0_wall)
    click.min_running, click.max_containers = seen.min_running, seen.max_containers
    notes = []
    if why:
        notes.append(f"message: {why}")
    if math.isnan(seen.seconds):
        last = seen.last.running if seen.last else "?"
        notes.append(f"engine runs {last}, wanted {wanted}")
    click.note = "; ".join(notes) + (told(emu, APPROVER) if notes else "")
    return click


async def opsloop_round(
    rnd: Round, stack: Stack, emu: SlackEmulator, docker_url: str, args: argparse.Namespace
) -> None:
    observer = docker_client(docker_url)
    emu.bot_events_url = stack.events_url
    try:
        async with SlackDriver(emu) as driver, SlackDriver(emu, events_url=stack.bare_url) as bare:
            full = {OLD: args.replicas}
            rnd.first_deploy_s = await deploy(driver, emu, observer, OLD, "complete", full, args)
            rnd.canary_s = await deploy(
                driver, emu, observer, NEW, done_words(0), plan(0, args.replicas), args
            )
            message = rollout_message(emu, NEW)
            assert message is not None
            await bare.click("Approve", user=APPROVER, message=message)  # warm-up: auth.test
            for step in range(1, len(STEPS)):
                click = await approve(rnd.number, step, driver, bare, emu, observer, args)
                rnd.clicks.append(click)
                print_click(click, rnd.bare)
                if click.note:
                    break  # no Approve button for the next step
    finally:
        await asyncio.to_thread(observer.close)


async def round_async(
    rnd: Round, children: Children, docker_url: str, redis_port: int, args: argparse.Namespace
) -> None:
    token, secret = "xoxb-bench-" + secrets.token_hex(8), secrets.token_hex(16)
    emu = SlackEmulator(bot_token=token, signing_secret=secret)
    async with emu.serve():
        stack = await asyncio.to_thread(
            start_stack,
            children,
            api_url=emu.api_url,
            token=token,
            secret=secret,
            redis_port=redis_port,
            args=args,
            config_text=config_yaml(args.replicas),
            system_env={"OPSLOOP_DOCKER_HOST": docker_url},
        )
        try:
            rnd.bare = await bare_round(rnd.number, docker_url, args)
            for b in rnd.bare:
                print(
                    f"  {BARE_SDK} -> {b.percent}%: {b.engine_s:.2f} s on dockerd "
                    f"(SDK calls {b.sdk_s:.2f} s)",
                    flush=True,
                )
            await opsloop_round(rnd, stack, emu, docker_url, args)
        except RoundMiss as e:
            rnd.notes.append(str(e))
            print(f"  MISS: {e}", flush=True)
        finally:
            # While the emulator still answers: nothing of opsloop talks to a vanished Slack.
            await asyncio.to_thread(children.stop_all)
            posts = [c for c in emu.calls if c.method == "chat.postMessage"]
            rnd.slack_posts = len(posts)
            rnd.slack_429s = sum(1 for c in posts if c.status == 429)


def docker_errors() -> type[Exception]:
    import docker.errors

    return docker.errors.DockerException  # type: ignore[no-any-return]


def run_round(number: int, args: argparse.Namespace) -> Round:
    rnd = Round(number)
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="opsloop-deploy-") as tmp,
        fresh_engine() as engine,
    ):
        rnd.engine_start_s = time.perf_counter() - started
        children = Children(Path(tmp))
        try:
            _, redis_port, _ = start_redis(children, base_env(), time.monotonic() + START_TIMEOUT)
            asyncio.run(round_async(rnd, children, engine.url, redis_port, args))
            if rnd.notes or any(c.note for c in rnd.clicks):
                tails = log_tails(children)
                if tails:
                    print(tails, flush=True)
        except docker_errors() as e:  # the bench's own docker calls: the bench broke
            print(log_tails(children), file=sys.stderr)
            raise BenchError(f"round {number}: the bench's docker call failed: {e}") from e
        except BaseException:
            tails = log_tails(children)
            if tails:
                print(tails, file=sys.stderr)
            raise
        finally:
            children.stop_all()
    return rnd


def print_click(c: Click, bare: list[BareStep]) -> None:
    base = next((b for b in bare if b.percent == c.percent), None)
    base_s = f" ({BARE_SDK} {base.engine_s:.2f} s)" if base else ""
    line = (
        f"  {OPSLOOP} Approve -> {c.percent}%: ack {c.ack_ms:.1f} ms ({BARE_BOLT} "
        f"{c.bare_ack_ms:.1f} ms); on dockerd {c.engine_s:.2f} s{base_s}; message says done "
        f'{c.slack_s:.2f} s\n    ("Approved by" reply posted at {c.approved_reply_s:.2f} s, '
        f"first change on dockerd at {c.engine_begins_s:.2f} s; running >= {c.min_running}, "
        f"at most {c.max_containers} containers)"
    )
    print(line + (f"\n    MISS: {c.note}" if c.note else ""), flush=True)


# -- report ---------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float]:
    got = sorted(v for v in values if not math.isnan(v))
    return {
        "n": len(got),
        "p50": percentile(got, 50),
        "p90": percentile(got, 90),
        "max": got[-1] if got else math.nan,
        "mean": sum(got) / len(got) if got else math.nan,
    }


STATS = ("p50", "p90", "max", "mean")


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def table(rounds: list[Round]) -> tuple[list[str], dict[str, Any]]:
    clicks = [c for r in rounds for c in r.clicks]
    bare = [b for r in rounds for b in r.bare]
    rows: list[tuple[str, str, dict[str, float] | None, str]] = []
    measures: dict[str, Any] = {}

    def measure(
        title: str, unit: str, ours: list[float], base: list[float], base_name: str, short: str
    ) -> None:
        s_ours, s_base = summary(ours), summary(base)
        measures[title] = {OPSLOOP: s_ours, base_name: s_base}
        rows.append((f"{title} ({unit})", "", None, ""))
        rows.append(("  " + OPSLOOP, "", s_ours, unit))
        rows.append(("  " + base_name, "", s_base, unit))
        ratios = {k: ratio(s_ours[k], s_base[k]) for k in STATS}
        measures[title]["ratio"] = ratios
        rows.append((f"  ratio {OPSLOOP} / {short}", "x", ratios, "x"))

    measure(
        "click -> ack",
        "ms",
        [c.ack_ms for c in clicks if 200 <= c.ack_status < 300],
        [c.bare_ack_ms for c in clicks],
        BARE_BOLT,
        "bare Bolt",
    )
    measure(
        "click -> step runs on dockerd",
        "s",
        [c.engine_s for c in clicks],
        [b.engine_s for b in bare],
        BARE_SDK,
        "bare SDK",
    )
    measure(
        "click -> Slack message says done",
        "s",
        [c.slack_s for c in clicks],
        [b.engine_s for b in bare],
        BARE_SDK + " (on dockerd)",
        "bare SDK",
    )
    width = max(len(r[0]) for r in rows)
    head = f"{'':<{width}} {'n':>3} " + " ".join(f"{k:>8}" for k in STATS)
    lines = [head, "-" * len(head)]
    for name, _, stats, unit in rows:
        if stats is None:
            lines.append(name)
            continue
        n = f"{stats['n']:>3}" if "n" in stats else "   "
        cells = " ".join(fmt(stats[k], unit) for k in STATS)
        lines.append(f"{name:<{width}} {n} {cells}")
    return lines, measures


def fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return f"{'-':>8}"
    if unit == "x":
        return f"{value:7.2f}x"
    if unit == "ms":
        return f"{value:8.1f}"
    return f"{value:8.2f}"


BY_STEP: tuple[tuple[str, int, str, str, str], ...] = (
    # (heading, width, unit, opsloop click or bare step, field)
    ("ack ms", 7, "ms", "click", "ack_ms"),
    ("bare ack", 8, "ms", "click", "bare_ack_ms"),
    ("reply s", 7, "s", "click", "approved_reply_s"),
    ("begins s", 8, "s", "click", "engine_begins_s"),
    ("dockerd s", 9, "s", "click", "engine_s"),
    ("message s", 9, "s", "click", "slack_s"),
    ("bare begins", 11, "s", "bare", "engine_begins_s"),
    ("bare dockerd", 12, "s", "bare", "engine_s"),
)


def by_step(rounds: list[Round]) -> list[str]:
    """p50 of each measure per step, with where opsloop's time goes."""
    clicks = [c for r in rounds for c in r.clicks]
    bare = [b for r in rounds for b in r.bare]
    head = f"{'step':>5} {'n':>3} " + " ".join(f"{h:>{w}}" for h, w, *_ in BY_STEP)
    head += f" {'ratio':>6}"
    lines = ["p50 by step", head, "-" * len(head)]
    for percent in STEPS[1:]:
        rows: dict[str, list[Any]] = {
            "click": [c for c in clicks if c.percent == percent],
            "bare": [b for b in bare if b.percent == percent],
        }
        p50 = {
            (kind, name): summary([getattr(x, name) for x in rows[kind]])["p50"]
            for _, _, _, kind, name in BY_STEP
        }
        cells = [
            fmt(p50[(kind, name)], unit).strip().rjust(w) for _, w, unit, kind, name in BY_STEP
        ]
        dockerd = ratio(p50[("click", "engine_s")], p50[("bare", "engine_s")])
        cells.append(fmt(dockerd, "x").strip().rjust(6))
        lines.append(f"{percent:>4}% {len(rows['click']):>3} " + " ".join(cells))
    lines.append(
        'reply: the "Approved by" thread reply posted; begins: the first change on dockerd; '
        "dockerd: the step's plan runs;\nmessage: the rollout's message says the step is done "
        "(all from the click); bare: from the start of the bare docker SDK's step;\n"
        "ratio: dockerd / bare dockerd"
    )
    return lines


def checks(rounds: list[Round], args: argparse.Namespace) -> list[tuple[str, bool, str]]:
    clicks = [c for r in rounds for c in r.clicks]
    wanted = args.rounds * (len(STEPS) - 1)
    acked = [c for c in clicks if 200 <= c.ack_status < 300 and c.ack_ms < ACK_DEADLINE_MS]
    on_engine = [c for c in clicks if not math.isnan(c.engine_s)]
    said = [c for c in clicks if not math.isnan(c.slack_s)]
    short = [c for c in on_engine if c.min_running < args.replicas]
    slowest = max((c.ack_ms for c in clicks), default=math.nan)
    return [
        (
            f"every Approve acknowledged (2xx) within {ACK_DEADLINE_MS / 1000:g} s",
            len(acked) == wanted,
            f"{len(acked)} of {wanted} clicks, slowest {slowest:.1f} ms",
        ),
        (
            f"every step ran on dockerd within {args.step_timeout:g} s",
            len(on_engine) == wanted,
            f"{len(on_engine)} of {wanted}",
        ),
        (
            "every step shown as done in the Slack message",
            len(said) == wanted,
            f"{len(said)} of {wanted}",
        ),
        (
            f"never fewer than {args.replicas} containers running during a step",
            not short,
            "yes"
            if not short
            else ", ".join(f"round {c.round} {c.percent}%: {c.min_running}" for c in short),
        ),
    ]


def tool_versions() -> dict[str, str]:
    """dockerd's and the docker SDK's versions, and redis-server's."""

    def output(argv: list[str]) -> str:
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()

    try:
        sdk = importlib.metadata.version("docker")
    except importlib.metadata.PackageNotFoundError:
        sdk = "not installed"
    redis_words = output([redis_executable(), "--version"]).split()
    # "Docker version 24.0.7, build 24.0.7-0ubuntu4": the third word.
    docker_words = output(["dockerd", "--version"]).replace(",", "").split()
    return {
        "redis": next((w[2:] for w in redis_words if w.startswith("v=")), "unknown"),
        "dockerd": docker_words[2] if len(docker_words) > 2 else "unknown",
        "docker_sdk": sdk,
    }


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.deploy_flow",
        description="Approve click -> ack, -> canary step on dockerd, -> Slack message; "
        "next to a bare slack-bolt app and the bare docker SDK.",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="fresh stacks, 2 Approve clicks each (default 5)"
    )
    parser.add_argument(
        "--replicas", type=int, default=4, help="containers of the service (default 4)"
    )
    parser.add_argument(
        "--step-timeout",
        type=float,
        default=120.0,
        help="seconds a step may take before it counts as missed (default 120)",
    )
    parser.add_argument(
        "--serve-worker",
        action="store_true",
        help="run jobs in opsloop serve's own worker instead of a separate opsloop worker",
    )
    parser.add_argument(
        "--kind",
        choices=["all", "docker", "kubernetes", "argo", "deployment"],
        default="all",
        help="which deploy cases (default all: those that can run here; bench/_kube_flow.py)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 100:
        parser.error("--rounds from 1 to 100")
    if not 1 <= args.replicas <= 20:
        parser.error("--replicas from 1 to 20")
    if not 5 <= args.step_timeout <= 3600:
        parser.error("--step-timeout from 5 to 3600")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The cases `--kind` names; with `all`, those that can run here (Docker needs dockerd,
    Kubernetes only kubectl and the emulator); a case named on its own must run."""
    from bench import _kube_flow  # it builds on this module

    docker = args.kind in ("all", "docker")
    kube = _kube_flow.kinds_of(args.kind)
    docker_why = engine_missing() if docker else None
    kube_why = _kube_flow.missing() if kube else None
    if args.kind != "all" and (docker_why or kube_why):
        raise BenchError(str(docker_why or kube_why))
    if docker_why and (not kube or kube_why):
        raise BenchError(f"nothing can run here: {docker_why}; {kube_why}")
    results: dict[str, Any] = {}
    if docker_why:
        print(f"the Docker case is left out: {docker_why}")
    elif docker:
        results = run_docker(args)
    if kube_why:
        print(f"the Kubernetes cases are left out: {kube_why}")
    elif kube:
        results["kubernetes"] = _kube_flow.run(args, kube)
    return results


def run_docker(args: argparse.Namespace) -> dict[str, Any]:
    reason = engine_missing()
    if reason is not None:
        raise BenchError(reason)
    tools = tool_versions()
    info = {**machine_info(tools["redis"]), **tools}
    plans = ", ".join(f"{p}%: {plan(i, args.replicas)}" for i, p in enumerate(STEPS))
    topology = (
        "opsloop serve (with its worker)"
        if args.serve_worker
        else ("opsloop serve --no-worker + opsloop worker")
    )
    print(
        f"opsloop deploy flow: {info['cpus']} cores ({info['cpu_model']}), Python "
        f"{info['python']}, dockerd {info['dockerd']}, Redis {info['redis']}, slack-bolt "
        f"{info['slack_bolt']}, docker SDK {info['docker_sdk']}, opsloop {info['opsloop_commit']}"
    )
    print(
        f"{args.rounds} round(s), each on a fresh dockerd and redis-server; {topology}; "
        f"service {SERVICE}: {args.replicas} replicas, plans {plans}\n"
    )
    rounds: list[Round] = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds}", flush=True)
        try:
            rounds.append(run_round(number, args))
        except EngineError as e:
            raise BenchError(str(e)) from e
        r = rounds[-1]
        print(
            f"  (dockerd started and images built in {r.engine_start_s:.1f} s; opsloop's first "
            f"deploy {r.first_deploy_s:.2f} s, 25% canary {r.canary_s:.2f} s; "
            f"{r.slack_posts} chat.postMessage, {r.slack_429s} answered 429)",
            flush=True,
        )
    return report(rounds, args, info)


def report(rounds: list[Round], args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    lines, measures = table(rounds)
    print()
    for line in lines:
        print(line)
    print()
    for line in by_step(rounds):
        print(line)
    print(
        "\nack: the driver's clock around the signed block_actions POST; on dockerd: until the "
        "engine's own list shows\nexactly the step's plan (polled every 25 ms); message: until "
        "the rollout's Slack message says the step is done;\nthe bare docker SDK's times run "
        "from the start of its step."
    )
    print("\nChecks:")
    verdicts = checks(rounds, args)
    for name, ok, detail in verdicts:
        print(f"  {'PASS' if ok else 'MISS'}  {name}: {detail}")
    for r in rounds:
        for note in r.notes:
            print(f"  MISS  round {r.number}: {note}")
    return {
        "machine": info,
        "rounds": args.rounds,
        "replicas": args.replicas,
        "steps": list(STEPS),
        "topology": "serve+worker in one process" if args.serve_worker else "serve, worker",
        "summary": measures,
        "checks": [{"name": n, "pass": ok, "measured": d} for n, ok, d in verdicts],
        "per_round": [asdict(r) for r in rounds],
    }


def main(argv: list[str] | None = None) -> int:
    return bench_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
