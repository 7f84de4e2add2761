"""The repository's Dockerfile, built on a real dockerd from a Debian base made here
(tests/image_build.py), and run as a user would run it: `opsloop serve` with a real Redis
answers /healthz, /readyz (503 once Redis is gone) and /metrics; Docker's HEALTHCHECK turns
healthy; `worker` starts a worker; it runs as a fixed non-root user, carries no compiler, and
stays under its size bound; with no Redis configured it serves on the embedded one; and
deploy/compose/ brings up the bot and a worker from it.

The containers use the host's network (the test dockerd gives them no other), so they reach the
test's redis-server on 127.0.0.1 and each listens on a free port of its own."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.alertmanager_server import AlertmanagerServer, alertmanager_binary
from tests.compose_project import compose, project_copy, resolved, why_no_compose
from tests.dockerd_server import DockerEngine
from tests.image_build import (
    BuiltImage,
    base_tar,
    build_context,
    build_image,
    import_base,
    wheelhouse,
    why_no_image_tools,
)
from tests.servers import RedisServer, free_port, missing, own_redis

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TAG = "opsloop:local"
UID = 10001
# Measured 298 MB on the Debian base of tests/image_build.py (deploy/README.md says so); the
# bound leaves room for dependency updates, not for a compiler or a second copy of the wheels.
SIZE_BOUND = 350 * 1024 * 1024
# Nothing listens there: the bot's calls to Slack fail at once instead of leaving the machine.
NO_SLACK = "http://127.0.0.1:9/api/"
SECRETS = {"SLACK_BOT_TOKEN": "xoxb-image-test", "SLACK_SIGNING_SECRET": "image-test-secret"}
TOKEN_VARIABLE = "OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN"


@pytest.fixture(scope="module")
def image(
    dockerd: DockerEngine, request: pytest.FixtureRequest, tmp_path_factory: Any
) -> BuiltImage:
    """The Dockerfile built once for the module, tagged opsloop:local."""
    reason = why_no_image_tools()
    if reason is not None:
        missing(reason)
    cache = Path(request.config.cache.mkdir("opsloop-image"))
    import_base(dockerd.client, base_tar(cache))
    wheels = wheelhouse(dockerd.client, cache)
    context = build_context(wheels, tmp_path_factory.mktemp("context"))
    try:
        return build_image(dockerd.client, context, TAG)
    finally:
        shutil.rmtree(context, ignore_errors=True)


@dataclass
class Running:
    container: Any
    port: int

    def get(self, path: str) -> tuple[int, str, str]:
        """Status, content type and body of GET http://127.0.0.1:<port><path>."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.headers["Content-Type"], r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers["Content-Type"], e.read().decode()

    def logs(self) -> str:
        return str(self.container.logs().decode(errors="replace"))


def run(engine: DockerEngine, *command: str, **env: str) -> Running:
    """`docker run -d --network host -e ... opsloop:local COMMAND` on a free port."""
    port = free_port()
    environment = {"OPSLOOP_PORT": str(port), "OPSLOOP_SLACK_API_URL": NO_SLACK, **env}
    container = engine.client.containers.run(
        TAG, list(command) or None, detach=True, network_mode="host", environment=environment
    )
    return Running(container, port)


def until(check: Any, within: float, what: str, running: Running | None = None) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            found = check()
        except (OSError, urllib.error.URLError):
            found = None
        if found:
            return found
        time.sleep(0.25)
    logs = running.logs()[-3000:] if running else ""
    raise AssertionError(f"not within {within} s: {what}\n{logs}")


def answers(running: Running, path: str, status: int) -> tuple[int, str, str] | None:
    found = running.get(path)
    return found if found[0] == status else None


def ready(running: Running) -> bool:
    return running.get("/readyz")[0] == 200


def health(container: Any) -> str:
    container.reload()
    return str(container.attrs["State"].get("Health", {}).get("Status", ""))


@pytest.fixture(scope="module")
def serving(dockerd: DockerEngine, image: BuiltImage, redis_server: RedisServer) -> Running:
    """`docker run opsloop:local` (serve, the default) on the module's Redis."""
    running = run(dockerd, OPSLOOP_REDIS_URL=redis_server.url, **SECRETS)
    until(lambda: ready(running), 60, "/readyz answers 200", running)
    return running


