"""Slash commands and clicks as durable jobs: acknowledged at once, worked on by a worker.

In the web process a handler only parses (bad input is answered in the ack itself, nothing is
stored), enqueues a job whose id is the delivery's identity, and acks. The job does the work and
answers through the response_url. Errors become messages here, once, for every command.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from arq.worker import Retry
from slack_bolt.async_app import AsyncAck, AsyncApp

from bot import outages
from bot.deps import Deps
from bot.errors import IntegrationError, OutcomeUnknown, UserError, log_unexpected
from bot.job_scope import ChannelBusy
from bot.jobs import JobContext, JobFunction
from bot.replies import Reply, integration_error, outcome_unknown, unexpected_error, user_error
from bot.slack_requests import (
    ActionRequest,
    ShortcutRequest,
    SlashRequest,
    ViewRequest,
    delivery_id,
)
from bot.store import REDIS_DOWN
from bot.store.batching import NotSent, Unconfirmed

log = logging.getLogger(__name__)

Parser = Callable[[str], dict[str, Any]]
# Work that must happen inside the 3-second ack, such as opening a modal with the trigger_id
# (which Slack honours for 3 seconds only); it returns the ack's text, or None for an empty ack.
Inline = Callable[[Deps, dict[str, Any], dict[str, Any]], Awaitable[str | None]]
# A modal's values checked in the ack: returns the job's args, or raises FormErrors.
FormCheck = Callable[[Deps, dict[str, Any], dict[str, Any]], Awaitable[dict[str, Any]]]
SLACK_INLINE_TIMEOUT = 2.5
SlashRunner = Callable[[JobContext, SlashRequest, dict[str, Any]], Awaitable[Reply | None]]
ActionRunner = Callable[[JobContext, ActionRequest], Awaitable[Reply | None]]
ViewRunner = Callable[[JobContext, ViewRequest, dict[str, Any]], Awaitable[Reply | None]]
ShortcutRunner = Callable[[JobContext, ShortcutRequest], Awaitable[Reply | None]]


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


def _ack_body(reply: Reply) -> dict[str, Any]:
    body: dict[str, Any] = {"response_type": "ephemeral", "text": reply.text}
    if reply.blocks:
        body["blocks"] = reply.blocks
    return body


class FormErrors(Exception):
    """A modal's inputs are wrong: shown under each input (`response_action: errors`)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class _SlashRoute:
    parse: Parser
    job: str
    inline: frozenset[str]


# Each Bolt app's slash commands, for job_without_bolt.
_ROUTES: weakref.WeakKeyDictionary[AsyncApp, dict[str, _SlashRoute]] = weakref.WeakKeyDictionary()


