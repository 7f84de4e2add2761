"""Durable jobs on arq: everything beyond the 3-second ack runs here.

Why arq: it is maintained, asyncio-native and built on redis-py like the rest of the bot. A job
stays in the queue until a worker finishes it; a worker marks the job in progress with a key that
expires after `job_timeout + 10 s`, so when a worker is killed mid-job another worker runs the
job again once that key has expired. Jobs are therefore written to be safe to run twice.
Deferred jobs (run at time T) are arq's scored queue entries, used for timeouts and escalations.
Jobs are put on the queue by bot.job_queue, which the web process needs without this module.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arq.worker import Retry, Worker, func
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import outages
from bot.errors import log_unexpected
from bot.job_queue import json_deserializer, json_serializer
from bot.job_scope import ChannelBusy, job_context
from bot.store import REDIS_DOWN
from bot.store.keys import QUEUE

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)

RESULT_KEEP_SECONDS = 3600  # also how long a delivery id is remembered after its job ran
HEARTBEAT_SECONDS = 5
RECONNECT_SECONDS = 1.0
REDIS_AWAY_RETRY_SECONDS = 5.0
TIMED_OUT_TRIES = 5  # a job that runs out of time more often than this is failed, not retried


@dataclass(frozen=True)
class JobContext:
    """What a job function gets besides its payload."""

    deps: Deps
    job_id: str
    attempt: int


JobFunction = Callable[[JobContext, dict[str, Any]], Awaitable[None]]


class JobRegistry:
    """Job functions by name; command families add theirs in `register`."""

    def __init__(self) -> None:
        self._functions: dict[str, JobFunction] = {}
        self._long: set[str] = set()
        self.on_worker_start: list[tuple[str, Callable[[Deps], bool]]] = []

    def add(self, name: str, fn: JobFunction, *, long: bool = False) -> None:
        """`long`: the job waits on an engine (a deploy step), so its time limit is the
        deploy step timeout plus the usual job timeout."""
        if name in self._functions and self._functions[name] is not fn:
            raise ValueError(f"job {name!r} is registered twice")
        self._functions[name] = fn
        if long:
            self._long.add(name)

    def run_on_worker_start(self, name: str, when: Callable[[Deps], bool]) -> None:
        """Queue job `name` (payload {}) whenever a worker starts and `when(deps)` holds: work
        that a restart must resume."""
        self.on_worker_start.append((name, when))

    def is_long(self, name: str) -> bool:
        return name in self._long

    def job(self, name: str) -> Callable[[JobFunction], JobFunction]:
        """Decorator form of `add`."""

        def decorate(fn: JobFunction) -> JobFunction:
            self.add(name, fn)
            return fn

        return decorate

    def names(self) -> list[str]:
        return sorted(self._functions)

    def items(self) -> list[tuple[str, JobFunction]]:
        return sorted(self._functions.items())


def _arq_function(name: str, fn: JobFunction, timeout: float) -> Any:
    # arq fails a job that outlives its time limit, for good; a job here stops itself a little
    # earlier and runs again instead (it may: every job is safe to run twice), so that a job
    # held up by an outage (a lock a killed worker held, Redis restarting) is not lost.
    limit = timeout - min(1.0, timeout / 10)

    async def run(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
        deps: Deps = ctx["deps"]
        job = JobContext(deps=deps, job_id=str(ctx["job_id"]), attempt=int(ctx["job_try"]))
        deps.metrics.jobs_running.inc()
        deadline = asyncio.timeout(limit)
        try:
            with job_context():
                async with deadline:
                    await fn(job, payload)
            return "ok"
        except ChannelBusy as e:
            # Slack's budget for a channel is spent: come back when there is a slot, and let
            # other jobs use this worker meanwhile. Safe, since jobs may run twice.
            raise Retry(defer=e.wait) from e
        except (Retry, asyncio.CancelledError):
            raise
        except TimeoutError as e:
            if not deadline.expired() or job.attempt > TIMED_OUT_TRIES:
                deps.metrics.jobs_failed.labels(name).inc()
                return "failed " + log_unexpected(e, f"job {name}")
            log.warning("job %s ran out of time (try %d); it runs again", name, job.attempt)
            raise Retry(defer=REDIS_AWAY_RETRY_SECONDS) from e
        except REDIS_DOWN as e:
            # Redis went away mid-job: nothing failed, the job is not done. It runs again
            # (every job may), and what it made outside is found again (bot/once.py).
            log.warning("job %s met Redis away (%s); it runs again", name, type(e).__name__)
            raise Retry(defer=REDIS_AWAY_RETRY_SECONDS) from e
        except Exception as e:
            # A job that raises is a bug or an outage the job did not turn into a message; it
            # is logged under a reference and counted, and not retried blindly.
            deps.metrics.jobs_failed.labels(name).inc()
            return "failed " + log_unexpected(e, f"job {name}")
        finally:
            deps.metrics.jobs_running.dec()

    run.__qualname__ = name
    return func(run, name=name, keep_result=RESULT_KEEP_SECONDS, timeout=timeout)


def build_worker(deps: Deps, registry: JobRegistry, *, max_jobs: int = 20) -> Worker:
    """An arq worker that runs the registry's jobs with `deps` in reach."""
    settings = deps.settings
    long_timeout = settings.deploy_step_timeout + settings.job_timeout
    worker = Worker(
        functions=[
            _arq_function(n, f, long_timeout if registry.is_long(n) else settings.job_timeout)
            for n, f in registry.items()
        ],
        redis_pool=deps.store.redis,
        queue_name=QUEUE,
        ctx={"deps": deps},
        job_serializer=json_serializer,
        job_deserializer=json_deserializer,
        handle_signals=False,
        poll_delay=0.05,
        max_jobs=max_jobs,
        job_timeout=deps.settings.job_timeout,
        keep_result=RESULT_KEEP_SECONDS,
        # Only Retry re-runs a job (errors are caught above); budget deferrals in a long storm
        # may take many turns, and must not end in arq giving the job up.
        max_tries=10_000,
        log_results=False,
    )
    # arq marks a running job with a key that lives for the longest job timeout + 10 s; another
    # worker runs the job again once it is gone. One long job type must not make every killed
    # job wait that long: the mark lives for the usual timeout, and a long job keeps its own
    # mark alive while it runs (`keep_alive`).
    worker.in_progress_timeout_s = settings.job_timeout + 10
    return worker


