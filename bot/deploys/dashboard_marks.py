"""Each deploy step marked on the dashboards (a metrics system's annotations), once.

A step's rollout change queues ANNOTATE_JOB (bot/deploys/service.py, `_after_change`); the job
adds one mark per rollout, state and step, however often it runs: bot/once.py keeps its intent
and effect, and the mark carries the step's marker so that a re-run finds it. A metrics system
that is away delays the mark (the job runs again), never the deploy.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from arq.worker import Retry

from bot.deploys.ports import Annotator
from bot.deploys.rollout import AWAITING, COMPLETE, ROLLED_BACK, Rollout
from bot.deps import Deps
from bot.errors import IntegrationError, OutcomeUnknown
from bot.once import Effect, Intend, make_once, marker

log = logging.getLogger(__name__)

ANNOTATE_JOB = "deploys.annotate"
MARKED = frozenset({AWAITING, COMPLETE, ROLLED_BACK})  # a step landed, or the rollout ended
TRIES = 6  # a metrics system away for longer loses the mark (logged), never the deploy


def _text(r: Rollout) -> str:
    if r.state == COMPLETE:
        return f"{r.service} {r.version} deployed ({r.id}, 100%)"
    if r.state == ROLLED_BACK:
        return f"{r.service} {r.version} rolled back ({r.id})"
    return f"{r.service} {r.version}: step {r.step + 1} of {len(r.percents)}, {r.percent}% ({r.id})"


async def annotate_later(deps: Deps, r: Rollout) -> None:
    """Queue the mark of the step `r` just reached (at most one job per rollout, state, step)."""
    if deps.annotator is None or r.state not in MARKED:
        return
    key = f"{r.id}:{r.state}:{r.step}"
    payload = {"service": r.service, "version": r.version, "text": _text(r), "at": time.time()}
    await deps.queue.enqueue(ANNOTATE_JOB, {**payload, "key": key}, job_id=f"{ANNOTATE_JOB}:{key}")


async def annotate(deps: Deps, payload: dict[str, Any], attempt: int) -> None:
    """The job: add the step's mark once."""
    annotator = deps.annotator
    if annotator is None:
        return
    key = str(payload["key"])
    mark = marker(f"annotate:{key}")

    async def make(intend: Intend) -> str:
        return await _annotate(annotator, payload, mark, intend)

    async def find(sent_at: float) -> str | None:
        return await annotator.find_annotation(mark)

    async def restore(kept: dict[str, Any]) -> str:
        return str(kept["id"])

    effect = Effect(
        system=annotator.system,
        what="the deploy's annotation was added",
        check=f"the dashboards in {annotator.system}",
        make=make,
        find=find,
        record=lambda made: {"id": made},
        restore=restore,
    )
    try:
        await make_once(
            deps.store.effects,
            f"annotate:{key}",
            effect,
            settle_after=deps.settings.settle_seconds,
        )
    except OutcomeUnknown as e:
        raise Retry(defer=max(e.look_again_in or 1.0, 1.0)) from e
    except IntegrationError as e:
        if attempt >= TRIES:
            log.warning("%s: no annotation for %s: %s", annotator.system, key, e.message)
            return
        raise Retry(defer=min(5 * attempt, 60)) from e


async def _annotate(
    annotator: Annotator, payload: dict[str, Any], mark: str, intend: Intend
) -> str:
    return await annotator.annotate(
        str(payload["service"]),
        str(payload["version"]),
        str(payload["text"]),
        float(payload["at"]),
        marker=mark,
        intend=intend,
    )
