"""The Docker engine against a real dockerd with local images (tests/dockerd_server.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.errors import IntegrationError
from integrations.docker.engine import ContainerEngine
from integrations.docker.shapes import LABEL_SERVICE, LABEL_VERSION, ServiceState
from tests.dockerd_server import DockerEngine
from tests.servers import free_port

APP = "local/app"


@pytest.fixture
async def deployer(dockerd: DockerEngine) -> AsyncIterator[ContainerEngine]:
    d = ContainerEngine(dockerd.url, stop_timeout=2, settle=0.3, pull=False)
    yield d
    await d.close()


def running(dockerd: DockerEngine, service: str) -> dict[str, list[str]]:
    """The engine's own view, not the adapter's: running container names per version."""
    # One low-level list call: containers.list() inspects each container afterwards, and
    # fails when a step removes one in between.
    found: dict[str, list[str]] = {}
    for c in dockerd.client.api.containers(filters={"label": f"{LABEL_SERVICE}={service}"}):
        found.setdefault(c["Labels"][LABEL_VERSION], []).append(c["Names"][0].lstrip("/"))
    return {v: sorted(names) for v, names in found.items()}


def everything(dockerd: DockerEngine, service: str) -> list[str]:
    return sorted(
        c["Names"][0].lstrip("/")
        for c in dockerd.client.api.containers(
            all=True, filters={"label": f"{LABEL_SERVICE}={service}"}
        )
    )


def events(dockerd: DockerEngine, service: str, since: float) -> list[dict[str, Any]]:
    """Container events of the service since `since`, in the engine's order."""
    stream = dockerd.client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "label": f"{LABEL_SERVICE}={service}"},
    )
    return [e for e in stream if e.get("timeNano", 0) >= since * 1e9]


def counts(state: ServiceState) -> dict[str, int]:
    return state.versions()


async def test_first_deploy_canary_promote_rollback(
    dockerd: DockerEngine, deployer: ContainerEngine
) -> None:
    assert (await deployer.state("web")).containers == ()

    first = await deployer.scale_to("web", APP, {"1": 4})
    assert counts(first) == {"1": 4}
    assert all(c.status == "running" and c.health is None for c in first.containers)
    assert running(dockerd, "web") == {"1": [f"opsloop-web-1-{n}" for n in (1, 2, 3, 4)]}
    assert await deployer.state("web") == first

    canary = await deployer.scale_to("web", APP, {"1": 3, "2": 1})
    assert counts(canary) == {"1": 3, "2": 1}
    assert running(dockerd, "web") == {
        "1": ["opsloop-web-1-1", "opsloop-web-1-2", "opsloop-web-1-3"],
        "2": ["opsloop-web-2-1"],
    }
    assert [c.health for c in canary.containers if c.version == "2"] == ["healthy"]

    since = time.time()
    promoted = await deployer.scale_to("web", APP, {"2": 4})
    assert counts(promoted) == {"2": 4}
    assert {c.health for c in promoted.containers} == {"healthy"}
    assert everything(dockerd, "web") == [f"opsloop-web-2-{n}" for n in (1, 2, 3, 4)]

    # Every new container was started and healthy before the first old one was stopped.
    seen = events(dockerd, "web", since)
    version = {e["Actor"]["ID"]: e["Actor"]["Attributes"].get(LABEL_VERSION) for e in seen}
    first_old_gone = min(
        e["timeNano"]
        for e in seen
        if version[e["Actor"]["ID"]] == "1" and e["Action"] in ("kill", "stop", "die", "destroy")
    )
    new_started = [e["timeNano"] for e in seen if e["Action"] == "start"]
    new_healthy = [e["timeNano"] for e in seen if e["Action"] == "health_status: healthy"]
    assert len(new_started) == 3  # opsloop-web-2-1 was already there
    assert len(new_healthy) >= 3
    assert max(new_started) < first_old_gone
    assert sorted(new_healthy)[2] < first_old_gone

    rolled_back = await deployer.scale_to("web", APP, {"1": 4})
    assert counts(rolled_back) == {"1": 4}
    assert everything(dockerd, "web") == [f"opsloop-web-1-{n}" for n in (1, 2, 3, 4)]


async def test_same_plan_twice_changes_nothing(
    dockerd: DockerEngine, deployer: ContainerEngine
) -> None:
    once = await deployer.scale_to("idem", APP, {"1": 2, "2": 1})
    since = time.time()
    twice = await deployer.scale_to("idem", APP, {"1": 2, "2": 1})
    assert twice == once
    # Healthchecks run as exec_* events and report health_status; neither is a change.
    changes = [
        e
        for e in events(dockerd, "idem", since)
        if not str(e.get("Action", "")).startswith(("exec_", "health_status"))
    ]
    assert changes == []


