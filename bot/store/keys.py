"""Every Redis key the bot uses and its TTL, in one place.

Nothing outside `bot.store` writes to Redis. The job queue's own keys (`arq:job:*`,
`arq:result:*`, `arq:in-progress:*`, `arq:retry:*`) belong to arq; only the queue name is ours.
"""

from __future__ import annotations

PREFIX = "opsloop:"
QUEUE = PREFIX + "queue"
AUDIT = PREFIX + "audit"
WORKERS = PREFIX + "workers"

AUDIT_MAX_ENTRIES = 10_000
WORKER_ALIVE_SECONDS = 15
# A job that is not picked up within a day is dropped by arq; the same horizon as arq's default.
JOB_EXPIRES_MS = 86_400_000
EFFECT_TTL = 86_400  # as long as a job may be run again after a crash


def effect_key(key: str) -> str:
    """hash: one outside effect of a request (an issue, a pipeline, a message): `intent` before
    the call that makes it, `effect` once it is known (bot/store/effects.py)."""
    return f"{PREFIX}effects:{key}"


# -- Slack's limits (bot/store/slack.py) ------------------------------------------------------
# A message's newest wanted state is kept this long after its latest request, retried until Slack
# accepts it: as long as an alert or a build message matters.
PENDING_UPDATE_TTL = 86_400
# How long a flush job owns a message while it runs (one chat.update and its short waits); a
# deferred flush owns it for the deferral plus this.
FLUSH_CLAIM_SECONDS = 300


def channel_budget_key(channel: str) -> str:
    """The channel's GCRA: the time (ms) its next message slot frees up."""
    return f"{PREFIX}slack:budget:{channel}"


def slack_pause_key(method: str) -> str:
    """Present while a 429's Retry-After holds `method` for every replica; PX is the rest."""
    return f"{PREFIX}slack:pause:{method}"


def pending_update_key(channel: str, ts: str) -> str:
    """hash: payload (JSON) and version of the message's newest wanted state."""
    return f"{PREFIX}slack:pending:{channel}:{ts}"


def flush_marker_key(channel: str, ts: str) -> str:
    """Who flushes the message: 'queued' or the owning flush job's id."""
    return f"{PREFIX}slack:flushing:{channel}:{ts}"


# -- alert groups ------------------------------------------------------------------------------
ALERT_SEQ = PREFIX + "alerts:seq"  # INCR: the n of AL-<n>
ALERT_BY_KEY = PREFIX + "alerts:by_key"  # hash: Alertmanager groupKey -> AL-<n> of its open group
ALERTS_OPEN = PREFIX + "alerts:open"  # zset: AL-<n> -> first seen, for /alerts and polling
# A resolved group's record is kept this long for /ack answers and the audit trail.
RESOLVED_GROUP_TTL = 30 * 86400
# A group's (or a pipeline's, a storm's) lock lives this long unless its holder renews it: how
# long others wait when a holder dies. Others wait for it at most GROUP_LOCK_WAIT.
GROUP_LOCK_TTL = 15
GROUP_LOCK_WAIT = 60
STORM_WINDOW_SECONDS = 60
# A storm summary ends when no new group joined it for this long; the next storm gets a new one.
STORM_QUIET_SECONDS = 300


def alert_received_key(group_key_hash: str) -> str:
    """When the newest notification applied to a groupKey was received (resolved or not), so
    that an older one whose job ran late is not applied over it."""
    return f"{PREFIX}alerts:received:{group_key_hash}"


def alert_group_key(ref: str) -> str:
    return f"{PREFIX}alerts:group:{ref}"


def alert_lock_key(group_key_hash: str) -> str:
    return f"{PREFIX}lock:alerts:{group_key_hash}"


def storm_window_key(channel: str) -> str:
    """zset of new groups in the channel by arrival time, for the storm threshold."""
    return f"{PREFIX}alerts:new:{channel}"


def storm_key(channel: str) -> str:
    """hash: the channel's current storm: id, ts, started_at, last_member_at, counters."""
    return f"{PREFIX}alerts:storm:{channel}"


