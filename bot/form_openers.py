"""Clicks and shortcuts that open a form (a modal) in their ack.

Slack honours an interaction's trigger_id for 3 seconds only, so views.open cannot wait for a
worker: the form opens in the ack path. Opening a form decides nothing (the submission is the
durable job, bot/durable.py `add_view_submission`); only the answer to a form that could not
open is stored as a job, because neither a click's nor a shortcut's ack can carry a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.deps import Deps
from bot.durable import SLACK_INLINE_TIMEOUT, send_reply, stored_ack
from bot.errors import IntegrationError, UserError, log_unexpected
from bot.jobs import JobContext, JobFunction
from bot.replies import Reply, unexpected_error, user_error
from bot.slack_requests import ActionRequest, ShortcutRequest, delivery_id

# Opens the form with the body's trigger_id; raises UserError or IntegrationError when it cannot.
FormOpener = Callable[[Deps, dict[str, Any]], Awaitable[None]]


def add_form_action(
    app: AsyncApp, deps: Deps, action_id: str, opener: FormOpener, answer_job: str
) -> None:
    """A button that opens a form in its ack; when it cannot, the durable job `answer_job`
    (`answer_job_fn`) tells the person why."""
    app.action(action_id)(_handler(deps, opener, answer_job, "action", ActionRequest.from_body))


def add_form_shortcut(
    app: AsyncApp, deps: Deps, callback_id: str, opener: FormOpener, answer_job: str
) -> None:
    """A message shortcut that opens a form in its ack, as add_form_action."""
    handle = _handler(deps, opener, answer_job, "shortcut", ShortcutRequest.from_body)
    app.shortcut(callback_id)(handle)


def _handler(
    deps: Deps,
    opener: FormOpener,
    answer_job: str,
    kind: str,
    read: Callable[[dict[str, Any]], ActionRequest | ShortcutRequest],
) -> Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]:
    async def handle(ack: AsyncAck, body: dict[str, Any]) -> None:
        request = read(body)
        where = (request.response_url, request.channel_id, request.user_id)
        job_id = f"{kind}:{delivery_id(body)}"
        await _open_or_answer(deps, ack, body, opener, answer_job, job_id, where)

    return handle


async def _open_or_answer(
    deps: Deps,
    ack: AsyncAck,
    body: dict[str, Any],
    opener: FormOpener,
    answer_job: str,
    job_id: str,
    where: tuple[str, str, str],
) -> None:
    try:
        await asyncio.wait_for(opener(deps, body), SLACK_INLINE_TIMEOUT)
        await ack()
        return
    except UserError as e:
        reply = user_error(e)
    except IntegrationError as e:
        reply = Reply(text=f":x: {e.system}: {e.message}; the form did not open, try again.")
    except TimeoutError:
        reply = Reply(text=":x: Slack did not open the form in time; try again.")
    except Exception as e:  # a bug must not cost the ack
        reply = unexpected_error(log_unexpected(e, f"opening a form ({answer_job})"))
    response_url, channel, user = where
    payload = {"text": reply.text, "response_url": response_url, "channel": channel, "user": user}
    answer = await stored_ack(deps, answer_job, job_id, payload)
    await ack(**answer) if answer else await ack()


def answer_job_fn() -> JobFunction:
    """The job behind add_form_action and add_form_shortcut: tells the person why no form
    opened, through the interaction's response_url."""

    async def job_fn(job: JobContext, payload: dict[str, Any]) -> None:
        await send_reply(
            job.deps,
            Reply(text=str(payload.get("text", ""))),
            str(payload.get("response_url", "")),
            str(payload.get("channel", "")),
            str(payload.get("user", "")),
        )

    return job_fn
