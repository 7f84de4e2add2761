"""deploy/compose/: Debian's docker-compose reads it with `.env` copied from `.env.example`,
and its wiring holds: the worker runs `worker` from the bot's image, Redis keeps an append-only
file on a volume, Alertmanager posts to the bot's /hooks/alertmanager with the token the bot
expects, Prometheus scrapes the bot's /metrics and loads opsloop's rules. Alertmanager's and
Prometheus's own checkers (amtool, promtool) accept the files. (`up` runs in
tests/test_image.py, which builds the image.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose_project import RULES, project_copy, resolved, why_no_compose
from tests.image_build import REPO
from tests.servers import missing

SERVICES = {"opsloop", "worker", "redis", "alertmanager", "prometheus"}


def image_port() -> int:
    """The port the image's bot listens on (the Dockerfile's OPSLOOP_PORT)."""
    found = re.search(r"OPSLOOP_PORT=(\d+)", (REPO / "Dockerfile").read_text())
    assert found, "the Dockerfile sets OPSLOOP_PORT"
    return int(found.group(1))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    reason = why_no_compose()
    if reason is not None:
        missing(reason)
    return project_copy(tmp_path)


@pytest.fixture
def services(project: Path) -> dict[str, Any]:
    config = resolved(project)
    found = config["services"]
    assert isinstance(found, dict)
    return found


def mounted(service: dict[str, Any], target: str) -> Path:
    """The host file a service mounts at `target`."""
    for volume in service["volumes"]:
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target:
            return Path(source)
    raise AssertionError(f"nothing is mounted at {target}: {service['volumes']}")


def test_compose_reads_the_file_with_the_example_env(services: dict[str, Any]) -> None:
    assert set(services) == SERVICES
    for name in ("opsloop", "worker", "redis", "alertmanager", "prometheus"):
        assert services[name]["restart"] == "unless-stopped", name
    for name in ("redis", "alertmanager", "prometheus"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name


def test_serve_and_the_worker_run_the_bots_image_on_the_composes_redis(
    services: dict[str, Any],
) -> None:
    bot, worker = services["opsloop"], services["worker"]
    assert bot["image"] == worker["image"] == "opsloop:local"
    assert bot["command"] == ["serve"] and worker["command"] == ["worker"]
    assert Path(bot["build"]["context"]) == Path(worker["build"]["context"])
    assert (Path(bot["build"]["context"]) / "deploy" / "compose").is_dir(), "the repo's root"
    for service in (bot, worker):
        env = service["environment"]
        assert env["OPSLOOP_REDIS_URL"] == "redis://redis:6379/0"
        assert env["SLACK_BOT_TOKEN"] == "xoxb-replace-me", "secrets come from .env"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        config = mounted(service, env["OPSLOOP_CONFIG_FILE"])
        assert config == Path(bot["build"]["context"]) / "deploy" / "compose" / "opsloop.yml"
    [port] = bot["ports"]
    assert port["target"] == image_port() and port["published"] == 3000
    assert "ports" not in worker, "a worker serves nothing"


def test_redis_keeps_an_append_only_file_on_a_volume(services: dict[str, Any]) -> None:
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "redis-data:/data:rw" in redis["volumes"]


def test_alertmanager_posts_to_the_bots_route_with_the_bots_token(
    project: Path, services: dict[str, Any]
) -> None:
    alertmanager = services["alertmanager"]
    config = yaml.safe_load(mounted(alertmanager, "/etc/alertmanager/alertmanager.yml").read_text())
    [receiver] = [r for r in config["receivers"] if r["name"] == config["route"]["receiver"]]
    [webhook] = receiver["webhook_configs"]
    assert webhook["url"] == f"http://opsloop:{image_port()}/hooks/alertmanager"
    authorization = webhook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    # The token file is written at start from the same .env variable the bot reads.
    token_file = authorization["credentials_file"]
    [script] = alertmanager["command"]
    assert f'printf %s "$$OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN" > {token_file}' in script
    assert Path(token_file).parent.as_posix() in alertmanager["tmpfs"]
    token = alertmanager["environment"]["OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN"]
    assert token == services["opsloop"]["environment"]["OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN"]
    assert token == "replace-me-with-a-long-random-string"
    assert services["opsloop"]["environment"]["OPSLOOP_ALERTMANAGER_URL"] == (
        "http://alertmanager:9093"
    )


def test_prometheus_scrapes_the_bot_and_loads_opsloops_rules(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    config_file = mounted(prometheus, "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_file.read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "opsloop"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"opsloop:{image_port()}"]
    # Rule files are read relative to the config file: the rules are mounted beside it.
    [rules] = config["rule_files"]
    source = mounted(prometheus, f"/etc/prometheus/{rules}")
    assert source.parts[-3:] == RULES.parts[-3:]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


def test_every_variable_is_in_the_example_and_env_stays_out_of_git(project: Path) -> None:
    example = (project / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, flags=re.M))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (project / "docker-compose.yml").read_text()))
    assert used <= listed, f"not in .env.example: {used - listed}"
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"} <= listed
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/compose/.env"], cwd=REPO, check=False
    )
    assert ignored.returncode == 0, "deploy/compose/.env is ignored by git"


def test_amtool_accepts_the_alertmanager_file(project: Path) -> None:
    if shutil.which("amtool") is None:
        missing("amtool is not installed (apt-get install prometheus-alertmanager)")
    done = subprocess.run(
        ["amtool", "check-config", str(project / "alertmanager.yml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_prometheus_file_with_the_rules(project: Path, tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        missing("promtool is not installed (apt-get install prometheus)")
    # As mounted in the container: the rules file beside prometheus.yml.
    here = tmp_path / "etc-prometheus"
    here.mkdir()
    shutil.copy2(project / "prometheus.yml", here / "prometheus.yml")
    shutil.copy2(project.parent / "monitoring" / RULES.name, here / RULES.name)
    done = subprocess.run(
        ["promtool", "check", "config", str(here / "prometheus.yml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout + done.stderr
