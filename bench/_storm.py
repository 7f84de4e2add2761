"""Slack's side of the alert storm bench, and the storm's Alertmanager notifications.

`python -m bench._storm slack` serves the project's Slack emulator
(`bot.sandbox.emulators.slack`) in a process of its own, with Slack's per-channel limit on
chat.postMessage (1 a second, bursts of 3, 429 with Retry-After beyond it), and two routes for
the bench:

- `GET /_bench/calls?since=N`: the Web API calls from the N-th on, compactly: method, time,
  HTTP status, error, channel, ts/thread_ts, the Retry-After of a 429, and a hash of the arguments
  (a retry of a call sends the same arguments, so the bench can pair each 429 with its retry).
- `GET /_bench/messages`: every channel's top-level messages: ts, text, reply count.

It binds port 0 on loopback, prints `PORT <n>` once it listens and stops on SIGTERM; the bot
token and signing secret come through the environment (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET).

`storm_notifications` builds the notifications Alertmanager would send for a storm.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bench._servers import announce_and_wait
from bot.sandbox.alerts import alert_entry, notification
from bot.sandbox.emulators.slack import SlackEmulator

MAX_CALLS_PER_PAGE = 50_000

# -- the notifications ----------------------------------------------------------------------

ALERTNAMES = (
    "HighLatency",
    "HighErrorRate",
    "PodCrashLooping",
    "DiskWillFillIn4Hours",
    "TargetDown",
    "CertificateExpiresSoon",
    "QueueBacklogGrowing",
    "MemoryPressure",
    "ReplicationLag",
    "NodeNotReady",
)


@dataclass(frozen=True)
class StormGroup:
    """One alert group of the storm and the bodies Alertmanager sends for it, in order."""

    index: int
    group_key: str
    channel: str
    alerts: int
    bodies: tuple[bytes, ...]


def group_channel(severity: str, team: str, routes: dict[str, str]) -> str:
    """The channel the bench's routes (see `alert_storm.routes_yaml`) send a group to."""
    if severity == "critical":
        return routes["critical"]
    if team == "web":
        return routes["web"]
    return routes["default"]


def storm_notifications(
    groups: int, per_group: int, first: int, routes: dict[str, str], now: float
) -> list[StormGroup]:
    """`groups` groups of `per_group` alerts: each group's first notification carries `first`
    of its alerts (what arrived within group_wait), the second all of them (group_interval
    later, the rest joined), as Alertmanager sends them with `group_by: [alertname, service]`.
    """
    out = []
    for g in range(groups):
        alertname = ALERTNAMES[g % len(ALERTNAMES)]
        service = f"svc-{g // len(ALERTNAMES):03d}"
        severity = "critical" if g % 5 == 0 else "warning"
        team = ("web", "payments", "platform")[g % 3]
        group_labels = {"alertname": alertname, "service": service}
        route_path = '{}/{severity="critical"}' if severity == "critical" else "{}"
        group_key = f'{route_path}:{{alertname="{alertname}", service="{service}"}}'
        entries = []
        for i in range(per_group):
            labels = {
                **group_labels,
                "instance": f"{service}-{i}.prod:9100",
                "severity": severity,
                "team": team,
            }
            annotations = {
                "summary": f"{alertname} on {service}",
                "runbook_url": f"https://runbooks.example.com/{alertname}",
            }
            generator = f"http://prometheus.example:9090/graph?g0.expr={alertname}"
            # Alerts of a group start within a few seconds of each other.
            entries.append(alert_entry(labels, annotations, now - 30 + i, None, generator))
        bodies = []
        for upto in (first, per_group) if 0 < first < per_group else (per_group,):
            body = notification(group_key, group_labels, entries[:upto], receiver="opsloop")
            bodies.append(json.dumps(body, separators=(",", ":")).encode())
        out.append(
            StormGroup(
                g, group_key, group_channel(severity, team, routes), per_group, tuple(bodies)
            )
        )
    return out


# -- Slack's side ---------------------------------------------------------------------------


def _args_key(args: Any) -> str:
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def slack_app(token: str, secret: str) -> tuple[web.Application, SlackEmulator]:

    emu = SlackEmulator(bot_token=token, signing_secret=secret)
    retry_after: dict[int, float] = {}  # index in emu.calls -> Retry-After of that 429

    @web.middleware
    async def note_retry_after(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        resp = await handler(request)
        # The emulator appended this call to emu.calls just before answering, with no await
        # in between, so it is the last one.
        if request.path.startswith("/api/") and resp.status == 429 and emu.calls:
            retry_after[len(emu.calls) - 1] = float(resp.headers.get("Retry-After", "1"))
        return resp

    async def calls(request: web.Request) -> web.Response:
        since = max(int(request.query.get("since", "0")), 0)
        out = []
        for i, c in enumerate(emu.calls[since : since + MAX_CALLS_PER_PAGE], start=since):
            args = c.args if isinstance(c.args, dict) else {}
            body = c.response if isinstance(c.response, dict) else {}
            out.append(
                {
                    "i": i,
                    "method": c.method,
                    "at": c.at,
                    "status": c.status,
                    "ok": c.ok,
                    "error": c.error,
                    "channel": args.get("channel"),
                    "thread_ts": args.get("thread_ts"),
                    "ts": args.get("ts") or body.get("ts"),
                    "key": _args_key(args),
                    "retry_after": retry_after.get(i),
                }
            )
        return web.json_response({"calls": out, "total": len(emu.calls)})

    async def messages(request: web.Request) -> web.Response:
        return web.json_response(
            {
                channel: [
                    {"ts": m.ts, "text": m.text, "replies": len(m.replies)}
                    for m in emu.messages(channel)
                ]
                for channel in emu.channels
            }
        )

    app = emu.make_app()
    app.middlewares.append(note_retry_after)
    app.router.add_get("/_bench/calls", calls)
    app.router.add_get("/_bench/messages", messages)
    return app, emu


async def _serve(app: web.Application, emu: SlackEmulator) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    emu.base_url = f"http://127.0.0.1:{port}"
    await announce_and_wait(runner, port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._storm")
    parser.add_argument("kind", choices=["slack"])
    parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    token = os.environ.get("SLACK_BOT_TOKEN", "")
    secret = os.environ.get("SLACK_SIGNING_SECRET", "")
    asyncio.run(_serve(*slack_app(token, secret)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
