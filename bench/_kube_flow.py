"""The Kubernetes cases of `bench.deploy_flow`: an Approve click to Argo's promote and to a plain
Deployment's canary step, beside the same change made by a person with kubectl.

Each round starts afresh and stops everything at the end: a real redis-server, the Slack
emulator and the Kubernetes emulator (bot/sandbox/emulators/kubernetes/) in the bench's process,
and opsloop as processes (`opsloop serve --no-worker`, `opsloop worker`), configured with two
services in namespace `shop`: `shop`, an Argo Rollout of R pods with indefinite pauses after
25%, 50% and 75%, and `cart`, a plain Deployment of R pods with steps 25/50/100 (its canary the
Deployment `cart-canary`), OPSLOOP_KUBECONFIG pointing at the emulator's kubeconfig.

Why the Kubernetes emulator runs in the bench's process: like the Slack emulator it is the
outside system's side, and the bench needs the moment each write arrives at the API server:
`emu.requests` records every request's wall-clock arrival (`at`, taken once its body was read),
so no hook was added. Its simulated controllers (pods available 0.3 s after they are asked
for, `ready_seconds`) run in the same event loop; the bare Bolt app's ack is timed under the
same conditions as opsloop's.

The floor: the same change made by a person with the real kubectl (/usr/bin/kubectl, the same
kubeconfig, a warm discovery cache), on objects of its own (`shop-kubectl`, `cart-kubectl` and
`cart-kubectl-canary`), step by step just before opsloop's click of the same step:
- Argo: `kubectl patch rollout shop-kubectl -n shop --subresource status --type merge -p
  '{"status":{"pauseConditions":null}}'`, exactly what `kubectl argo rollouts promote` sends.
- Deployment: `kubectl scale` of the canary, then of the stable Deployment (e.g. 2 and 2 at
  50%); at 100% `kubectl set image` and `kubectl scale` of the stable one and `kubectl delete`
  of the canary: the writes opsloop's deployer makes, one command after the other, without
  waiting for pods in between (opsloop waits for the canary's pods before it scales the
  stable Deployment down).

Each click comes THINK_S (2 s) after the previous step's message, as a person reads it first
(so opsloop's per-channel Slack budget has refilled, as between a person's clicks).

Measured per Approve click: ms to the ack (beside the bare Bolt app); seconds until the step's
first write arrives at the API server (Argo: the `{"status":{"pauseConditions":null}}` PATCH of
rollouts/shop/status; Deployment: the first write to `cart` or `cart-canary`); until the cluster
stands at the step (the emulator's objects, looked at every 20 ms: paused at the next pause, or
Healthy; the canary and stable Deployments each running their share, available); until the
Slack message says the step is done; on the way, when the "Approved by" reply was posted and the
step's job read the object, and the fewest pods available (checked for the Deployment, whose
canary opsloop runs). kubectl's are timed from the first command's start: to its write
arriving, to the last command's exit, to the cluster at the step.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import (
    BenchError,
    Children,
    base_env,
    machine_info,
    redis_executable,
    start_redis,
)
from bench._kube_cluster import (
    ARGO,
    Kubectl,
    KubeKind,
    arrange,
    cluster_at,
    first_write,
    kinds_of,
    kubectl_step,
    missing,
    promotes,
    start_floor,
    step_read,
)

__all__ = ["kinds_of", "missing", "run"]  # what bench.deploy_flow dispatches to
from bench._kube_report import KubeClick, KubeRound, report
from bench._kube_stack import NS, start_kube_stack
from bench.deploy_flow import (
    APPROVER,
    CHANNEL,
    DEPLOYER,
    FAILED_WORDS,
    NEW,
    START_TIMEOUT,
    RoundMiss,
    log_tails,
    reply_posted,
    told,
)
from bot.sandbox.emulators.kubernetes import KubernetesEmulator
from bot.sandbox.emulators.slack import Message, SlackDriver, SlackEmulator

APPROVED = ":white_check_mark: Approved by"
# Seconds a person reads the message before clicking Approve: by then the channel's message
# budget (opsloop keeps Slack's, about one a second with short bursts) has refilled after the
# previous step's posts, as it would between a person's clicks.
THINK_S = 2.0


# -- opsloop --------------------------------------------------------------------------------


def rollout_message(emu: SlackEmulator, service: str) -> Message | None:
    found = [m for m in emu.messages(CHANNEL) if m.text.startswith(f"Deploy {service} {NEW} (")]
    return found[-1] if found else None


def done_words(kind: KubeKind, step: int) -> str:
    """How the rollout's message ends once `step` is done (rollout.describe_state)."""
    if step == len(kind.percents) - 1:
        return "complete"
    return f"at {kind.percents[step]}%, waiting for approval to go to {kind.percents[step + 1]}%"


