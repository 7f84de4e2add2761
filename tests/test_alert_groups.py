"""Pure parts of alerting: the webhook payload, routing, merging notifications, and wording."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.alerting import messages
from bot.alerting.groups import AlertGroup, Outgoing, merge, resolve_all
from bot.alerting.payload import PayloadError, fingerprint, parse_notification
from bot.alerting.routing import route_for
from bot.config_file import AlertRoute, Alerts
from bot.sandbox.emulators.slack.blockkit import validate_blocks
from tests.alert_payloads import START, alert, alert_config, notification, sample

NOW = START.timestamp() + 3600


def group_from(*bodies: dict[str, Any], now: float = NOW) -> AlertGroup:
    group = AlertGroup(ref="AL-7", group_key=bodies[0]["groupKey"], first_seen=now)
    for body in bodies:
        merge(group, parse_notification(body), now)
    return group


# -- payload --------------------------------------------------------------------------------------


def test_the_sample_parses_and_zero_end_time_means_not_ended() -> None:
    parsed = parse_notification(sample("alertmanager-firing.json"))
    assert parsed.version == "4" and parsed.status == "firing"
    [only] = parsed.alerts
    assert only.endsAt is None
    assert only.startsAt.tzinfo is not None
    assert fingerprint(only) == "d0c296e49fc4ad26"
    resolved = parse_notification(sample("alertmanager-resolved.json"))
    assert resolved.alerts[0].endsAt is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": "3"}, "version: must be '4' (Alertmanager) or '1' (Grafana)"),
        ({"status": "ok"}, "status:"),
        ({"alerts": []}, "alerts:"),
        ({"groupKey": ""}, "groupKey:"),
        ({"alerts": "many"}, "alerts:"),
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], field: str) -> None:
    body = sample("alertmanager-firing.json") | change
    with pytest.raises(PayloadError) as caught:
        parse_notification(body)
    assert str(caught.value).startswith(field)


def test_an_alert_without_labels_and_a_body_that_is_not_an_object() -> None:
    body = sample("alertmanager-firing.json")
    body["alerts"][0]["labels"] = {}
    with pytest.raises(PayloadError, match=r"^alerts\.0\.labels: an alert needs at least one"):
        parse_notification(body)
    with pytest.raises(PayloadError, match=r"^body: must be a JSON object"):
        parse_notification([body])


def test_a_fingerprint_is_made_up_from_the_labels_when_missing() -> None:
    one, two = alert("web-1"), alert("web-1")
    del one["fingerprint"], two["fingerprint"]
    two["labels"] = dict(reversed(list(two["labels"].items())))
    parsed = parse_notification(notification([one, two]))
    assert fingerprint(parsed.alerts[0]) == fingerprint(parsed.alerts[1])
    other = parse_notification(notification([alert("web-2") | {"fingerprint": ""}]))
    assert fingerprint(other.alerts[0]) != fingerprint(parsed.alerts[0])


# -- routing --------------------------------------------------------------------------------------


def test_first_matching_route_wins_and_the_last_is_the_default() -> None:
    alerts = alert_config().alerts
    route = route_for(alerts, {"alertname": "X", "severity": "critical"})
    assert route is not None and route.channel == "C0INCIDENT"
    route = route_for(alerts, {"alertname": "X", "severity": "warning"})
    assert route is not None and route.channel == "C0ALERTS"
    route = route_for(alerts, {"alertname": "X"})
    assert route is not None and route.channel == "C0ALERTS"


def test_every_match_label_must_equal_and_no_default_means_no_route() -> None:
    only = Alerts(
        routes=[AlertRoute.model_validate({"match": {"a": "1", "b": "2"}, "channel": "C0X"})]
    )
    assert route_for(only, {"a": "1"}) is None
    assert route_for(only, {"a": "1", "b": "3"}) is None
    found = route_for(only, {"a": "1", "b": "2", "c": "x"})
    assert found is not None and found.channel == "C0X"


# -- merging notifications ------------------------------------------------------------------------


def test_new_alerts_resolutions_and_repeats() -> None:
    group = group_from(notification([alert("web-1")]))
    assert [a.labels["instance"] for a in group.firing] == ["web-1"]

    change = merge(group, parse_notification(notification([alert("web-1")])), NOW)
    assert change.empty and not change.group_resolved

    both = notification([alert("web-1"), alert("web-2")])
    change = merge(group, parse_notification(both), NOW)
    assert [a.labels["instance"] for a in change.new_firing] == ["web-2"]
    assert not change.resolved

    partly = notification([alert("web-1"), alert("web-2", resolved=True)])
    change = merge(group, parse_notification(partly), NOW)
    assert [a.labels["instance"] for a in change.resolved] == ["web-2"]
    assert group.is_open and not change.group_resolved

    done = notification([alert("web-1", resolved=True), alert("web-2", resolved=True)])
    change = merge(group, parse_notification(done), NOW)
    assert change.group_resolved and not group.is_open
    assert group.status == "resolved"


def test_how_long_a_resolved_group_lasted_comes_from_the_alerts_not_the_clock() -> None:
    group = group_from(notification([alert("web-1")]))
    # The resolved notification is processed an hour after the alert ended (a queue, a retry).
    merge(group, parse_notification(notification([alert("web-1", resolved=True)])), NOW + 3600)
    assert group.resolved_at == (START + timedelta(minutes=7)).timestamp()
    assert messages.lasted(group) == "7m"


def test_a_resolved_group_that_reports_no_end_uses_the_time_it_was_seen() -> None:
    body = notification([alert("web-1", resolved=True)])
    body["alerts"][0]["endsAt"] = "0001-01-01T00:00:00Z"
    group = group_from(notification([alert("web-1")]))
    merge(group, parse_notification(body), NOW)
    assert group.resolved_at == NOW


def test_a_late_firing_does_not_reopen_what_already_resolved() -> None:
    """Notifications may be worked on out of order: the newest state of each alert wins."""
    group = group_from(notification([alert("web-1"), alert("web-2")]))
    merge(group, parse_notification(notification([alert("web-1", resolved=True)])), NOW)
    stale = notification([alert("web-1"), alert("web-2")])  # sent before the resolution
    change = merge(group, parse_notification(stale), NOW)
    assert change.empty
    assert [a.labels["instance"] for a in group.firing] == ["web-2"]


def test_an_alert_that_fires_again_later_is_new() -> None:
    group = group_from(notification([alert("web-1"), alert("web-2")]))
    merge(group, parse_notification(notification([alert("web-1", resolved=True)])), NOW)
    again = alert("web-1", started=START + timedelta(hours=1))
    change = merge(group, parse_notification(notification([again, alert("web-2")])), NOW)
    assert [a.labels["instance"] for a in change.new_firing] == ["web-1"]
    assert len(group.firing) == 2


def test_annotations_follow_the_newest_notification() -> None:
    group = group_from(notification([alert("web-1")]))
    body = notification([alert("web-1")])
    body["alerts"][0]["annotations"]["summary"] = "p99 latency > 5s"
    body["commonAnnotations"]["summary"] = "p99 latency > 5s"
    change = merge(group, parse_notification(body), NOW)
    assert change.empty
    assert group.summary == "p99 latency > 5s"


def test_resolve_all_and_the_json_round_trip() -> None:
    group = group_from(notification([alert("web-1"), alert("web-2")]))
    group.outbox.append(Outgoing("hello", broadcast=True))
    again = AlertGroup.from_json(group.to_json())
    assert again == group
    change = resolve_all(again, NOW)
    assert change.group_resolved and len(change.resolved) == 2
    assert not again.is_open and again.resolved_at == NOW
    assert all(a.ends_at for a in again.alerts.values())


def test_what_people_read_falls_back_sensibly() -> None:
    body = notification([alert("web-1")])
    body["groupLabels"] = {}
    body["commonAnnotations"] = {}
    group = group_from(body)
    assert group.title == "HighLatency"  # from the common labels
    assert group.summary == "p99 latency > 2s"  # from the alert itself
    assert group.runbook_url == "http://runbooks/latency"
    assert group.severity == "critical"
    assert group.started_at == START.timestamp()


# -- wording and Block Kit ------------------------------------------------------------------------


def test_the_parent_message_is_valid_block_kit_even_for_huge_groups() -> None:
    many = [alert(f"web-{i}-" + "x" * 300, extra={"path": "/" + "p" * 500}) for i in range(60)]
    body = notification(many)
    body["commonAnnotations"]["summary"] = "s" * 5000
    body["commonLabels"]["team"] = "t" * 3000
    group = group_from(body)
    group.acked_by, group.acked_at, group.ack_note = "U0BOB", NOW, "n" * 500
    text, blocks = messages.parent_message(group, NOW)
    assert validate_blocks(blocks) == []
    assert text.startswith("AL-7 [FIRING:60] HighLatency")
    firing = next(b for b in blocks if "Firing:" in str(b))
    assert 1 <= str(firing).count("web-") <= 10  # at most the first ten, not sixty


def test_alert_text_cannot_mention_everyone_or_break_the_markup() -> None:
    body = notification([alert("web-1", extra={"path": "<!channel>"})])
    body["commonAnnotations"]["summary"] = "queue < 10 & <!here> <http://evil|click>"
    body["commonLabels"]["team"] = "<@U0BOB>"
    group = group_from(body)
    text, blocks = messages.parent_message(group, NOW)
    everything = text + str(blocks)
    assert "<!here>" not in everything and "<!channel>" not in everything
    assert "<@U0BOB>" not in everything and "<http://evil|click>" not in everything
    assert "queue &lt; 10 &amp; &lt;!here&gt;" in everything
    reply = messages.change_reply(group, merge(group, parse_notification(body), NOW))
    assert "<!channel>" not in reply
    assert "<!channel>" not in messages.storm_line(group)
    listing = messages.alerts_list([group], "C0ALERTS", NOW)
    assert "<!" not in listing.text


def test_change_replies_say_what_changed() -> None:
    group = group_from(notification([alert("web-1")]))
    change = merge(group, parse_notification(notification([alert(f"w{i}") for i in range(13)])), 0)
    reply = messages.change_reply(group, change)
    assert reply.startswith(":fire: 13 new alerts firing: ")
    assert reply.endswith(" and 3 more")
    done = notification(
        [alert("web-1", resolved=True)] + [alert(f"w{i}", resolved=True) for i in range(13)]
    )
    change = merge(group, parse_notification(done), NOW)
    assert (
        messages.change_reply(group, change) == ":white_check_mark: All alerts resolved after 7m."
    )


def test_escalation_mentions_users_and_user_groups() -> None:
    group = group_from(notification([alert("web-1")]))
    text = messages.escalation_reply(group, ["S0ONCALL", "U0BOB"], 600)
    assert "<!subteam^S0ONCALL> <@U0BOB>" in text and "10m" in text and "AL-7" in text
    assert "<!here>" in messages.escalation_reply(group, [], 60)


def test_the_alerts_list_puts_this_channel_first_and_says_who_acked() -> None:
    a = group_from(notification([alert("web-1")]), now=NOW)
    a.channel = "C0INCIDENT"
    b = group_from(copy.deepcopy(notification([alert("db-1", name="Disk")], name="Disk")), now=NOW)
    b.ref, b.channel, b.acked_by = "AL-8", "C0ALERTS", "U0CAROL"
    listing = messages.alerts_list([a, b], "C0ALERTS", NOW).text
    assert listing.index("AL-8") < listing.index("AL-7")
    assert "acked by <@U0CAROL>" in listing and "<#C0INCIDENT>" in listing
    assert "2 open alert groups" in listing
    assert validate_blocks(messages.alerts_list([a, b], "C0ALERTS", NOW).blocks) == []


def test_times_are_shown_in_the_readers_zone() -> None:
    moment = datetime(2026, 11, 21, 21, 5, tzinfo=UTC).timestamp()
    assert messages.clock(moment) == f"<!date^{int(moment)}^{{time}}|21:05 UTC>"