def add_slash_command(
    app: AsyncApp,
    deps: Deps,
    command: str,
    parse: Parser,
    job: str,
    inline: dict[str, Inline] | None = None,
) -> None:
    """`command` is parsed at once and run as the durable job `job`; subcommands named in
    `inline` (args["sub"]) run in the ack path instead."""
    _ROUTES.setdefault(app, {})[command] = _SlashRoute(parse, job, frozenset(inline or ()))

    async def handle(ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            args = parse(str(body.get("text", "")).strip())
            if inline and args.get("sub") in inline:
                text = await asyncio.wait_for(
                    inline[args["sub"]](deps, args, body), SLACK_INLINE_TIMEOUT
                )
                await ack(**_ack_body(Reply(text=text))) if text else await ack()
                return
        except UserError as e:
            await ack(**_ack_body(user_error(e)))
            return
        except (IntegrationError, TimeoutError) as e:
            problem = e.message if isinstance(e, IntegrationError) else "Slack did not answer"
            await ack(**_ack_body(Reply(text=f":x: {problem}; try again.")))
            return
        except Exception as e:  # a parser bug must not cost the ack
            await ack(**_ack_body(unexpected_error(log_unexpected(e, f"parsing {command}"))))
            return
        await _enqueue_then_ack(deps, ack, job, *_slash_job(body, args))

    app.command(command)(handle)


def _slash_job(body: dict[str, Any], args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(job id, payload) of a slash command's job: the id is the delivery's identity, so a
    retry of the same command finds the job it already stored."""
    return f"slash:{delivery_id(body)}", {
        "request": SlashRequest.from_body(body).to_dict(),
        "args": args,
    }


class SlashJob(NamedTuple):
    """A slash command's durable job, ready to store."""

    function: str
    job_id: str
    payload: dict[str, Any]


def job_without_bolt(app: AsyncApp, form: dict[str, str]) -> SlashJob | None:
    """The job of a slash command that needs nothing from Bolt; None when Bolt's listener
    must handle the command. The caller has checked the request's signature.

    For a command whose job is all it needs, Bolt's dispatch (its request object, middleware,
    listener matching and ack) decides nothing: the ack is empty once Redis has the job, so
    the HTTP boundary stores it itself (`stored_ack`). Input the parser refuses and inline
    subcommands are left to the listener, and so is anything that fails here, where it fails
    again and is answered. A Bolt middleware does not see the commands answered without Bolt:
    return None for those it must see.
    """
    route = _ROUTES.get(app, {}).get(form.get("command", ""))
    if route is None:
        return None
    try:
        args = route.parse(form.get("text", "").strip())
        if args.get("sub") in route.inline:
            return None
        return SlashJob(route.job, *_slash_job(form, args))
    except Exception:
        return None  # the listener does the same again and answers whatever went wrong


def add_action(app: AsyncApp, deps: Deps, action_id: str, job: str) -> None:
    """A button or select with `action_id`, run as the durable job `job`."""

    async def handle(ack: AsyncAck, body: dict[str, Any]) -> None:
        payload = {"request": ActionRequest.from_body(body).to_dict()}
        await _enqueue_then_ack(deps, ack, job, f"action:{delivery_id(body)}", payload)

    app.action(action_id)(handle)


def add_view_submission(
    app: AsyncApp, deps: Deps, callback_id: str, check: FormCheck, job: str
) -> None:
    """A modal's submission: checked in the ack (errors shown in the modal), then a job."""

    async def handle(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        try:
            args = await check(deps, view, body)
        except FormErrors as e:
            await ack(response_action="errors", errors=e.errors)
            return
        except UserError as e:
            # Slack shows a modal's errors under its input blocks only: under the first one.
            await ack(response_action="errors", errors={_first_input(view): str(e)})
            return
        payload = {"request": ViewRequest.from_body(body).to_dict(), "args": args}
        await _enqueue_then_ack(deps, ack, job, f"view:{delivery_id(body)}", payload)

    app.view(callback_id)(handle)


def _first_input(view: dict[str, Any]) -> str:
    """The block id of a modal's first input block, where a problem with the whole form shows."""
    for block in view.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    return "_"


def add_message_shortcut(app: AsyncApp, deps: Deps, callback_id: str, job: str) -> None:
    """A message shortcut, run as the durable job `job`."""

    async def handle(ack: AsyncAck, body: dict[str, Any]) -> None:
        payload = {"request": ShortcutRequest.from_body(body).to_dict()}
        await _enqueue_then_ack(deps, ack, job, f"shortcut:{delivery_id(body)}", payload)

    app.shortcut(callback_id)(handle)


async def _enqueue_then_ack(
    deps: Deps, ack: AsyncAck, job: str, job_id: str, payload: dict[str, Any]
) -> None:
    answer = await stored_ack(deps, job, job_id, payload)
    await ack(**answer) if answer else await ack()


# How long the ack may spend asking Redis again whether a job whose answer was lost is stored.
CONFIRM_AGAIN_SECONDS = 1.0


async def stored_ack(
    deps: Deps, job: str, job_id: str, payload: dict[str, Any]
) -> dict[str, Any] | None:
    """Store the job, then the ack's body: None (an empty ack) once Redis has it, new or a
    duplicate; a message saying why when Redis did not take it, or that nobody can tell yet.

    A job sent whose answer was lost (Redis closed the connection after reading it) may be
    stored; storing refuses a duplicate, so the ack simply asks again, and only says it cannot
    tell when Redis does not answer that either.
    """
    try:
        fresh = await deps.queue.enqueue(job, payload, job_id=job_id)
    except Unconfirmed as e:
        # The command may sit in Redis's socket buffer and still be stored: say so honestly.
        log.warning("Redis did not confirm storing %s within %g s", job, e.seconds)
        return _ephemeral(
            f":warning: opsloop's Redis did not confirm storing this request within "
            f"{e.seconds:g} s, so opsloop cannot tell yet whether it will run. If it was "
            "stored, its answer will appear here once Redis is back; wait for it before "
            "trying again."
        )
    except NotSent as e:
        # The request never reached Redis: say so now rather than acking work not stored.
        ref = outages.redis_failure(e, f"enqueueing {job}")
        return _ephemeral(
            ":x: opsloop could not store this request (its Redis is not answering, "
            f"reference `{ref}`). Nothing was done; try again in a minute."
        )
    except Exception as lost:
        log.info("Redis lost the answer to storing %s (%s); asking again", job, lost)
        try:
            fresh = await asyncio.wait_for(
                deps.queue.enqueue(job, payload, job_id=job_id), CONFIRM_AGAIN_SECONDS
            )
        except Exception as e:
            ref = outages.redis_failure(e, f"enqueueing {job} again")
            return _ephemeral(
                ":warning: opsloop lost its connection to Redis while storing this request "
                f"(reference `{ref}`), so it cannot tell whether it was stored. If it was, "
                "its answer will appear here once Redis is back; check the channel or "
                "`/ops audit` before trying again."
            )
    if outages.down:
        outages.recovered(outages.REDIS)
    if fresh:
        deps.metrics.enqueued(job).inc()
    else:
        deps.metrics.duplicate("slack").inc()
    return None


async def send_reply(deps: Deps, reply: Reply, response_url: str, channel: str, user: str) -> None:
    """Deliver a reply through the response_url, or as an ephemeral when there is none."""
    if response_url:
        await deps.slack.respond(
            response_url,
            reply.text,
            reply.blocks,
            in_channel=reply.in_channel,
            replace_original=reply.replace_original,
        )
    elif reply.in_channel:
        await deps.slack.post_message(channel, reply.text, reply.blocks)
    else:
        await deps.slack.post_ephemeral(channel, user, reply.text, reply.blocks)


async def _run_and_reply(
    job: JobContext,
    work: Callable[[], Awaitable[Reply | None]],
    where: str,
    response_url: str,
    channel: str,
    user: str,
) -> None:
    try:
        reply = await work()
    except ChannelBusy:
        raise  # not an error: the job runs again when the channel has a slot
    except REDIS_DOWN:
        raise  # the job runs again once Redis is back (bot/jobs.py); it may have done part
    except OutcomeUnknown as e:
        # Nobody can tell yet whether the thing was made: say so once, then look again later
        # (the job runs again and bot/once.py decides).
        log.warning("%s: %s (%s); looking again in %s s", where, e, e.__cause__, e.look_again_in)
        if e.first:
            await send_reply(job.deps, outcome_unknown(e), response_url, channel, user)
        if e.look_again_in is None:
            return
        raise Retry(defer=e.look_again_in) from e
    except UserError as e:
        reply = user_error(e)
    except IntegrationError as e:
        log.warning("%s: %s", where, e)
        reply = integration_error(e)
    except Exception as e:
        reply = unexpected_error(log_unexpected(e, where))
    if reply is not None:
        await send_reply(job.deps, reply, response_url, channel, user)


def slash_job(run: SlashRunner) -> JobFunction:
    """Wrap a command's work so that every outcome reaches the person who typed it."""

    async def job_fn(job: JobContext, payload: dict[str, Any]) -> None:
        request = SlashRequest.from_dict(payload["request"])
        args: dict[str, Any] = payload.get("args") or {}
        await _run_and_reply(
            job,
            lambda: run(job, request, args),
            f"{request.command} {request.text}".strip(),
            request.response_url,
            request.channel_id,
            request.user_id,
        )

    return job_fn


def view_job(run: ViewRunner) -> JobFunction:
    """Wrap a modal's work; the answer goes to the person as an ephemeral in `channel`."""

    async def job_fn(job: JobContext, payload: dict[str, Any]) -> None:
        request = ViewRequest.from_dict(payload["request"])
        args: dict[str, Any] = payload.get("args") or {}
        await _run_and_reply(
            job,
            lambda: run(job, request, args),
            f"view {request.callback_id}",
            "",
            str(args.get("channel", "")),
            request.user_id,
        )

    return job_fn


def shortcut_job(run: ShortcutRunner) -> JobFunction:
    """Wrap a message shortcut's work so that every outcome reaches the person."""

    async def job_fn(job: JobContext, payload: dict[str, Any]) -> None:
        request = ShortcutRequest.from_dict(payload["request"])
        await _run_and_reply(
            job,
            lambda: run(job, request),
            f"shortcut {request.callback_id}",
            request.response_url,
            request.channel_id,
            request.user_id,
        )

    return job_fn


def action_job(run: ActionRunner) -> JobFunction:
    """Wrap a click's work so that every outcome reaches the person who clicked."""

    async def job_fn(job: JobContext, payload: dict[str, Any]) -> None:
        request = ActionRequest.from_dict(payload["request"])
        await _run_and_reply(
            job,
            lambda: run(job, request),
            f"action {request.action_id}",
            request.response_url,
            request.channel_id,
            request.user_id,
        )

    return job_fn
