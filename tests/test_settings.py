"""Settings: bad values stop start-up with a message naming the setting, never a trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config_load import load_config, parse_config
from bot.errors import SettingsError
from bot.settings import load_settings

SECRET = "xoxb-0000-this-is-secret"


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_port_names_the_variable(tmp_path: Path) -> None:
    result = run_cli(
        "serve", env={"OPSLOOP_PORT": "eighty", "PYTHONPATH": os.getcwd()}, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "OPSLOOP_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_slack_settings_for_serve(tmp_path: Path) -> None:
    result = run_cli("serve", env={"PYTHONPATH": os.getcwd()}, cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN: is required" in result.stderr
    assert "SLACK_SIGNING_SECRET: is required" in result.stderr


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(SLACK_BOT_TOKEN="xapp-" + SECRET)
    assert "SLACK_BOT_TOKEN" in str(e.value)
    assert SECRET not in str(e.value)


def test_redis_url_scheme() -> None:
    with pytest.raises(SettingsError, match="OPSLOOP_REDIS_URL"):
        load_settings(OPSLOOP_REDIS_URL="http://localhost:6379")
    for url in ("redis://h:1/0", "rediss://h:1", "unix:///tmp/r.sock", "redis+sentinel://h/m"):
        assert load_settings(OPSLOOP_REDIS_URL=url).redis_url == url


def test_yaml_errors_name_the_path() -> None:
    bad = {
        "services": {"web": {"deployer": "docker", "image": "x", "steps": [50, 25, 100]}},
        "alerts": {"routes": [{"channel": "alerts"}]},
        "roles": {"aprovers": ["U0BOB"]},
    }
    with pytest.raises(SettingsError) as e:
        parse_config(bad)
    text = str(e.value)
    assert "services.web.steps: percentages must rise" in text
    assert "alerts.routes[0].channel" in text
    assert "roles.aprovers: is not a known setting" in text


def test_contract_example_yaml_parses(tmp_path: Path) -> None:
    path = tmp_path / "opsloop.yml"
    path.write_text(
        """
roles:
  deployers: [U0ALICE]
  approvers: [U0BOB, S0SRE]
users: {U0ALICE: alice}
projects:
  web: {gitlab: acme/web, default_ref: main, channel: C0WEB, protected_refs: [main]}
services:
  web:
    deployer: docker
    image: registry.example.com/acme/web
    replicas: 4
    steps: [25, 50, 100]
    approvals: 1
    approval_timeout: 1h
    alert_labels: {service: web}
  api:
    deployer: gitlab
    project: acme/api
    ref: main
    steps: [{percent: 10, job: canary}, {percent: 100, job: production}]
alerts:
  ack_silence: 2h
  routes:
    - match: {severity: critical}
      channel: C0INCIDENT
      escalate_after: 10m
      escalate_to: [S0ONCALL]
    - channel: C0ALERTS
""",
        encoding="utf-8",
    )
    config = load_config(load_settings(OPSLOOP_CONFIG_FILE=str(path)))
    assert [s.percent for s in config.services["web"].steps] == [25, 50, 100]
    assert config.services["api"].steps[0].job == "canary"
    assert config.alerts.routes[0].escalate_after is not None
    assert config.alerts.routes[0].escalate_after.total_seconds() == 600


def test_unreadable_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("roles: [unclosed\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid YAML at line"):
        load_config(load_settings(OPSLOOP_CONFIG_FILE=str(path)))
