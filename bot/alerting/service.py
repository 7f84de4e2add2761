"""What happens to alert groups: notifications, acknowledgements, silences, escalation, and
noticing resolution that Alertmanager does not report.

Every change to a group happens under its lock, and is saved before any Slack call, so the stored
state is complete even while Slack lags behind. Thread replies wait in the group's outbox until
Slack took them: a failed send is retried by the job, never lost and never sent twice.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from datetime import timedelta
from typing import Any

from arq.worker import Retry

from bot.alerting import last_change, messages
from bot.alerting.groups import AlertGroup, Outgoing, merge, resolve_all
from bot.alerting.payload import parse_notification
from bot.alerting.ports import Matcher, Silence, Silencer
from bot.alerting.routing import route_for
from bot.deploys.rollout import Rollout
from bot.deps import Deps
from bot.durations import format_duration
from bot.errors import IntegrationError, OutcomeUnknown, UserError
from bot.feedback.incidents import incidents_of
from bot.replies import escape
from bot.roles import approves_anything
from bot.slack_once import post_once
from bot.store.alerts import AlertStore

log = logging.getLogger(__name__)

APPLIED_KEPT = 20  # notifications a group remembers having applied

NOTIFY_JOB = "alerts.notify"
ESCALATE_JOB = "alerts.escalate"
ESCALATE_STORM_JOB = "alerts.escalate_storm"
POLL_JOB = "alerts.poll"
STORM_RENDER_JOB = "alerts.storm_render"


def matchers(group: AlertGroup) -> list[Matcher]:
    """The labels every alert of the group shares: what a silence or a query needs."""
    labels = group.group_labels or group.common_labels
    found = [Matcher(name=k, value=v) for k, v in sorted(labels.items())]
    # And what its source asked for (e.g. Grafana's alert rule UID, kept off its labels).
    return found + [
        Matcher(m["name"], m["value"], bool(m.get("isRegex")), bool(m.get("isEqual", True)))
        for m in group.silence_matchers
    ]


def _who(user_id: str, user_name: str) -> str:
    return f"{user_name or user_id} (Slack {user_id}) via opsloop"


def _forget_silence(group: AlertGroup) -> None:
    group.silence_id, group.silence_until, group.silenced_by = None, None, None
    group.silence_key = None


class AlertService:
    """The alert capability, over the store, Slack and (when configured) Alertmanager."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.groups: AlertStore = deps.store.alerts

    # -- notifications ---------------------------------------------------------------------

    async def notify(
        self, data: dict[str, Any], received_at: float, attempt: int = 1, *, key: str = ""
    ) -> None:
        """Apply one Alertmanager notification (a job; safe to run again). `key` is its
        delivery's identity: a notification applied already is only delivered again, so that
        a job re-run after the group resolved does not open a new incident."""
        notification = parse_notification(data)
        now = time.time()
        async with self.groups.locked(notification.groupKey):
            group = await self._applied_already(key)
            if group is not None:
                await self._deliver_or_retry(group, attempt)
            else:
                group = await self._apply(notification, received_at, now, key)
                if group is None:
                    return  # an unchanged repeat adds nothing
                await self._deliver_or_retry(group, attempt)
        if group.storm_id and group.channel:
            await self._schedule_storm_render(group.channel)

    async def _applied_already(self, key: str) -> AlertGroup | None:
        if not key:
            return None
        ref = (await self.deps.store.effects.load(f"{key}:notify")).intent.get("ref")
        group = await self.groups.load(str(ref)) if ref else None
        return group if group is not None and key in group.applied else None

    async def _apply(
        self, notification: Any, received_at: float, now: float, key: str
    ) -> AlertGroup | None:
        """Merge the notification into its group (a new one when none is open) and save it;
        None when it changed nothing, or when it is older than one applied already: each
        notification carries the group's whole state, so a late one (its job deferred behind a
        newer one's) would only undo the newer state, or reopen a group that has resolved."""
        if received_at < await self.groups.newest_received(notification.groupKey):
            log.info("%s: a notification older than the group's last one; left out", key or "?")
            return None
        ref = await self.groups.ref_for(notification.groupKey)
        group = await self.groups.load(ref) if ref else None
        if group is None or not group.is_open:
            group = await self._new_group(notification, received_at)
            merge(group, notification, now)
            await self._place(group)
            await self._save_applied(group, key, received_at)
            if group.escalate_after:
                # Counted from the first notification the bot received, not from when it fired.
                run_at = group.first_seen + group.escalate_after
                await self._schedule_escalation(group, 1, run_at)
            return group
        change = merge(group, notification, now)
        if not change.empty and not group.storm_id:
            group.outbox.append(Outgoing(messages.change_reply(group, change)))
        if change.group_resolved:
            await self._on_resolved(group)
        if change.empty and not group.outbox and group.message_ts:
            return None
        await self._save_applied(group, key, received_at)
        return group

    async def _save_applied(self, group: AlertGroup, key: str, received_at: float) -> None:
        if key:
            # Where the notification went, before the group that records it is saved.
            await self.deps.store.effects.intend(f"{key}:notify", {"ref": group.ref})
            group.applied = [*group.applied, key][-APPLIED_KEPT:]
        await self.groups.save(group)
        await self.groups.note_received(group.group_key, received_at)

    async def _new_group(self, notification: Any, received_at: float) -> AlertGroup:
        labels = {**notification.groupLabels, **notification.commonLabels}
        route = route_for(self.deps.config.alerts, labels)
        ref = await self.groups.new_ref(notification.groupKey)
        group = AlertGroup(ref=ref, group_key=notification.groupKey, first_seen=received_at)
        if route is not None:
            group.channel = route.channel
            if route.escalate_after is not None:
                group.escalate_after = route.escalate_after.total_seconds()
                group.escalate_to = list(route.escalate_to)
        else:
            log.warning("%s matches no alerts route; it is tracked but not posted", ref)
        return group

    async def _place(self, group: AlertGroup) -> None:
        """A new open group gets its own message, unless its channel is in a storm."""
        if group.channel is None or not group.is_open:
            return
        count = await self.groups.count_new_group(group.channel, group.ref)
        if count > self.deps.settings.storm_threshold:
            group.storm_id = await self.groups.join_storm(
                group.channel, uuid.uuid4().hex[:12], messages.storm_line(group)
            )

    async def _on_resolved(self, group: AlertGroup) -> None:
        await self.deps.store.audit(
            "alertmanager", "alert.resolved", group.ref, {"title": group.title}
        )
        if group.storm_id and group.channel:
            await self.groups.count_in_storm(group.channel, group.storm_id, "resolved")
        try:
            await self._unsilence(group)
        except IntegrationError as e:
            log.warning("%s: could not expire silence %s: %s", group.ref, group.silence_id, e)
            _forget_silence(group)

    # -- Slack -----------------------------------------------------------------------------

    async def _deliver_or_retry(self, group: AlertGroup, attempt: int) -> None:
        try:
            await self.deliver(group)
        except IntegrationError as e:
            # The state is saved; only Slack is behind. Run the job again a little later.
            log.warning("%s: Slack delivery failed (%s); retrying", group.ref, e)
            raise Retry(defer=min(5 * attempt, 60)) from e

    async def deliver(self, group: AlertGroup, *, tell_rollouts: bool = True) -> None:
        """Bring Slack up to date with the group (call under its lock). `tell_rollouts`: the
        rollout messages of the services it is about are rendered again too (off when a
        rollout's change asked for this render: bot/alerting/last_change.py)."""
        await self._record_incident(group)
        changes = await self._last_changes(group)
        if group.channel is None or group.storm_id:
            if group.outbox:
                group.outbox.clear()
                await self.groups.save(group)
            if tell_rollouts:
                await self._tell_rollouts(group, changes)
            return
        tasks = self.deps.tasks is not None
        now = time.time()
        text, blocks = messages.parent_message(group, now, tasks=tasks, changes=changes)
        slack = self.deps.slack
        if group.message_ts is None:
            # Once per group, even if this job dies between posting and saving (bot/once.py).
            settle = self.deps.settings.settle_seconds
            key = f"alerts:{group.ref}:parent"
            posted = await post_once(slack, key, group.channel, text, blocks, settle_after=settle)
            group.message_ts = posted.ts
            await self.groups.save(group)
        else:
            await slack.request_update(group.channel, group.message_ts, text, blocks)
        while group.outbox:
            item = group.outbox[0]
            await slack.post_message(
                group.channel, item.text, thread_ts=group.message_ts, reply_broadcast=item.broadcast
            )
            group.outbox.pop(0)
            await self.groups.save(group)
        if tell_rollouts:
            await self._tell_rollouts(group, changes)

    # -- the last change (bot/alerting/last_change.py) -------------------------------------

    async def _last_changes(self, group: AlertGroup) -> list[Rollout]:
        """The latest rollout of each service the group is about (one read of Redis)."""
        labels = {n: s.alert_labels for n, s in self.deps.config.services.items()}
        names = last_change.matching_services(group, labels)
        return await self.deps.store.deploys.load_many(names) if names else []

    async def _tell_rollouts(self, group: AlertGroup, changes: list[Rollout]) -> None:
        """Render again the messages of the rollouts this group bears on: active ones, or
        those it started after. At most one render per service and second, however many
        groups change in it (a storm)."""
        second = math.floor(time.time()) + 1
        for r in changes:
            if r.ts is None or not (r.active or group.first_seen >= r.started_at):
                continue
            await self.deps.queue.enqueue(
                last_change.ROLLOUT_RENDER_JOB,
                {"service": r.service},
                job_id=f"{last_change.ROLLOUT_RENDER_JOB}:{r.service}:{second}",
                run_at=second,
            )

    async def refresh(self, ref: str) -> None:
        """Render the group's message again because a rollout it shows moved (a job)."""
        group = await self.groups.load(ref)
        if group is None or group.message_ts is None or group.storm_id:
            return
        async with self.groups.locked(group.group_key):
            group = await self.groups.load(ref)
            if group is not None:
                await self.deliver(group, tell_rollouts=False)

    async def reply_once(self, ref: str, text: str, *, key: str) -> None:
        """A reply in the group's thread for request `key`, sent once however often the
        request runs: the key is kept with the group (among `applied`) in the same save as
        the reply it stands for."""
        group = await self.groups.load(ref)
        if group is None:
            return
        async with self.groups.locked(group.group_key):
            group = await self.groups.load(ref)
            if group is None:
                return
            if key not in group.applied:
                group.outbox.append(Outgoing(text))
                group.applied = [*group.applied, key][-APPLIED_KEPT:]
                await self.groups.save(group)
            await self.deliver(group, tell_rollouts=False)

    async def _schedule_storm_render(self, channel: str) -> None:
        """At most one summary render per channel and second, run after that second's changes.

        In a storm every notification changes the summary; one render per change would fill the
        queue with jobs that all wait for the same message."""
        second = math.floor(time.time()) + 1
        await self.deps.queue.enqueue(
            STORM_RENDER_JOB,
            {"channel": channel},
            job_id=f"{STORM_RENDER_JOB}:{channel}:{second}",
            run_at=second,
        )

    async def render_storm(self, channel: str) -> None:
        """Post the channel's storm summary once, then keep it up to date (coalesced)."""
        async with self.groups.storm_locked(channel):
            storm = await self.groups.storm(channel)
            if storm is None:
                return
            threshold = self.deps.settings.storm_threshold
            text, blocks = messages.storm_message(storm, channel, threshold)
            if storm.ts is None:
                posted = await post_once(
                    self.deps.slack,
                    f"alerts:storm:{channel}:{storm.id}",
                    channel,
                    text,
                    blocks,
                    settle_after=self.deps.settings.settle_seconds,
                )
                await self.groups.set_storm_ts(channel, storm.id, posted.ts)
                await self._schedule_storm_escalation(channel, storm.id, storm.started_at, 1)
            else:
                await self.deps.slack.request_update(channel, storm.ts, text, blocks)

    # -- people ----------------------------------------------------------------------------

    async def _load_open(self, ref: str) -> AlertGroup:
        group = await self.groups.load(ref)
        if group is None:
            raise UserError(
                f"`{ref}` is not an alert group opsloop knows.", "Type `/alerts` to list open ones."
            )
        return group

    async def acknowledge(
        self, ref: str, user_id: str, user_name: str, note: str = "", *, key: str
    ) -> tuple[bool, str]:
        """Record who is on it and silence the group in Alertmanager.

        `key` identifies the request (its job id): a re-run of the same request makes no second
        silence and answers as the first run did. Returns whether this request acknowledged it
        (False: someone already had) and the answer for the person."""
        group = await self._load_open(ref)
        async with self.groups.locked(group.group_key):
            group = await self._load_open(ref)
            if not group.is_open:
                raise UserError(
                    f"{ref} *{escape(group.title)}* is already resolved; nothing to acknowledge."
                )
            if group.acked_by and group.ack_key == key:
                await self.deliver(group)  # the first run may have died before Slack took it
                return True, messages.ack_confirmation(group, None)
            if group.acked_by:
                return False, messages.already_acked(group)
            problem = None
            if not group.silence_active(time.time()):  # a live silence (a button's) is kept
                # The silence first: its intent is saved on the group before Alertmanager is
                # asked, and that save must not carry an acknowledgement not complete yet.
                problem = await self._silence(
                    group, user_id, user_name, self._ack_silence(), note, key
                )
            group.acked_by, group.acked_at = user_id, time.time()
            group.ack_note, group.ack_key = note.strip()[:500], key
            group.outbox.append(Outgoing(messages.ack_reply(group, problem)))
            await self.groups.save(group)
            detail = {"note": group.ack_note, "silence_id": group.silence_id}
            await self.deps.store.audit(user_id, "alert.acknowledged", ref, detail)
            if group.storm_id and group.channel:
                await self.groups.count_in_storm(group.channel, group.storm_id, "acked")
            # Before Slack: a failed Slack call must not leave the silence without its poll.
            await self._schedule_poll(group)
            await self.deliver(group)
        if group.storm_id and group.channel:
            await self._schedule_storm_render(group.channel)
        return True, messages.ack_confirmation(group, problem)

    async def unacknowledge(self, ref: str, user_id: str) -> str:
        """Whoever acknowledged the group, or an approver, takes the acknowledgement back."""
        group = await self._load_open(ref)
        async with self.groups.locked(group.group_key):
            group = await self._load_open(ref)
            if not group.acked_by:
                raise UserError(f"{ref} is not acknowledged.")
            if group.acked_by != user_id and not await approves_anything(self.deps, user_id):
                raise UserError(messages.unack_refused(group))
            await self._unsilence(group)
            group.acked_by, group.acked_at, group.ack_note, group.ack_key = None, None, "", None
            group.poll_generation += 1
            group.outbox.append(Outgoing(messages.unack_reply(user_id)))
            await self.groups.save(group)
            await self.deps.store.audit(user_id, "alert.unacknowledged", ref)
            if group.escalate_after:
                # Before Slack, so that a failed Slack call does not end escalation.
                run_at = time.time() + group.escalate_after
                await self._schedule_escalation(group, group.escalations + 1, run_at)
            await self.deliver(group)
        return f"You unacknowledged {ref}."

    async def silence(
        self, ref: str, user_id: str, user_name: str, duration: timedelta, *, key: str
    ) -> str:
        """Silence the group for `duration`, replacing its silence; `key` as in acknowledge."""
        group = await self._load_open(ref)
        if self._silencer(group) is None:
            raise UserError(
                self.deps.systems.missing_silencer(group.source),
                f"Acknowledge instead (`/ack {ref}`) to record that you are on it.",
            )
        async with self.groups.locked(group.group_key):
            group = await self._load_open(ref)
            if not group.is_open:
                raise UserError(f"{ref} is already resolved; there is nothing to silence.")
            if group.silence_key == key and group.silence_id:
                return f"{ref} is silenced for {format_duration(duration)}."  # a re-run
            if group.silence_key != key:
                # Not when this request's own intent is pending: that is its silence to find.
                await self._unsilence(group)
            problem = await self._silence(group, user_id, user_name, duration, "", key)
            if problem:
                raise IntegrationError(messages.silencer(group), problem)
            group.outbox.append(Outgoing(messages.silence_reply(group, user_id, duration)))
            await self.groups.save(group)
            detail = {"silence_id": group.silence_id, "seconds": duration.total_seconds()}
            await self.deps.store.audit(user_id, "alert.silenced", ref, detail)
            await self._schedule_poll(group)  # before Slack, as in acknowledge
            await self.deliver(group)
        return f"{ref} is silenced for {format_duration(duration)}."

    def _silencer(self, group: AlertGroup) -> Silencer | None:
        """The silencer of the system the group came from (bot/plugins.py, Systems.silencers)."""
        return self.deps.silencers.get(group.source)

    def _ack_silence(self) -> timedelta:
        return self.deps.config.alerts.ack_silence

    async def _silence(
        self,
        group: AlertGroup,
        user_id: str,
        user_name: str,
        duration: timedelta,
        note: str,
        key: str,
    ) -> str | None:
        """Make the silence of request `key` once, however often the request runs; a problem
        to show instead of raising (the ack stands regardless). The caller saves the group.

        Callers end or keep a live silence first: a silence still recorded here has ended."""
        am = self._silencer(group)
        if am is None:
            return None
        if group.silence_id is not None:
            _forget_silence(group)
        found = matchers(group)
        if not found:
            return "No silence was made: the group has no common labels to silence it by."
        comment = f"Acknowledged in Slack as {group.ref}" + (f": {note}" if note else "")
        try:
            made = await self._made_earlier(group, am, key)
            if made is None:
                # Intent before effect: a run that dies once Alertmanager has answered leaves
                # this key behind, and the re-run finds the silence by it.
                group.silence_key = key
                await self.groups.save(group)
                silence_id = await am.create_silence(
                    found, duration, created_by=_who(user_id, user_name), comment=comment, key=key
                )
                until = time.time() + duration.total_seconds()
            else:
                silence_id, until = made.id, made.ends_at.timestamp()
        except OutcomeUnknown as e:
            return (
                f"{messages.silencer(group)} did not confirm the silence ({e.message}), so "
                "opsloop cannot tell whether it was made; if it was, opsloop ends it when the "
                "group resolves or is unacknowledged."
            )
        except IntegrationError as e:
            return f"No silence was made: {e.message}"
        group.silence_id, group.silence_until, group.silenced_by = silence_id, until, user_id
        group.silence_key = key
        group.poll_generation += 1
        return None

    async def _made_earlier(self, group: AlertGroup, am: Silencer, key: str) -> Silence | None:
        """The silence an earlier run of request `key` made but did not record, if any."""
        if group.silence_id is not None or group.silence_key is None:
            return None
        if group.silence_key == key:
            return await am.find_silence(matchers(group), key)
        await self._expire_unrecorded(group, am)
        return None

    async def _expire_unrecorded(self, group: AlertGroup, am: Silencer) -> None:
        """End the silence another request's run may have made before it died: nobody would
        ever end it otherwise."""
        if group.silence_id is None and group.silence_key is not None:
            made = await am.find_silence(matchers(group), group.silence_key)
            if made is not None:
                await am.expire_silence(made.id)
            group.silence_key = None

    async def _unsilence(self, group: AlertGroup) -> None:
        """End the group's silence, or one a request may have made without recording it."""
        am = self._silencer(group)
        if am is not None and group.silence_id:
            await am.expire_silence(group.silence_id)
        elif am is not None:
            await self._expire_unrecorded(group, am)
        _forget_silence(group)

    # -- timers ----------------------------------------------------------------------------

    async def _schedule_escalation(self, group: AlertGroup, round_: int, run_at: float) -> None:
        if not group.escalate_after or not group.is_open or group.storm_id:
            return
        await self.deps.queue.enqueue(
            ESCALATE_JOB,
            {"ref": group.ref, "round": round_},
            # The time is part of the id: after an unacknowledge the same round is scheduled anew.
            job_id=f"{ESCALATE_JOB}:{group.ref}:{round_}:{int(run_at)}",
            run_at=run_at,
        )

    async def escalate(self, ref: str, round_: int, attempt: int = 1) -> None:
        """A deferred job: mention escalate_to if the group is still unattended."""
        group = await self.groups.load(ref)
        if group is None:
            return
        async with self.groups.locked(group.group_key):
            group = await self.groups.load(ref)
            now = time.time()
            if group is None or not group.is_open or group.escalations > round_:
                return  # resolved, or a later round ran already: this timer stops
            if group.escalations == round_:
                # An earlier attempt recorded this round and Slack failed: only deliver.
                if group.outbox:
                    await self._deliver_or_retry(group, attempt)
                return
            if not group.needs_attention(now):
                if group.acked_by is None and group.silence_until:
                    # Silenced but nobody said they are on it: look again when it ends.
                    await self._schedule_escalation(group, round_, group.silence_until)
                return  # acknowledged: the timer stops
            group.escalations = round_
            text = messages.escalation_reply(group, group.escalate_to, now - group.first_seen)
            group.outbox.append(Outgoing(text, broadcast=True))
            await self.groups.save(group)
            await self.deps.store.audit(
                "opsloop", "alert.escalated", ref, {"round": round_, "to": group.escalate_to}
            )
            # The next round is scheduled before Slack is called: a Slack outage delays the
            # reply (kept in the outbox, retried) but must not end the escalation.
            await self._schedule_escalation(group, round_ + 1, now + (group.escalate_after or 0))
            await self._deliver_or_retry(group, attempt)

    async def _schedule_storm_escalation(
        self, channel: str, storm_id: str, started_at: float, round_: int
    ) -> None:
        route = next((r for r in self.deps.config.alerts.routes if r.channel == channel), None)
        if route is None or route.escalate_after is None:
            return
        await self.deps.queue.enqueue(
            ESCALATE_STORM_JOB,
            {"channel": channel, "storm_id": storm_id, "round": round_},
            job_id=f"{ESCALATE_STORM_JOB}:{channel}:{storm_id}:{round_}",
            run_at=started_at + route.escalate_after.total_seconds() * round_,
        )

    async def escalate_storm(self, channel: str, storm_id: str, round_: int) -> None:
        """One escalation for a whole storm, in its summary's thread, instead of one per group."""
        storm = await self.groups.storm(channel)
        if storm is None or storm.id != storm_id or storm.ts is None:
            return
        unattended = storm.members - storm.resolved - storm.acked
        if unattended <= 0:
            return
        route = next((r for r in self.deps.config.alerts.routes if r.channel == channel), None)
        mentions = list(route.escalate_to) if route else []
        text = messages.storm_escalation_reply(unattended, mentions, time.time() - storm.started_at)
        # The next round first: a Slack outage may cost this reply, never the later ones.
        await self._schedule_storm_escalation(channel, storm_id, storm.started_at, round_ + 1)
        await self.deps.store.audit(
            "opsloop", "alert.escalated", f"storm {storm_id}", {"open": unattended, "round": round_}
        )
        await self.deps.slack.post_message(channel, text, thread_ts=storm.ts, reply_broadcast=True)

    async def _schedule_poll(self, group: AlertGroup) -> None:
        if self._silencer(group) is None or not group.silence_id or not group.is_open:
            return
        delay = self.deps.settings.alert_poll_seconds
        gen = group.poll_generation
        await self.deps.queue.enqueue(
            POLL_JOB,
            {"ref": group.ref, "generation": gen},
            job_id=f"{POLL_JOB}:{group.ref}:{gen}:{int(time.time() * 1000)}",
            run_at=time.time() + delay,
        )

    async def poll(self, ref: str, generation: int) -> None:
        """Alertmanager sends no `resolved` for alerts that resolve while silenced: ask it."""
        group = await self.groups.load(ref)
        am = self._silencer(group) if group is not None else None
        if am is None or group is None or not group.is_open or not group.silence_id:
            return
        if group.poll_generation != generation:
            return  # a newer acknowledgement or silence runs its own chain
        try:
            active = await am.alerts(matchers(group), active=True, silenced=True, inhibited=True)
        except IntegrationError as e:
            # Alertmanager away for a moment: ask again next time, or nobody ever will.
            log.warning("%s: cannot ask Alertmanager for its alerts: %s", ref, e)
            await self._schedule_poll(group)
            return
        now = time.time()
        live = [a for a in active if a.ends_at is None or a.ends_at.timestamp() > now]
        fingerprints = {a.fingerprint for a in live}
        # By labels too: a sender may leave the fingerprint out, and then ours is a hash.
        label_sets = [a.labels for a in live]
        if any(a.fingerprint in fingerprints or a.labels in label_sets for a in group.firing):
            await self._schedule_poll(group)
            return
        async with self.groups.locked(group.group_key):
            group = await self.groups.load(ref)
            if group is None or not group.is_open or group.poll_generation != generation:
                return
            resolve_all(group, now)
            await self._on_resolved(group)
            group.outbox.append(Outgoing(messages.resolved_while_silenced_reply(group)))
            await self.groups.save(group)
            await self.deliver(group)

    async def _record_incident(self, group: AlertGroup) -> None:
        """The group in the history of each service it concerns (/ops dora): written again on
        every delivery, the same record each time, so a job run again changes nothing."""
        for incident in incidents_of(group, self.deps.config.services):
            await self.deps.store.history.save_incident(incident)

    # -- reading ---------------------------------------------------------------------------

    async def open_groups(self) -> list[AlertGroup]:
        return await self.groups.open_groups()
