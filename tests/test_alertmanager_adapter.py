"""The Alertmanager adapter against a real Alertmanager, and its failures against stand-ins."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.alerting.ports import ActiveAlert, Matcher
from bot.errors import IntegrationError, OutcomeUnknown
from integrations.alertmanager.client import AlertmanagerClient
from integrations.alertmanager.shapes import parse_time
from tests.alertmanager_server import AlertmanagerServer
from tests.servers import free_port
from tests.waiting import eventually

Clients = Callable[..., AlertmanagerClient]


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """Make clients that are closed after the test."""
    made: list[AlertmanagerClient] = []

    def make(url: str, **options: Any) -> AlertmanagerClient:
        made.append(AlertmanagerClient(url, **options))
        return made[-1]

    yield make
    for client in made:
        await client.close()


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Run `app` on a free loopback port; yield its base URL without a trailing slash."""
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def reverse_proxy(
    upstream: str, seen: list[web.Request], *, fail_first_post: bool = False
) -> web.Application:
    """A stand-in for a reverse proxy serving Alertmanager under /alertmanager/.

    With `fail_first_post` it forwards the first POST and then answers 502, as a proxy whose
    upstream answer was lost would.
    """
    failed: list[bool] = []

    async def forward(request: web.Request) -> web.Response:
        seen.append(request)
        url = upstream + "/" + request.match_info["tail"]
        body = await request.read()
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                url,
                params=list(request.query.items()),
                data=body or None,
                headers={"Content-Type": request.content_type} if body else None,
            ) as answer,
        ):
            text = await answer.read()
        if fail_first_post and request.method == "POST" and not failed:
            failed.append(True)
            return web.Response(status=502, text="bad gateway")
        return web.Response(status=answer.status, body=text, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/alertmanager/{tail:.*}", forward)
    return app


async def alert_named(client: AlertmanagerClient, name: str) -> ActiveAlert | None:
    found = await client.alerts([Matcher("alertname", name)])
    return found[0] if found else None


async def test_status_reports_the_version(
    alertmanager: AlertmanagerServer, clients: Clients
) -> None:
    assert (await clients(alertmanager.url).status()).startswith("0.25.")


async def test_alerts_are_listed_and_narrowed_by_matchers(
    alertmanager: AlertmanagerServer, clients: Clients
) -> None:
    client = clients(alertmanager.url + "/")
    awkward = 'we"b\\1'
    await alertmanager.post_alerts(
        [
            AlertmanagerServer.alert(
                "DiskFull",
                labels={"service": awkward, "severity": "critical"},
                annotations={"summary": "disk 95% full"},
            )
            | {"generatorURL": "http://prometheus.example/graph"},
            AlertmanagerServer.alert("Other", labels={"service": "api"}),
        ]
    )

    disk = await eventually(lambda: alert_named(client, "DiskFull"), within=5, what="DiskFull")
    assert len(disk.fingerprint) == 16 and int(disk.fingerprint, 16) >= 0
    assert disk.labels == {"alertname": "DiskFull", "service": awkward, "severity": "critical"}
    assert disk.annotations == {"summary": "disk 95% full"}
    assert disk.state == "active"
    assert disk.silenced_by == () and disk.inhibited_by == ()
    assert disk.generator_url == "http://prometheus.example/graph"
    assert disk.starts_at.tzinfo is not None
    assert abs(disk.starts_at - datetime.now(UTC)) < timedelta(minutes=1)
    # Posted without endsAt: Alertmanager reports now + resolve_timeout (5m), not the zero time.
    assert disk.ends_at is not None and disk.ends_at > disk.starts_at

    async def names(*matchers: Matcher) -> set[str]:
        return {a.labels["alertname"] for a in await client.alerts(matchers)}

    assert await names() == {"DiskFull", "Other"}
    assert await names(Matcher("service", awkward)) == {"DiskFull"}
    assert await names(Matcher("alertname", "Disk.*", is_regex=True)) == {"DiskFull"}
    assert await names(Matcher("alertname", "DiskFull", is_equal=False)) == {"Other"}
    assert await names(Matcher("alertname", "Disk.*", is_regex=True, is_equal=False)) == {"Other"}
    assert await names(Matcher("alertname", "DiskFull"), Matcher("service", "api")) == set()


async def test_a_silence_suppresses_the_alert_until_it_is_expired(
    alertmanager: AlertmanagerServer, clients: Clients
) -> None:
    client = clients(alertmanager.url)
    await alertmanager.post_alerts(
        [AlertmanagerServer.alert("HighLatency", labels={"service": "web"})]
    )
    firing = await eventually(lambda: alert_named(client, "HighLatency"), within=5, what="alert")
    matchers = [Matcher(k, v) for k, v in sorted(firing.labels.items())]

    silence_id = await client.create_silence(
        matchers, timedelta(hours=2), "U0ALICE", "AL-1 acked", key="action:1"
    )

    async def silenced() -> ActiveAlert | None:
        a = await alert_named(client, "HighLatency")
        return a if a is not None and a.state == "suppressed" else None

    suppressed = await eventually(silenced, within=5, what="the alert to be suppressed")
    assert suppressed.silenced_by == (silence_id,)
    assert await client.alerts([Matcher("alertname", "HighLatency")], silenced=False) == []

    silence = await client.get_silence(silence_id)
    assert silence is not None
    assert silence.id == silence_id
    assert silence.created_by == "U0ALICE" and silence.comment == "AL-1 acked [opsloop:action:1]"
    assert silence.state == "active"
    assert set(silence.matchers) == set(matchers)
    assert abs(silence.ends_at - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(minutes=1)

    await client.expire_silence(silence_id)
    expired = await client.get_silence(silence_id)
    assert expired is not None and expired.state == "expired"

    async def active_again() -> bool:
        a = await alert_named(client, "HighLatency")
        return a is not None and a.state == "active" and a.silenced_by == ()

    await eventually(active_again, within=5, what="the alert to be active again")
    # Idempotent: already expired, and unknown (0.25 answers 500 "silence not found" to that).
    await client.expire_silence(silence_id)
    await client.expire_silence(str(uuid.uuid4()))
    assert await client.get_silence(str(uuid.uuid4())) is None
    assert await client.get_silence("not-a-uuid") is None


async def test_a_bad_silence_carries_alertmanagers_reason(
    alertmanager: AlertmanagerServer, clients: Clients
) -> None:
    client = clients(alertmanager.url)
    with pytest.raises(IntegrationError) as empty:
        await client.create_silence([], timedelta(hours=1), "U0ALICE", "no matchers", key="k1")
    assert empty.value.system == "Alertmanager" and not empty.value.retryable
    assert empty.value.message == (
        "Alertmanager refused the silence: matchers in body should have at least 1 items"
    )

    with pytest.raises(IntegrationError) as blank:
        await client.create_silence(
            [Matcher("job", "")], timedelta(hours=1), "U0ALICE", "blank", key="k2"
        )
    assert "must not match the empty string" in blank.value.message

    with pytest.raises(IntegrationError) as query:
        await client.alerts([Matcher("not a label", "x")])
    assert query.value.message.startswith("Alertmanager refused the alert query: ")


async def test_unreachable_fails_fast_and_hides_credentials(clients: Clients) -> None:
    port = free_port()
    client = clients(f"http://alice:s3cret@127.0.0.1:{port}/am", retries=2)
    started = time.monotonic()
    with pytest.raises(IntegrationError) as caught:
        await client.status()
    assert time.monotonic() - started < 5
    assert caught.value.message == f"Alertmanager at 127.0.0.1:{port} is unreachable"
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
    assert "s3cret" not in str(caught.value) and "alice" not in str(caught.value)


async def test_5xx_is_retried_then_reported(clients: Clients) -> None:
    attempts: list[str] = []

    async def broken(request: web.Request) -> web.Response:
        attempts.append(request.path)
        return web.Response(status=500, text="internal error")

    app = web.Application()
    app.router.add_get("/api/v2/status", broken)
    async with serving(app) as url:
        started = time.monotonic()
        with pytest.raises(IntegrationError) as caught:
            await clients(url, retries=2).status()
    assert len(attempts) == 3
    assert caught.value.message == "Alertmanager answered 500" and caught.value.retryable
    assert 0.5 < time.monotonic() - started < 5  # back-off 0.2 s + 0.4 s


async def test_a_slow_answer_times_out(clients: Clients) -> None:
    attempts: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        attempts.append(request.path)
        await asyncio.sleep(3)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/api/v2/status", slow)
    async with serving(app) as url:
        started = time.monotonic()
        with pytest.raises(IntegrationError) as caught:
            await clients(url, timeout=0.3, retries=1).status()
    assert time.monotonic() - started < 2
    assert len(attempts) == 2
    assert caught.value.message == "Alertmanager did not answer within 0.3 s"
    assert caught.value.retryable


async def test_a_silence_never_answered_is_unknown_not_refused(clients: Clients) -> None:
    """A silence POST that reached Alertmanager and got no answer, and could not be found
    afterwards either: the caller is told nobody can tell, not that none was made."""
    posts: list[str] = []

    async def slow_post(request: web.Request) -> web.Response:
        posts.append(request.path)
        await asyncio.sleep(3)
        return web.json_response({"silenceID": "never-seen"})

    async def none_listed(request: web.Request) -> web.Response:
        await asyncio.sleep(3)  # the look for it is not answered either
        return web.json_response([])

    app = web.Application()
    app.router.add_post("/api/v2/silences", slow_post)
    app.router.add_get("/api/v2/silences", none_listed)
    async with serving(app) as url:
        with pytest.raises(OutcomeUnknown) as caught:
            await clients(url, timeout=0.3, retries=1).create_silence(
                [Matcher("alertname", "X")],
                timedelta(hours=1),
                created_by="alice",
                comment="ack",
                key="action:1",
            )
    assert caught.value.system == "Alertmanager" and posts


async def test_an_unreadable_answer_is_reported(clients: Clients) -> None:
    async def login_page(request: web.Request) -> web.Response:
        return web.Response(text="<html>please log in</html>", content_type="text/html")

    async def forbidden_page(request: web.Request) -> web.Response:
        return web.Response(status=403, text="<html>forbidden</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/api/v2/status", login_page)
    app.router.add_get("/api/v2/silence/{id}", forbidden_page)
    async with serving(app) as url:
        client = clients(url)
        with pytest.raises(IntegrationError, match="could not read"):
            await client.status()
        with pytest.raises(IntegrationError) as forbidden:
            await client.get_silence("x")
    assert forbidden.value.message == "Alertmanager answered 403"


async def test_times_with_nanoseconds_and_the_zero_time(clients: Clients) -> None:
    wire = {
        "fingerprint": "d0c296e49fc4ad26",
        "labels": {"alertname": "HighLatency"},
        "receivers": [{"name": "bot"}],
        "startsAt": "2026-11-21T21:56:46.672565123Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "updatedAt": "2026-11-21T21:56:46.672565123+01:00",
        "generatorURL": "",
        "status": {"state": "unprocessed", "silencedBy": [], "inhibitedBy": [], "mutedBy": []},
    }

    async def alerts(request: web.Request) -> web.Response:
        return web.json_response([wire])

    app = web.Application()
    app.router.add_get("/api/v2/alerts", alerts)
    async with serving(app) as url:
        (alert,) = await clients(url).alerts()
    assert alert.starts_at == datetime(2026, 11, 21, 21, 56, 46, 672565, tzinfo=UTC)
    assert alert.ends_at is None and alert.generator_url is None
    assert alert.annotations == {} and alert.state == "unprocessed"

    assert parse_time("2026-11-21T21:56:46Z") == datetime(2026, 11, 21, 21, 56, 46, tzinfo=UTC)
    assert parse_time("2026-11-21T22:56:46.5+01:00") == datetime(
        2026, 11, 21, 21, 56, 46, 500000, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        parse_time("yesterday")


async def test_a_path_prefix_and_url_credentials_are_honoured(
    alertmanager: AlertmanagerServer, clients: Clients
) -> None:
    seen: list[web.Request] = []
    async with serving(reverse_proxy(alertmanager.url, seen)) as proxy:
        for base in (f"{proxy}/alertmanager", f"{proxy}/alertmanager/"):
            base = base.replace("http://", "http://alice:s3cret@")
            assert (await clients(base).status()).startswith("0.25.")
            assert await clients(base).alerts([Matcher("alertname", "x")]) == []
    assert [r.path for r in seen] == [
        "/alertmanager/api/v2/status",
        "/alertmanager/api/v2/alerts",
    ] * 2
    assert seen[1].query.getall("filter") == ['alertname="x"']
    assert {r.headers["Authorization"] for r in seen} == {
        "Basic " + base64.b64encode(b"alice:s3cret").decode()
    }


async def test_a_lost_answer_does_not_make_a_second_silence(
    alertmanager: AlertmanagerServer, clients: Clients
) -> None:
    seen: list[web.Request] = []
    async with serving(reverse_proxy(alertmanager.url, seen, fail_first_post=True)) as proxy:
        client = clients(f"{proxy}/alertmanager")
        silence_id = await client.create_silence(
            [Matcher("alertname", "Flaky")], timedelta(minutes=30), "U0BOB", "AL-7 acked", key="j7"
        )
    assert [r.method for r in seen] == ["POST", "GET"]  # the retry found the silence first
    assert seen[1].query.getall("filter") == ['alertname="Flaky"']
    made = [s for s in await all_silences(alertmanager) if s["comment"].startswith("AL-7 acked")]
    assert [s["id"] for s in made] == [silence_id]


async def all_silences(alertmanager: AlertmanagerServer) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(alertmanager.url + "/api/v2/silences") as answer,
    ):
        found: list[dict[str, Any]] = await answer.json()
    return found


async def test_silences_are_told_apart_by_their_request_not_by_what_they_say(
    alertmanager: AlertmanagerServer, clients: Clients
) -> None:
    """Two requests with the same matchers, author and comment, whose answers are both lost:
    each retry finds its own silence, so there are two, one per request."""
    matchers = [Matcher("alertname", "Twin"), Matcher("service", "web")]
    seen: list[web.Request] = []
    made = []
    for key in ("action:alice", "action:bob"):
        async with serving(reverse_proxy(alertmanager.url, seen, fail_first_post=True)) as proxy:
            client = clients(f"{proxy}/alertmanager")
            made.append(
                await client.create_silence(
                    matchers, timedelta(hours=1), "opsloop", "Acknowledged", key=key
                )
            )
    assert [r.method for r in seen] == ["POST", "GET"] * 2  # each found its own, none re-sent
    assert made[0] != made[1]
    twins = [s for s in await all_silences(alertmanager) if s["createdBy"] == "opsloop"]
    assert sorted(s["id"] for s in twins) == sorted(made)

    client = clients(alertmanager.url)
    alice = await client.find_silence(matchers, "action:alice")
    assert alice is not None and alice.id == made[0]
    assert alice.comment == "Acknowledged [opsloop:action:alice]"
    # A key that is only the start of another's, or a silence of other matchers: not found.
    assert await client.find_silence(matchers, "action:ali") is None
    assert await client.find_silence([Matcher("alertname", "Other")], "action:bob") is None
    # An expired silence is no longer what a re-run should take as made.
    await client.expire_silence(made[1])
    assert await client.find_silence(matchers, "action:bob") is None


async def test_the_webhook_round_trip(alertmanager: AlertmanagerServer) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("Authorization"), await request.json()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hooks/alertmanager", hook)
    async with serving(app) as url:
        alertmanager.configure(url + "/hooks/alertmanager", "hook-token")
        alertmanager.reload()
        started = time.monotonic()
        await alertmanager.post_alerts(
            [AlertmanagerServer.alert("DiskFull", labels={"host": "db1"})]
        )
        await eventually(lambda: received, within=5, what="the firing webhook")
        firing_after = time.monotonic() - started

        token, firing = received[0]
        assert token == "Bearer hook-token"
        assert firing["version"] == "4" and firing["status"] == "firing"
        assert firing["groupKey"] == '{}:{alertname="DiskFull"}'
        assert firing["alerts"][0]["labels"] == {"alertname": "DiskFull", "host": "db1"}
        assert parse_time(firing["alerts"][0]["endsAt"]) is None

        await alertmanager.post_alerts(
            [AlertmanagerServer.alert("DiskFull", labels={"host": "db1"}, resolved=True)]
        )
        await eventually(lambda: len(received) > 1, within=6, what="the resolved webhook")
        resolved_after = time.monotonic() - started

    _, resolved = received[1]
    assert resolved["status"] == "resolved" and resolved["groupKey"] == firing["groupKey"]
    assert resolved["alerts"][0]["fingerprint"] == firing["alerts"][0]["fingerprint"]
    assert parse_time(resolved["alerts"][0]["endsAt"]) is not None
    print(f"firing webhook after {firing_after:.2f} s, resolved after {resolved_after:.2f} s")