def storm_recent_key(channel: str) -> str:
    """list: the newest groups of the channel's current storm, for its summary message."""
    return f"{PREFIX}alerts:storm:{channel}:recent"


STORM_RECENT_SHOWN = 15


# -- tasks -------------------------------------------------------------------------------------
# Slack user -> GitLab username, learned by e-mail; a day, so renamed accounts are noticed.
IDENTITY_TTL = 86_400
# Where a task's Slack message is, so that Close and Assign update it in place.
TASK_MESSAGE_TTL = 90 * 86_400


def identity_key(slack_user: str, system: str) -> str:
    """A Slack user's account in one task tracker (a cache: older keys without the system
    simply expire)."""
    return f"{PREFIX}identity:{system.lower()}:{slack_user}"


def task_message_key(reference: str) -> str:
    """reference: GitLab's full reference, e.g. acme/web#12."""
    return f"{PREFIX}tasks:message:{reference}"


# -- roles -------------------------------------------------------------------------------------
USERGROUP_TTL = 600  # a Slack user group's members, as usergroups.users.list said


def usergroup_key(group: str) -> str:
    return f"{PREFIX}usergroup:{group}"


# -- builds ------------------------------------------------------------------------------------
PIPELINE_TTL = 30 * 86_400


def pipeline_key(project: str, pipeline_id: int) -> str:
    return f"{PREFIX}builds:pipeline:{project}:{pipeline_id}"


def pipeline_lock_key(project: str, pipeline_id: int) -> str:
    return f"{PREFIX}lock:builds:{project}:{pipeline_id}"


# -- deploys -----------------------------------------------------------------------------------
DEPLOY_SEQ = PREFIX + "deploys:seq"  # INCR: the n of D-<n>
# A service's latest rollout is kept while it runs and this long after, for status and clicks.
ROLLOUT_TTL = 90 * 86_400


def rollout_key(service: str) -> str:
    """The service's latest rollout (JSON); every change is a WATCH/MULTI transaction on it."""
    return f"{PREFIX}deploys:service:{service}"


def deploy_lease_key(service: str) -> str:
    """Held by the job changing the service's containers; lapses if that process dies."""
    return f"{PREFIX}lock:deploys:{service}"


def deploy_follow_key(service: str) -> str:
    """Held by the one job following the service's system between steps (deploys.follow)."""
    return f"{PREFIX}lock:deploys:follow:{service}"


def deploy_evidence_key(service: str) -> str:
    """Names the one chain of jobs measuring the service's canary (deploys.evidence)."""
    return f"{PREFIX}lock:deploys:evidence:{service}"


def deploy_deliver_lock_key(service: str) -> str:
    """Held while a rollout's thread replies, audit entries and message go out."""
    return f"{PREFIX}lock:deploys:deliver:{service}"


# -- delivery history (bot/store/history.py, for /ops dora and the weekly digest) --------------
# Both keys of a service live HISTORY_TTL after its last record, and their entries older than
# bot.feedback.history.KEEP_DAYS (or beyond MAX_PER_SERVICE) are trimmed as new ones come.
HISTORY_TTL = 400 * 86_400


def history_index_key(service: str) -> str:
    """zset: the service's record ids (D-<n> rollouts, AL-<n> incidents) by start time."""
    return f"{PREFIX}history:{service}:index"


def history_records_key(service: str) -> str:
    """hash: record id -> its JSON; `<D-n>+lead` -> the rollout's lead time."""
    return f"{PREFIX}history:{service}:records"


# The weekly digest (bot/feedback/service.py): one per slot (its UTC start), across replicas.
DIGEST_CLAIM_SECONDS = 300  # how long one run owns a slot's posting; a dead run's claim lapses
DIGEST_DONE_TTL = 30 * 86_400  # a slot posted is remembered this long


def digest_claim_key(slot: str) -> str:
    """SET NX by the run posting slot `slot`'s digest; lapses if that run dies."""
    return f"{PREFIX}feedback:digest:{slot}:claim"


def digest_done_key(slot: str) -> str:
    """Present once slot `slot`'s digest is posted: never posted again."""
    return f"{PREFIX}feedback:digest:{slot}:done"