def test_serve_answers_health_readiness_and_prometheus_metrics(serving: Running) -> None:
    assert serving.get("/healthz")[0] == 200
    assert serving.get("/readyz")[0] == 200
    status, content_type, body = serving.get("/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert "# TYPE opsloop_jobs_queued gauge" in body
    assert "\nopsloop_jobs_queued " in body
    assert "listening on http://0.0.0.0:" in serving.logs(), "reachable from outside"


def test_dockers_healthcheck_turns_healthy(serving: Running) -> None:
    assert serving.container.attrs["Config"]["Healthcheck"]["Test"][1] == "python3"
    until(lambda: health(serving.container) == "healthy", 60, "healthy", serving)


async def test_readyz_answers_503_once_redis_is_gone_and_200_when_it_is_back(
    dockerd: DockerEngine, image: BuiltImage, tmp_path: Path
) -> None:
    async with own_redis(tmp_path) as server:
        running = run(dockerd, OPSLOOP_REDIS_URL=server.url, **SECRETS)
        until(lambda: ready(running), 60, "/readyz answers 200", running)
        server.stop()
        _, _, body = until(lambda: answers(running, "/readyz", 503), 10, "503", running)
        assert body == "redis: not answering\n"
        assert running.get("/healthz")[0] == 200, "alive, only not ready"
        server.start()  # the same port
        until(lambda: ready(running), 30, "/readyz answers 200 again", running)


def test_it_runs_as_a_fixed_user_that_is_not_root(dockerd: DockerEngine, image: BuiltImage) -> None:
    assert image.attrs["Config"]["User"] == f"{UID}:{UID}"
    out = dockerd.client.containers.run(TAG, entrypoint=["id"], remove=True).decode()
    assert out.startswith(f"uid={UID}(opsloop) gid={UID}(opsloop)")


def test_the_image_has_no_compiler_and_no_pip(dockerd: DockerEngine, image: BuiltImage) -> None:
    script = "for t in gcc cc c++ make ld pip pip3; do command -v $t; done; true"
    out = dockerd.client.containers.run(TAG, entrypoint=["sh", "-c", script], remove=True)
    assert out.decode() == "", f"build tools in the final image: {out.decode()}"


def test_its_size_is_under_the_bound(image: BuiltImage) -> None:
    assert image.size < SIZE_BOUND, f"{image.size / 2**20:.0f} MB"


def test_worker_starts_a_worker_that_beats_in_redis(
    dockerd: DockerEngine, image: BuiltImage, redis_server: RedisServer
) -> None:
    store = redis.Redis.from_url(redis_server.url)
    before = set(store.zrange("opsloop:workers", 0, -1))
    running = run(dockerd, "worker", OPSLOOP_REDIS_URL=redis_server.url, **SECRETS)
    assert running.container.attrs["Config"]["Cmd"] == ["worker"]
    line = until(
        lambda: next((x for x in running.logs().splitlines() if " worker " in x), None),
        60, "the worker's start line", running,
    )  # fmt: skip
    assert "job kinds" in line
    worker_id = line.split(" worker ")[1].split()[0]
    assert worker_id.encode() not in before
    until(lambda: store.zscore("opsloop:workers", worker_id), 20, "a heartbeat", running)
    # It serves no HTTP: the image's health check must not call it unhealthy for that.
    until(lambda: health(running.container) == "healthy", 40, "healthy", running)
    running.container.stop(timeout=10)
    assert running.container.wait(timeout=20)["StatusCode"] == 0, running.logs()
    assert store.zscore("opsloop:workers", worker_id) is None, "a clean stop says goodbye"


def test_with_no_redis_configured_it_serves_on_the_embedded_one(
    dockerd: DockerEngine, image: BuiltImage
) -> None:
    running = run(dockerd, **SECRETS)
    until(lambda: ready(running), 60, "/readyz answers 200", running)
    listing = dockerd.client.containers.run(
        TAG, entrypoint=["sh", "-c", "ls -ld /var/lib/opsloop"], remove=True
    ).decode()
    assert " opsloop opsloop " in listing, "the data directory is the user's"


def test_without_the_slack_tokens_it_says_which_are_missing(
    dockerd: DockerEngine, image: BuiltImage
) -> None:
    container = dockerd.client.containers.run(TAG, detach=True, network_mode="host")
    assert container.wait(timeout=30)["StatusCode"] == 2
    said = container.logs().decode()
    assert "SLACK_BOT_TOKEN: is required for this command" in said
    assert "SLACK_SIGNING_SECRET: is required for this command" in said
    assert "Traceback" not in said


def test_compose_brings_up_the_bot_and_a_worker_from_the_image(
    dockerd: DockerEngine, image: BuiltImage, redis_server: RedisServer, tmp_path: Path
) -> None:
    """The compose file's opsloop and worker services plus an override with the test's Redis.
    Redis, Alertmanager and Prometheus are not started: their official images cannot be pulled
    here (no registry is reachable). The test dockerd has no bridge, so in the copy every
    service uses the host's network (else Compose would make the project's network, a bridge
    on the host) and so publishes no ports (Docker refuses both together); nothing else
    changes."""
    if (reason := why_no_compose()) is not None:
        missing(reason)
    project = project_copy(tmp_path)
    original = yaml.safe_load((project / "docker-compose.yml").read_text())
    for service in original["services"].values():
        service.pop("ports", None)
        service["network_mode"] = "host"
    (project / "docker-compose.yml").write_text(yaml.safe_dump(original))
    port = free_port()
    env = {"OPSLOOP_REDIS_URL": redis_server.url, "OPSLOOP_SLACK_API_URL": NO_SLACK}
    override = {
        "version": "2.4",
        "services": {
            "opsloop": {"environment": {**env, "OPSLOOP_PORT": str(port)}},
            "worker": {"environment": env},
        },
    }
    (project / "override.yml").write_text(yaml.safe_dump(override))
    files = ("docker-compose.yml", "override.yml")
    name = f"opsloop-test-{port}"
    store = redis.Redis.from_url(redis_server.url)
    before = store.zcard("opsloop:workers")
    up = ("-p", name, "up", "-d", "--no-deps", "--no-build", "opsloop", "worker")
    compose(project, *up, files=files, docker_host=dockerd.url, timeout=180)
    try:
        bot = Running(dockerd.client.containers.get(f"{name}_opsloop_1"), port)
        until(lambda: ready(bot), 60, "the compose bot's /readyz answers 200", bot)
        worker = dockerd.client.containers.get(f"{name}_worker_1")
        assert worker.attrs["Config"]["Cmd"] == ["worker"]
        # serve's own in-process worker and the worker service's: two more heartbeats.
        until(lambda: store.zcard("opsloop:workers") >= before + 2, 30, "two heartbeats", bot)
        assert bot.container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        networks = {n.name for n in dockerd.client.networks.list()}
        assert networks <= {"host", "none"}, "no network (no bridge on the host) was made"
        mounts = {m["Destination"] for m in bot.container.attrs["Mounts"]}
        assert "/etc/opsloop/opsloop.yml" in mounts
    finally:
        compose(project, "-p", name, "down", "-v", files=files, docker_host=dockerd.url)


def test_the_compose_alertmanager_file_delivers_to_the_bot_with_the_env_token(
    dockerd: DockerEngine, image: BuiltImage, redis_server: RedisServer, tmp_path: Path
) -> None:
    """deploy/compose/alertmanager.yml and the alertmanager service's start script, run with
    Debian's Alertmanager against the image's bot, which has the token of `.env`. Changed for
    the host: the bot's address (`opsloop` resolves only in Compose's network), the token file's
    directory, and group_wait (30 s in the file) to 1 s."""
    binary = alertmanager_binary()
    if binary is None:
        missing("no alertmanager binary (apt-get install prometheus-alertmanager)")
    if (reason := why_no_compose()) is not None:
        missing(reason)
    assert binary is not None
    project = project_copy(tmp_path / "project")
    services: Any = resolved(project)["services"]
    token = services["opsloop"]["environment"]["OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN"]
    bot = run(dockerd, OPSLOOP_REDIS_URL=redis_server.url, **SECRETS, **{TOKEN_VARIABLE: token})
    until(lambda: ready(bot), 60, "/readyz answers 200", bot)

    server = AlertmanagerServer(binary, tmp_path / "alertmanager")
    server.directory.mkdir()
    secrets = server.directory / "run"
    secrets.mkdir()
    edits = {
        "http://opsloop:3000/": f"http://127.0.0.1:{bot.port}/",
        "/run/opsloop/": f"{secrets}/",
        "group_wait: 30s": "group_wait: 1s",
    }
    config = (project / "alertmanager.yml").read_text()
    for before, after in edits.items():
        assert before in config, before
        config = config.replace(before, after)
    server.config_file.write_text(config)
    # The start script's first part, which writes the token file from the environment.
    [script] = services["alertmanager"]["command"]
    write_token = (
        script.split(" && exec ")[0].replace("$$", "$").replace("/run/opsloop/", f"{secrets}/")
    )
    subprocess.run(
        ["sh", "-c", write_token], env=services["alertmanager"]["environment"], check=True
    )
    server.start()
    try:
        body = json.dumps([AlertmanagerServer.alert("ComposeWiring")]).encode()
        request = urllib.request.Request(
            server.url + "/api/v2/alerts", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
        accepted = re.compile(
            r'^opsloop_http_requests_total\{route="/hooks/alertmanager",status="202"\} [1-9]', re.M
        )
        until(lambda: accepted.search(bot.get("/metrics")[2]), 30, "the bot took it", bot)
        assert 'route="/hooks/alertmanager",status="401"' not in bot.get("/metrics")[2]
    finally:
        server.stop()