@asynccontextmanager
async def keep_alive(job: JobContext) -> AsyncIterator[None]:
    """Renew the job's in-progress mark while the block runs, so that no other worker starts
    it again; if this process dies, the mark lapses as usual and another worker takes over."""
    ttl = job.deps.settings.job_timeout + 10

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                await job.deps.store.extend_in_progress(job.job_id, ttl)
            except Exception as e:  # Redis away: the job goes on; at worst it runs twice
                log.warning("could not renew job %s: %s", job.job_id, type(e).__name__)

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


class WorkerRunner:
    """Runs an arq worker plus a heartbeat that `/ops status` counts."""

    def __init__(self, deps: Deps, registry: JobRegistry) -> None:
        self.deps = deps
        self.registry = registry
        self.worker = build_worker(deps, registry)
        self.worker_id = uuid.uuid4().hex[:12]
        self._tasks: list[asyncio.Task[None]] = []

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.deps.store.worker_heartbeat(self.worker_id)
                if outages.down:
                    outages.recovered(outages.REDIS)
            except Exception as e:  # Redis away: keep trying, the worker itself will wait too
                outages.failed(outages.REDIS, e)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _run(self) -> None:
        # arq's loop ends on the first Redis connection error; a worker must outlive an outage
        # (the jobs wait in Redis), so it starts polling again once Redis answers.
        while True:
            try:
                await self.worker.main()
                return
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                outages.failed(outages.REDIS, e)  # one line an outage, not one a second
                await asyncio.sleep(RECONNECT_SECONDS)

    async def start(self) -> None:
        for name, when in self.registry.on_worker_start:
            if not when(self.deps):
                continue
            try:
                await self.deps.queue.enqueue(name, {}, job_id=f"{name}:{self.worker_id}")
            except Exception as e:  # Redis away: the worker waits for it; nothing to resume now
                log.warning("could not queue %s at start: %s", name, type(e).__name__)
        self._tasks = [
            asyncio.create_task(self._run(), name="arq-worker"),
            asyncio.create_task(self._heartbeat(), name="worker-heartbeat"),
        ]

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks)

    async def stop(self) -> None:
        for task in self._tasks[1:]:
            task.cancel()
        try:
            await self.deps.store.worker_gone(self.worker_id)
        except Exception:
            log.debug("could not remove the worker heartbeat", exc_info=True)
        # Cancelled jobs go back on the queue (arq's retry_jobs), so a stop loses nothing.
        # arq closes the Redis pool it was given: stop the worker last.
        try:
            await self.worker.close()
        except asyncio.CancelledError:
            # arq gathers its cancelled job tasks without return_exceptions; that cancellation
            # is theirs, not ours, unless this task itself is being cancelled.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            await self.deps.store.close()
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            # Stopping while Redis is away: arq could not tidy its health key; nothing is lost.
            log.warning("worker stopped while Redis was away (%s)", type(e).__name__)
            await self.deps.store.close()
        self._tasks[0].cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
