"""`opsloop <command>`: serve, worker, socket, sandbox, check, manifest.

Errors in settings end the process with the message and exit code 2, never a stack trace.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from bot.app import BOLT_KEY, create_app
from bot.config_file import OpsConfig
from bot.config_load import load_config
from bot.errors import SettingsError
from bot.jobs import WorkerRunner
from bot.logs import configure_logging
from bot.runtime import Runtime
from bot.settings import Settings, load_settings, require

log = logging.getLogger("opsloop")


def stop_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM from now on.

    Called first thing, so that a signal during start-up stops the process cleanly once it has
    started rather than killing it half-way (Python's default for SIGTERM).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        await runner.cleanup()
        raise SettingsError(f"OPSLOOP_PORT: cannot listen on {host}:{port}: {e.strerror}") from None
    return runner


def _freeze_startup_objects() -> None:
    # Everything loaded so far (the SDKs, settings, the app) lives as long as the process. The
    # garbage collector's full passes walk every object, and with this many they pause the ack
    # path for tens of milliseconds; frozen objects are left out of those passes.
    gc.collect()
    gc.freeze()


async def _serve(settings: Settings, *, worker: bool, socket_mode: bool = False) -> None:
    stop = stop_signals()
    runtime = Runtime.start(settings, load_config(settings))
    runner: web.AppRunner | None = None
    workers: WorkerRunner | None = None
    handler: Any = None
    try:
        app = create_app(settings, runtime.deps)
        runner = await start_site(app, settings.host, settings.port)
        log.info("listening on http://%s:%d", settings.host, settings.port)
        _freeze_startup_objects()
        if worker:
            workers = WorkerRunner(runtime.deps, runtime.jobs)
            await workers.start()
        if socket_mode:
            from slack_sdk.errors import SlackApiError

            from bot.socket_mode import MeteredSocketModeHandler

            handler = MeteredSocketModeHandler(
                app[BOLT_KEY], settings.secret("slack_app_token"), runtime.deps.metrics
            )
            try:  # one checked call first: slack_sdk's connect() retries a refused token forever
                handler.client.wss_uri = await handler.client.issue_new_wss_url()
            except SlackApiError as e:
                error = e.response.get("error")
                raise SettingsError(
                    f"SLACK_APP_TOKEN: Slack refused it for apps.connections.open ({error})"
                ) from None
            await handler.connect_async()
            log.info("connected to Slack over Socket Mode")
        await stop.wait()
    finally:
        if handler is not None:  # first: stop taking envelopes before the worker stops
            await handler.close_async()
        if runner is not None:
            await runner.cleanup()
        if workers is not None:
            await workers.stop()
        await runtime.close()


async def _worker(settings: Settings) -> None:
    stop = stop_signals()
    runtime = Runtime.start(settings, load_config(settings))
    workers = WorkerRunner(runtime.deps, runtime.jobs)
    try:
        await workers.start()
        log.info("worker %s running %d job kinds", workers.worker_id, len(runtime.jobs.names()))
        await stop.wait()
    finally:
        await workers.stop()
        await runtime.close()


@asynccontextmanager
async def _sandboxed_bot(settings: Settings, config: OpsConfig) -> AsyncIterator[str]:
    """The bot as `opsloop sandbox` runs it: an empty store, its worker, a free port."""
    runtime = Runtime.start(settings, config)
    workers = WorkerRunner(runtime.deps, runtime.jobs)
    runner: web.AppRunner | None = None
    try:
        # The emulated Slack starts empty each time; groups and jobs of an earlier run would
        # point at messages that no longer exist.
        await runtime.deps.store.reset()
        runner = await start_site(create_app(settings, runtime.deps), settings.host, 0)
        await workers.start()
        yield f"http://{settings.host}:{runner.addresses[0][1]}"
    finally:
        if runner is not None:
            await runner.cleanup()
        await workers.stop()
        await runtime.close()


def _sandbox(settings: Settings) -> int:
    # Imported here: only `opsloop sandbox` loads the sandbox and its emulators.
    from bot.sandbox.runner import Bot, run_sandbox
    from commands import FAMILIES, shortcuts

    commands = [family.HELP.command for family in FAMILIES]
    bot = Bot(start=_sandboxed_bot, shortcuts=shortcuts(), commands=commands)

    async def sandbox() -> None:
        await run_sandbox(settings, stop_signals(), bot)

    return _run(sandbox)


async def _check(settings: Settings) -> int:
    from bot.check import run_checks

    lines = await run_checks(settings, load_config(settings))
    for line in lines:
        print(line.render())
    return 0 if all(line.ok for line in lines) else 1


def _manifest(url: str) -> int:
    from bot.manifest import manifest_yaml
    from commands import FAMILIES, shortcuts

    print(manifest_yaml([f.HELP for f in FAMILIES], url, shortcuts()), end="")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opsloop", description="Slack ChatOps bot for the whole DevOps loop."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="HTTP server (Slack, webhooks, health, metrics) + worker")
    serve.add_argument("--no-worker", action="store_true", help="do not run jobs in this process")
    sub.add_parser("worker", help="a job worker alone, for scaling out")
    sub.add_parser("socket", help="the bot over Slack Socket Mode (needs SLACK_APP_TOKEN)")
    sandbox = sub.add_parser("sandbox", help="the bot on a local Slack emulator, with a web page")
    sandbox.add_argument("--port", type=int, help="web page port (default OPSLOOP_PORT, 3000)")
    sub.add_parser("check", help="validate settings and reach every configured system")
    manifest = sub.add_parser("manifest", help="print the Slack app manifest")
    manifest.add_argument(
        "--url", required=True, help="public base URL, e.g. https://bot.example.com"
    )
    return parser


def _run(coro: Callable[[], Awaitable[int | None]]) -> int:
    async def main() -> int | None:
        return await coro()

    return asyncio.run(main()) or 0


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "manifest":
        return _manifest(args.url)
    overrides = {}
    if args.command == "sandbox" and args.port is not None:
        overrides["OPSLOOP_PORT"] = args.port
    settings = load_settings(**overrides)
    configure_logging(settings)
    if args.command == "serve":
        require(settings, "slack_bot_token", "slack_signing_secret")
        return _run(lambda: _serve(settings, worker=not args.no_worker))
    if args.command == "socket":
        require(settings, "slack_bot_token", "slack_app_token")
        return _run(lambda: _serve(settings, worker=True, socket_mode=True))
    if args.command == "worker":
        require(settings, "slack_bot_token")
        return _run(lambda: _worker(settings))
    if args.command == "check":
        return _run(lambda: _check(settings))
    if args.command == "sandbox":
        return _sandbox(settings)
    raise AssertionError(args.command)  # pragma: no cover - argparse refuses others


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return dispatch(args)
    except SettingsError as e:
        print(f"opsloop: cannot start:\n{e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:
        # Through logging, whose filter masks credentials in the traceback; Python's own
        # report of an uncaught exception would print them as they are.
        log.critical("opsloop stopped on an unexpected error", exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
