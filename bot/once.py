"""Making something outside exactly once: an issue, a pipeline, a Slack message.

Every job may run twice or die at any line, so a call that makes something follows one
protocol (the ledger is bot/store/effects.py):

1. An effect already recorded is used as it is.
2. An intent without an effect means an earlier run may have made the thing: look for it by
   the request's marker (which the call carried into the other system). Found: record it.
   Not found while the earlier call may still be under way in the other system (until
   `settle_after` seconds after it was sent): say that nobody can tell yet, and look again
   later. Never match by title or by who made it: two people may ask for the same thing.
3. Otherwise record the intent, make the call (which carries the marker), record the effect.
   The intent is recorded by the maker itself, through the `intend` it is given, right before
   the request that may make the thing: what comes first (reading who the assignee is,
   waiting for Slack's budget) cannot make anything, and a failure there leaves no intent. A
   call that fails with an answer (GitLab refused it) made nothing: its intent is withdrawn,
   so that a re-run makes it at once.

A call that gets no answer in time raises `OutcomeUnknown` from its adapter, after looking for
its own marker for as long as its time allows ("look, don't resend"); the job is then run again
later (bot/durable.py), when step 2 decides.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot.errors import IntegrationError, OutcomeUnknown
from bot.store.effects import EffectLedger

T = TypeVar("T")
# Records the intent; a maker awaits it right before the request that may make the thing.
Intend = Callable[[], Awaitable[None]]

# How often to look again while the other system cannot be asked (it fails or does not answer).
LOOK_AGAIN_SECONDS = 30.0
# After this long without being able to tell, the job stops looking and says where to check.
GIVE_UP_SECONDS = 3600.0


def marker(key: str) -> str:
    """The word a request leaves in the other system (an issue's description, a pipeline
    variable, a Slack message's metadata) so that a re-run can find what it made: derived from
    the request's key, so every run of it leaves the same one."""
    return "opsloop" + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Effect(Generic[T]):
    """How one kind of effect is made, found again, and kept in the ledger."""

    system: str  # who makes it, for messages: "GitLab", "Slack"
    what: str  # words for "it was made": "the issue was filed"
    check: str  # where a person can see for themselves: "`/task list`"
    make: Callable[[Intend], Awaitable[T]]  # the call, carrying the request's marker
    find: Callable[[float], Awaitable[T | None]]  # look by marker, given when the call was sent
    record: Callable[[T], dict[str, Any]]  # what the ledger keeps of it
    restore: Callable[[dict[str, Any]], Awaitable[T]]  # the thing again, from what was kept


async def make_once(
    ledger: EffectLedger,
    key: str,
    effect: Effect[T],
    *,
    settle_after: float,
    intent: dict[str, Any] | None = None,
) -> T:
    """The thing `effect` makes for the request `key`: made now, or found from an earlier run."""
    entry = await ledger.load(key)
    if entry.effect is not None:
        return await effect.restore(entry.effect)
    first: float | None = None
    if entry.intent_at is not None:
        first = entry.first_intent_at or entry.intent_at
        found = await _made_earlier(ledger, key, effect, entry.intent_at, first, settle_after)
        if found is not None:
            return found
    sent_at: float | None = None

    async def intend() -> None:
        nonlocal sent_at
        if sent_at is None:
            sent_at = await ledger.intend(key, intent, first=first)

    try:
        made = await effect.make(intend)
    except OutcomeUnknown:
        sent = sent_at or time.time()
        wait = max(sent + settle_after - time.time(), 1.0)
        raise await _unknown(ledger, key, effect, first or sent, wait) from None
    except Exception:
        # Any other failure is an answer: nothing was made (the adapter looked for it after
        # an answer that could have hidden it). A crash, or a job cancelled at its time
        # limit (CancelledError), never gets here, so its intent stays.
        if sent_at is not None:
            await ledger.withdraw(key)
        raise
    await ledger.done(key, effect.record(made))
    return made


async def _made_earlier(
    ledger: EffectLedger,
    key: str,
    effect: Effect[T],
    sent_at: float,
    first: float,
    settle_after: float,
) -> T | None:
    """What an earlier run that set out to make it made, found by its marker; None when it
    made nothing (it is safe to make it now); OutcomeUnknown while nobody can tell yet."""
    try:
        found = await effect.find(sent_at)
    except OutcomeUnknown:
        raise await _unknown(ledger, key, effect, first, LOOK_AGAIN_SECONDS) from None
    except IntegrationError as e:
        if not e.retryable:
            raise
        raise await _unknown(ledger, key, effect, first, LOOK_AGAIN_SECONDS) from e
    if found is not None:
        await ledger.done(key, effect.record(found))
        return found
    wait = sent_at + settle_after - time.time()
    if wait > 0:  # the earlier call may still be making it
        raise await _unknown(ledger, key, effect, first, wait)
    return None


async def _unknown(
    ledger: EffectLedger, key: str, effect: Effect[Any], first: float, wait: float
) -> IntegrationError:
    """What to raise when nobody can tell yet whether the effect happened."""
    if time.time() - first > GIVE_UP_SECONDS:
        return IntegrationError(
            effect.system,
            f"{effect.system} could not be asked for an hour, so opsloop cannot tell whether "
            f"{effect.what}; check {effect.check} before trying again",
        )
    return OutcomeUnknown(
        effect.system,
        f"{effect.system} did not confirm in time, so opsloop cannot tell yet whether "
        f"{effect.what}",
        look_again_in=wait,
        first=await ledger.first_time(key, "told-unknown"),
        what=effect.what,
        check=effect.check,
    )
