"""Credentials in URL settings and in exceptions never reach the output: `opsloop check` run as
a process, and the log filter over messages, exception messages and formatted tracebacks."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging
from bot.settings import load_settings
from tests.harness import running_emulator
from tests.servers import free_port
from tests.test_processes import clean_env, opsloop

PASSWORD = "Hunter2"


@pytest.mark.parametrize(
    ("setting", "value", "shown"),
    [
        (
            "OPSLOOP_REDIS_URL",
            f"redis-sentinal://:{PASSWORD}@127.0.0.1:6379/0",
            "'redis-sentinal://***@127.0.0.1:6379/0'",
        ),
        (
            "OPSLOOP_REDIS_URL",
            f"redis://:{PASSWORD}@127.0.0.1:port/0",
            "has a port that is not a number",
        ),
        (
            "OPSLOOP_REDIS_URL",
            f"redis+sentinel://:{PASSWORD}@10.0.0.1:26379,10.0.0.2:26379",
            "needs the Sentinel service name",
        ),
        (
            "OPSLOOP_GITLAB_URL",
            f"ftp://bob:{PASSWORD}@gitlab.example.com",
            "'ftp://***@gitlab.example.com'",
        ),
        ("OPSLOOP_SLACK_API_URL", f"slack://x:{PASSWORD}@slack.com/api/", "http:// or https://"),
        (
            "OPSLOOP_ALERTMANAGER_URL",
            f"https://am:{PASSWORD}@am.example.com:x",
            "has a port that is not a number",
        ),
        ("OPSLOOP_DOCKER_HOST", f"tcp://d:{PASSWORD}@docker:2376", "must not carry a password"),
        ("OPSLOOP_DOCKER_HOST", f"docker://d:{PASSWORD}@docker:2376", "unix://, tcp://"),
    ],
)
async def test_a_bad_url_setting_is_named_without_its_userinfo(
    setting: str, value: str, shown: str
) -> None:
    code, out, err = await opsloop("check", env=clean_env(**{setting: value}))
    assert code == 2, out + err
    assert f"{setting}: " in err and shown in err, err
    assert PASSWORD not in out + err
    assert "Traceback" not in out + err


async def test_check_shows_urls_that_fail_without_their_passwords(redis_url: str) -> None:
    dead = free_port()
    async with running_emulator() as emu:
        env = clean_env(
            SLACK_BOT_TOKEN=emu.bot_token,
            OPSLOOP_SLACK_API_URL=emu.api_url,
            OPSLOOP_REDIS_URL=f"redis://:{PASSWORD}@127.0.0.1:{dead}/0",
            OPSLOOP_GITLAB_URL=f"http://bob:{PASSWORD}@127.0.0.1:{dead}",
            OPSLOOP_GITLAB_TOKEN="glpat-secret-value",
            OPSLOOP_ALERTMANAGER_URL=f"http://am:{PASSWORD}@127.0.0.1:{dead}/",
        )
        code, out, err = await opsloop("check", env=env)
    assert code == 1, out + err
    lines = out.splitlines()
    for system in ("redis", "gitlab", "alertmanager"):
        assert any(line.startswith("FAIL") and system in line for line in lines), out
    assert PASSWORD not in out + err and "glpat-secret-value" not in out + err
    assert "Traceback" not in out + err


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers: put them back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_the_log_filter_masks_secrets_in_messages_exceptions_and_tracebacks(
    root_logging: None,
) -> None:
    token = "xoxb-1234-super-secret-token"
    settings = load_settings(
        SLACK_BOT_TOKEN=token, OPSLOOP_REDIS_URL=f"redis://:{PASSWORD}x@127.0.0.1:6379/0"
    )
    out = io.StringIO()
    configure_logging(settings, stream=out)
    log = logging.getLogger("bot.somewhere")

    def fail() -> None:
        # The secrets are in the exception's message and in this source line of the traceback.
        raise RuntimeError(
            "auth failed for xoxb-1234-super-secret-token at https://bob:pw1@gitlab.example.com"
        )

    try:
        fail()
    except RuntimeError:
        log.exception("calling %s failed", f"https://alice:{PASSWORD}@gitlab.example.com/api")
    log.warning("the token is %s, Redis's password %sx", token, PASSWORD)
    try:
        fail()
    except RuntimeError as e:
        log.error("once more", exc_info=e)
    text = out.getvalue()
    assert "Traceback" in text and "RuntimeError: auth failed for ***" in text
    assert "https://bob:***@gitlab.example.com" in text
    assert "https://alice:***@gitlab.example.com/api" in text
    assert "the token is ***, Redis's password ***" in text
    assert token not in text and PASSWORD not in text and "pw1" not in text
