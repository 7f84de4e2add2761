"""Outages of the systems behind the bot, logged once each way: when one goes down, when it is back.

While Redis is away every request that needs it is refused (503 to a webhook, a message to the
person); a traceback for each would bury the one line that matters. The first failure logs a
WARNING with a reference, which every refusal during that outage shows; the next success logs
"Redis is back" at INFO. Per process: each replica says it once.
"""

from __future__ import annotations

import logging

from bot.errors import log_unexpected, new_reference
from bot.store import REDIS_DOWN

log = logging.getLogger(__name__)

REDIS = "Redis"
# How an expected Redis outage shows: refused or dropped connections, time-outs (the builtin
# TimeoutError is an OSError), and a command Redis did not confirm.
REDIS_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (*REDIS_DOWN, OSError)

# system -> the reference of its current outage. Callers on the ack path test `if down:`
# before calling recovered(), a module lookup rather than a call.
down: dict[str, str] = {}


def failed(system: str, error: BaseException) -> str:
    """Note that `system` failed; the first failure of an outage logs one WARNING line.

    Returns the outage's reference, to show to the person whose request was refused."""
    ref = down.get(system)
    if ref is None:
        ref = down[system] = new_reference()
        log.warning(
            "%s is down (%s: %s); requests that need it are refused until it is back "
            "(reference %s)",
            system,
            type(error).__name__,
            error,
            ref,
        )
    return ref


def recovered(system: str) -> None:
    """Note that `system` answered; after an outage, logs one INFO line."""
    if down.pop(system, None) is not None:
        log.info("%s is back", system)


def redis_failure(error: BaseException, where: str) -> str:
    """The reference to show for a request refused because of `error` from Redis: an outage
    is logged once (`failed`); anything else is unexpected, logged with its traceback."""
    if isinstance(error, REDIS_OUTAGE_ERRORS):
        return failed(REDIS, error)
    return log_unexpected(error, where)
