"""The servers the benchmark runs beside `opsloop serve`, each in a process of its own.

`python -m bench._servers slack` is Slack's side: the project's Slack emulator
(`bot.sandbox.emulators.slack`) when this checkout has one, else a minimal stand-in. Either
answers the Web API (Bolt and opsloop ask `auth.test`) and response_url POSTs, and adds two
routes for the bench: `POST /_bench/response_urls?n=N` hands out N response_urls with the team,
user and channel the commands should carry, and `GET /_bench/stats` counts the response_url
posts that were accepted and refused, so the bench can see that the worker answered every
stored job.

`python -m bench._servers bare-default|bare-inline --api-url URL` is a bare slack-bolt
`AsyncApp` whose `/ops` handler only acks, served by aiohttp the way opsloop serves its own: the
baseline opsloop is compared against.

Each binds port 0 on loopback and prints `PORT <n>` on stdout once it listens, so the parent
never guesses a free port for them; it stops on SIGTERM. Secrets come through the environment
(SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET), as for opsloop, so they never show in `ps`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import Callable

from aiohttp import web

MAX_URLS_PER_CALL = 100_000

OnBound = Callable[[str], None]


def _bench_routes(
    app: web.Application,
    mint: Callable[[], str],
    identity: Callable[[], dict[str, str]],
    stats: Callable[[], dict[str, object]],
) -> None:
    async def response_urls(request: web.Request) -> web.Response:
        try:
            n = int(request.query.get("n", "1"))
        except ValueError:
            n = -1
        if not 1 <= n <= MAX_URLS_PER_CALL:
            return web.json_response({"error": f"n from 1 to {MAX_URLS_PER_CALL}"}, status=400)
        return web.json_response({**identity(), "response_urls": [mint() for _ in range(n)]})

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats())

    app.router.add_post("/_bench/response_urls", response_urls)
    app.router.add_get("/_bench/stats", get_stats)


# -- Slack: the project's emulator ----------------------------------------------------------


def emulator_slack(token: str, secret: str) -> tuple[web.Application, OnBound] | None:
    """The project's Slack emulator with the bench's routes; None if this checkout has none."""
    try:
        from bot.sandbox.emulators.slack import SlackEmulator
        from bot.sandbox.emulators.slack.tokens import ResponseTarget
    except ImportError:
        return None

    emu = SlackEmulator(bot_token=token, signing_secret=secret)
    user, channel = emu.default_user(), emu.default_channel()
    app = emu.make_app()

    def mint() -> str:
        return emu.response_url(ResponseTarget(channel=channel, user=user, issued_at=emu.clock()))

    def identity() -> dict[str, str]:
        return {"slack": "emulator", "team_id": emu.team_id, "user_id": user, "channel_id": channel}

    def stats() -> dict[str, object]:
        # The emulator checks each post as Slack would (token, body, text) and records it.
        posts = [c for c in emu.calls if c.method == "response_url"]
        refused = Counter(str(c.error) for c in posts if not c.ok)
        return {"accepted": len(posts) - sum(refused.values()), "refused": dict(refused)}

    def on_bound(base_url: str) -> None:
        emu.base_url = base_url  # response_urls are minted from it

    _bench_routes(app, mint, identity, stats)
    return app, on_bound


# -- Slack: a minimal stand-in, for checkouts without the emulator --------------------------


def stub_slack() -> tuple[web.Application, OnBound]:
    app = web.Application()
    base = {"url": ""}
    accepted = [0]  # a cell: the handlers below change it

    async def api(request: web.Request) -> web.Response:
        await request.read()
        if request.match_info["method"] == "auth.test":
            return web.json_response(
                {
                    "ok": True,
                    "url": "https://bench.slack.invalid/",
                    "team": "bench",
                    "user": "opsloop",
                    "team_id": "T0BENCH",
                    "user_id": "U0BENCHBOT",
                    "bot_id": "B0BENCHBOT",
                    "is_enterprise_install": False,
                }
            )
        return web.json_response({"ok": True})

    async def response_url(request: web.Request) -> web.Response:
        await request.read()
        accepted[0] += 1
        return web.Response(text="ok")

    def identity() -> dict[str, str]:
        return {"slack": "stub", "team_id": "T0BENCH", "user_id": "U0B", "channel_id": "C0B"}

    def on_bound(base_url: str) -> None:
        base["url"] = base_url

    app.router.add_route("*", "/api/{method}", api)
    app.router.add_post("/response/{token}", response_url)
    _bench_routes(
        app,
        lambda: f"{base['url']}/response/{uuid.uuid4().hex}",
        identity,
        lambda: {"accepted": accepted[0], "refused": {}},
    )
    return app, on_bound


# -- bare Bolt apps -------------------------------------------------------------------------


def bare_bolt(api_url: str, token: str, secret: str, *, inline: bool) -> web.Application:
    """An AsyncApp whose only listener acks `/ops`, behind Bolt's stock aiohttp adapter."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    # The token goes on the client: Bolt ignores (and warns about) `token=` when a client is
    # given, and the client is what points auth.test at the Slack stand-in.
    bolt = AsyncApp(
        client=AsyncWebClient(token=token, base_url=api_url),
        signing_secret=secret,
        process_before_response=inline,
    )

    @bolt.command("/ops")
    async def ops(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/healthz", healthz)
    return app


# -- process entry point --------------------------------------------------------------------


async def _serve(app: web.Application, on_bound: OnBound | None = None) -> None:
    # No access log: opsloop serve runs without one too, and the comparison must be like for like.
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    if on_bound is not None:
        on_bound(f"http://127.0.0.1:{port}")
    await announce_and_wait(runner, port)


async def announce_and_wait(runner: web.AppRunner, port: int) -> None:
    """Tell the parent bench the port (`PORT n` on stdout), then serve until SIGINT/SIGTERM."""
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._servers")
    parser.add_argument("kind", choices=["slack", "bare-default", "bare-inline"])
    parser.add_argument("--api-url", default="", help="Slack Web API base URL (bare apps)")
    args = parser.parse_args(argv)
    token = os.environ.get("SLACK_BOT_TOKEN", "")
    secret = os.environ.get("SLACK_SIGNING_SECRET", "")
    # Set before Bolt builds its loggers: they copy the root level once, at construction.
    logging.basicConfig(level=logging.WARNING)
    on_bound: OnBound | None = None
    if args.kind == "slack":
        app, on_bound = emulator_slack(token, secret) or stub_slack()
    else:
        app = bare_bolt(args.api_url, token, secret, inline=args.kind == "bare-inline")
    asyncio.run(_serve(app, on_bound))
    return 0


if __name__ == "__main__":
    sys.exit(main())