def done_reply(emu: SlackEmulator, since: float) -> float:
    """Seconds from `since` (time.time) until the thread reply saying the step is done was
    posted: the first reply after `since` that is not the approval's; NaN if none was."""
    for call in emu.calls:
        text = str(call.args.get("text"))
        reply = call.method == "chat.postMessage" and bool(call.args.get("thread_ts"))
        if reply and call.ok and call.at >= since and not text.startswith(APPROVED):
            return call.at - since
    return math.nan


async def message_says(
    emu: SlackEmulator, kind: KubeKind, step: int, t0: float, within: float
) -> tuple[float, str]:
    """Seconds from `t0` until the rollout's message says `step` is done: (NaN, why) if not."""
    words = ": " + done_words(kind, step)
    while True:
        since = emu.version
        msg = rollout_message(emu, kind.service)
        if msg is not None and msg.text.endswith(words):
            return time.perf_counter() - t0, ""
        if msg is not None and any(w in msg.text for w in FAILED_WORDS):
            return math.nan, f"the message says: {msg.text}"
        left = t0 + within - time.perf_counter()
        if left <= 0:
            return math.nan, f"not within {within:g} s; it says: {msg.text if msg else 'nothing'}"
        await emu.wait_for_change(since, min(left, 1.0))


async def opsloop_click(
    emu: SlackEmulator, kube: KubernetesEmulator, drivers: tuple[SlackDriver, SlackDriver],
    kind: KubeKind, step: int, number: int, args: Any,
) -> KubeClick:  # fmt: skip
    """The bare Bolt app's Approve, then opsloop's; the step that follows, timed."""
    driver, bare = drivers
    click = KubeClick(kind.name, number, kind.percents[step])
    message = rollout_message(emu, kind.service)
    assert message is not None
    bare_resp = await bare.click("Approve", user=APPROVER, message=message)
    click.bare_ack_ms = bare_resp.elapsed_ms if bare_resp.ok else math.nan
    t0, t0_wall = time.perf_counter(), time.time()
    resp = await driver.click("Approve", user=APPROVER, message=message)
    click.ack_ms, click.ack_status = resp.elapsed_ms, resp.status
    if not 200 <= resp.status < 300:
        click.note = f"the click was answered {resp.status}: {resp.note}"
        return click
    (said, why), reached = await asyncio.gather(
        message_says(emu, kind, step, t0, args.step_timeout),
        cluster_at(kube, kind, kind.service, step, args.replicas, t0, args.step_timeout),
    )
    click.slack_s, click.cluster_s = said, reached.seconds
    click.min_available = reached.min_available
    click.patch_s = first_write(kube, kind, kind.service, t0_wall)
    click.read_s = step_read(kube, kind, kind.service, t0_wall, t0_wall + click.patch_s)
    click.reply_s = reply_posted(emu, APPROVED, t0_wall)
    click.done_reply_s = done_reply(emu, t0_wall)
    notes = [f"message: {why}"] if why else []
    if math.isnan(click.cluster_s):
        notes.append(f"the cluster did not reach {kind.percents[step]}%")
    click.note = "; ".join(notes) + (told(emu, APPROVER) if notes else "")
    return click


async def one_kind(
    rnd: KubeRound, kind: KubeKind, emu: SlackEmulator, kube: KubernetesEmulator,
    drivers: tuple[SlackDriver, SlackDriver], kubectl: Kubectl, args: Any, warm_up: bool,
) -> None:  # fmt: skip
    """`/deploy <service> 2` to its first step, then each step: kubectl's, then opsloop's
    (`warm_up`: first an unmeasured click on the bare Bolt app, whose first asks auth.test)."""
    t0 = time.perf_counter()
    resp = await drivers[0].command("/deploy", f"{kind.service} {NEW}", user=DEPLOYER)
    if not resp.ok:
        raise RoundMiss(f"`/deploy {kind.service} {NEW}` answered {resp.status}: {resp.note}")
    (said, why), reached, _ = await asyncio.gather(
        message_says(emu, kind, 0, t0, args.step_timeout),
        cluster_at(kube, kind, kind.service, 0, args.replicas, t0, args.step_timeout),
        start_floor(kubectl, kube, kind, args),
    )
    if math.isnan(said) or math.isnan(reached.seconds):
        raise RoundMiss(f"{kind.service}'s canary did not start: {why}{told(emu, DEPLOYER)}")
    rnd.canary_s[kind.name] = max(said, reached.seconds)
    if warm_up:
        message = rollout_message(emu, kind.service)
        assert message is not None
        await drivers[1].click("Approve", user=APPROVER, message=message)
    for step in range(1, len(kind.percents)):
        floor = await kubectl_step(kubectl, kube, kind, step, rnd.number, args)
        rnd.kubectl.append(floor)
        await asyncio.sleep(THINK_S)
        click = await opsloop_click(emu, kube, drivers, kind, step, rnd.number, args)
        rnd.clicks.append(click)
        print(
            f"  {kind.name} Approve -> {click.percent}%: ack {click.ack_ms:.1f} ms (bare "
            f"{click.bare_ack_ms:.1f}); patch {click.patch_s:.3f} s (kubectl {floor.patch_s:.3f}, "
            f"exits {floor.exit_s:.3f}); cluster {click.cluster_s:.2f} s (kubectl "
            f"{floor.cluster_s:.2f}); message {click.slack_s:.2f} s"
            + (f"\n    MISS: {click.note}" if click.note else ""),
            flush=True,
        )
        if click.note:
            return
    if kind is ARGO:
        rnd.promotes[kind.name] = promotes(kube, kind.service)