async def test_restarted_bot_sees_the_same_containers(
    dockerd: DockerEngine, deployer: ContainerEngine
) -> None:
    made = await deployer.scale_to("api", APP, {"1": 2, "2": 1})
    fresh = ContainerEngine(dockerd.url, pull=False)
    try:
        assert await fresh.state("api") == made
        assert counts(await fresh.state("api")) == {"1": 2, "2": 1}
    finally:
        await fresh.close()


async def test_a_container_that_exits_is_reported_and_the_old_ones_stay(
    dockerd: DockerEngine, deployer: ContainerEngine
) -> None:
    before = await deployer.scale_to("shop", APP, {"1": 2})
    started = time.monotonic()
    with pytest.raises(IntegrationError) as failure:
        await deployer.scale_to("shop", APP, {"bad": 2}, ready_timeout=10)
    assert time.monotonic() - started < 5
    message = failure.value.message
    assert failure.value.system == "Docker"
    assert "opsloop-shop-bad-" in message and "local/app:bad" in message
    assert "exit code 3" in message or "keeps restarting" in message
    assert "app failed: missing config" in message
    assert await deployer.state("shop") == before
    assert everything(dockerd, "shop") == ["opsloop-shop-1-1", "opsloop-shop-1-2"]


async def test_unhealthy_and_slow_containers_are_removed(
    dockerd: DockerEngine, deployer: ContainerEngine
) -> None:
    before = await deployer.scale_to("sick", APP, {"1": 1})
    failing = {"test": ["CMD", "false"], "interval": 200_000_000, "retries": 1}
    with pytest.raises(IntegrationError, match="opsloop-sick-2-1 is unhealthy"):
        await deployer.scale_to("sick", APP, {"2": 1}, options={"healthcheck": failing})
    slow = {"test": ["CMD", "true"], "interval": 60_000_000_000, "start_period": 60_000_000_000}
    started = time.monotonic()
    with pytest.raises(IntegrationError, match=r"opsloop-sick-2-1 was not ready within 1 s"):
        await deployer.scale_to(
            "sick", APP, {"2": 1}, options={"healthcheck": slow}, ready_timeout=1
        )
    assert time.monotonic() - started < 4
    assert await deployer.state("sick") == before


async def test_unknown_image_is_named(dockerd: DockerEngine, deployer: ContainerEngine) -> None:
    with pytest.raises(IntegrationError) as failure:
        await deployer.scale_to("ghost", "registry.example.com/acme/web", {"1.4.2": 1})
    assert failure.value.message == "image registry.example.com/acme/web:1.4.2 was not found"
    assert everything(dockerd, "ghost") == []


async def test_options_reach_the_container(
    dockerd: DockerEngine, deployer: ContainerEngine
) -> None:
    options = {
        "env": {"GREETING": "hello"},
        "labels": {"team": "payments", LABEL_SERVICE: "not-this"},
        "network_mode": "host",
        "command": ["sh", "-c", "echo $GREETING; exec sleep 60"],
    }
    state = await deployer.scale_to("opts", APP, {"1": 1}, options=options)
    container = dockerd.client.containers.get(state.containers[0].id)
    assert container.labels["team"] == "payments"
    assert container.labels[LABEL_SERVICE] == "opts"
    assert "GREETING=hello" in container.attrs["Config"]["Env"]
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    await deployer.scale_to("opts", APP, {})
    assert everything(dockerd, "opts") == []


async def test_ping(dockerd: DockerEngine, deployer: ContainerEngine) -> None:
    assert (await deployer.ping()) == dockerd.client.version()["Version"]


@pytest.mark.parametrize("where", ["unix:///tmp/opsloop-no-such-dir/docker.sock", "tcp"])
async def test_unreachable_engine(where: str) -> None:
    url = f"tcp://127.0.0.1:{free_port()}" if where == "tcp" else where
    deployer = ContainerEngine(url, timeout=5)
    started = time.monotonic()
    with pytest.raises(IntegrationError) as failure:
        await deployer.ping()
    assert time.monotonic() - started < 2
    assert failure.value.message == f"Docker at {url} is unreachable"
    assert failure.value.retryable
    with pytest.raises(IntegrationError, match="unreachable"):
        await deployer.state("web")
    await deployer.close()


async def test_bad_names_are_refused_before_docker_is_asked() -> None:
    deployer = ContainerEngine("unix:///tmp/opsloop-no-such-dir/docker.sock")
    with pytest.raises(ValueError, match="not a Docker tag"):
        await deployer.scale_to("web", APP, {"-1": 1})
    with pytest.raises(ValueError, match="service name"):
        await deployer.state("web/../x")
    with pytest.raises(ValueError, match="set by opsloop"):
        await deployer.scale_to("web", APP, {"1": 1}, options={"name": "x"})
