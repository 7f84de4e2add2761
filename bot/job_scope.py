"""Whether code runs inside a durable job, and how it asks to run again later.

A leaf module, so that the Slack client (which raises ChannelBusy) and the job runner (which
marks job code and turns ChannelBusy into a later retry) need not import each other.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_in_job: contextvars.ContextVar[bool] = contextvars.ContextVar("opsloop_in_job", default=False)


class ChannelBusy(Exception):
    """Slack cannot take the call soon (the channel's budget is spent, or a 429 paused the
    method, or Slack is away); run the job again in `wait` seconds."""

    def __init__(self, what: str, wait: float) -> None:
        super().__init__(f"{what}: no turn for {wait:.1f}s")
        self.wait = wait


@contextlib.contextmanager
def job_context() -> Iterator[None]:
    """Mark the code inside as a job's: long waits for Slack become ChannelBusy."""
    token = _in_job.set(True)
    try:
        yield
    finally:
        _in_job.reset(token)


def in_job() -> bool:
    """True inside `job_context()`: a wait too long to hold a worker raises ChannelBusy."""
    return _in_job.get()