async def round_async(
    rnd: KubeRound, kinds: list[KubeKind], children: Children, redis_port: int, args: Any
) -> None:
    token, secret = "xoxb-bench-" + secrets.token_hex(8), secrets.token_hex(16)
    emu = SlackEmulator(bot_token=token, signing_secret=secret)
    kube = KubernetesEmulator()
    arrange(kube, args.replicas)
    async with emu.serve(), kube.serve():
        kubeconfig = kube.kubeconfig(children.workdir / "kubeconfig", namespace=NS)
        kubectl = Kubectl(kubeconfig, children.workdir)
        stack = await asyncio.to_thread(
            start_kube_stack, children, api_url=emu.api_url, token=token, secret=secret,
            redis_port=redis_port, kubeconfig=kubeconfig, args=args,
        )  # fmt: skip
        emu.bot_events_url = stack.events_url
        try:
            async with SlackDriver(emu) as driver, SlackDriver(emu, events_url=stack.bare_url) as b:
                await kubectl.run("get", "rollouts,deployments", "-n", NS)  # discovery, cached
                for kind in kinds:
                    await one_kind(
                        rnd, kind, emu, kube, (driver, b), kubectl, args, kind is kinds[0]
                    )
        except RoundMiss as e:
            rnd.notes.append(str(e))
            print(f"  MISS: {e}", flush=True)
        finally:
            await asyncio.to_thread(children.stop_all)
            posts = [c for c in emu.calls if c.method == "chat.postMessage"]
            rnd.slack_posts, rnd.slack_429s = len(posts), sum(c.status == 429 for c in posts)


def run_round(number: int, kinds: list[KubeKind], args: Any) -> KubeRound:
    rnd = KubeRound(number)
    with tempfile.TemporaryDirectory(prefix="opsloop-kube-") as tmp:
        children = Children(Path(tmp))
        try:
            _, redis_port, _ = start_redis(children, base_env(), time.monotonic() + START_TIMEOUT)
            asyncio.run(round_async(rnd, kinds, children, redis_port, args))
            if rnd.notes or any(c.note for c in rnd.clicks):
                print(log_tails(children) or "(opsloop logged nothing)", flush=True)
        except BaseException:
            tails = log_tails(children)
            if tails:
                print(tails, file=sys.stderr)
            raise
        finally:
            children.stop_all()
    return rnd


def run(args: argparse.Namespace, kinds: list[KubeKind]) -> dict[str, Any]:
    reason = missing()
    if reason is not None:
        raise BenchError(reason)
    kubectl = Kubectl(Path("/nonexistent"), Path(tempfile.gettempdir()))
    redis_words = subprocess.run(
        [redis_executable(), "--version"], capture_output=True, text=True, check=False, timeout=10
    ).stdout.split()
    redis = next((w[2:] for w in redis_words if w.startswith("v=")), "unknown")
    info = {**machine_info(redis), "kubectl": kubectl.version()}
    print(
        f"\nopsloop deploy flow on Kubernetes: {info['cpus']} cores, Python {info['python']}, "
        f"kubectl {info['kubectl']}, Redis {info['redis']}, opsloop {info['opsloop_commit']}\n"
        f"{args.rounds} round(s), each with a fresh redis-server and Kubernetes emulator; "
        f"{', '.join(f'{k.name} `{k.service}` {list(k.percents)}' for k in kinds)}; "
        f"{args.replicas} pods\n"
    )
    rounds: list[KubeRound] = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds}", flush=True)
        rounds.append(run_round(number, kinds, args))
        r = rounds[-1]
        canaries = ", ".join(f"{k} {s:.2f} s" for k, s in r.canary_s.items())
        print(
            f"  (/deploy to the first step: {canaries}; {r.slack_posts} chat.postMessage, "
            f"{r.slack_429s} answered 429)",
            flush=True,
        )
    return report(rounds, [k.name for k in kinds], args, info)
