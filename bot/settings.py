"""Settings from the environment and `.env`, validated once at start-up (the YAML file is
read by bot/config_load.py, against the plugins' service models).

A bad value stops start-up with a message that names the setting as the user wrote it: the
environment variable (`OPSLOOP_PORT`) or the YAML path (`services.web.steps`). Secret values are
`SecretStr`, so they never reach a log, a repr or an error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import SettingsError
from bot.redact import hide_userinfo

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")
# What the Docker SDK takes (docker/utils/utils.py `parse_host`).
DOCKER_SCHEMES = ("unix", "tcp", "ssh", "npipe", "http", "https", "http+unix")
SECRET_FIELDS = frozenset(
    {
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "gitlab_token",
        "gitlab_webhook_secret",
        "alertmanager_webhook_token",
        "flagger_webhook_token",
        "jenkins_token",
        "jenkins_webhook_token",
        "grafana_token",
        "grafana_webhook_secret",
        "jira_token",
    }
)


class Settings(BaseSettings):
    """Every environment setting of CONTRACT.md, plus a few tuning knobs documented in README."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="OPSLOOP_SLACK_API_URL")
    redis_url: str | None = Field(None, validation_alias="OPSLOOP_REDIS_URL")
    data_dir: Path = Field(Path(".opsloop"), validation_alias="OPSLOOP_DATA_DIR")
    host: str = Field("127.0.0.1", validation_alias="OPSLOOP_HOST")
    port: int = Field(3000, ge=1, le=65535, validation_alias="OPSLOOP_PORT")
    config_file: Path | None = Field(None, validation_alias="OPSLOOP_CONFIG_FILE")
    gitlab_url: str | None = Field(None, validation_alias="OPSLOOP_GITLAB_URL")
    gitlab_token: SecretStr | None = Field(None, validation_alias="OPSLOOP_GITLAB_TOKEN")
    gitlab_webhook_secret: SecretStr | None = Field(
        None, validation_alias="OPSLOOP_GITLAB_WEBHOOK_SECRET"
    )
    docker_host: str | None = Field(
        None, validation_alias=AliasChoices("OPSLOOP_DOCKER_HOST", "DOCKER_HOST")
    )
    # Kubernetes: unset, the pod's service account, else KUBECONFIG, else ~/.kube/config.
    kubeconfig: Path | None = Field(None, validation_alias="OPSLOOP_KUBECONFIG")
    kube_context: str | None = Field(None, validation_alias="OPSLOOP_KUBE_CONTEXT")
    alertmanager_url: str | None = Field(None, validation_alias="OPSLOOP_ALERTMANAGER_URL")
    alertmanager_webhook_token: SecretStr | None = Field(
        None, validation_alias="OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN"
    )
    flagger_webhook_token: SecretStr | None = Field(
        None, validation_alias="OPSLOOP_FLAGGER_WEBHOOK_TOKEN"
    )
    prometheus_url: str | None = Field(None, validation_alias="OPSLOOP_PROMETHEUS_URL")
    jenkins_url: str | None = Field(None, validation_alias="OPSLOOP_JENKINS_URL")
    jenkins_user: str | None = Field(None, validation_alias="OPSLOOP_JENKINS_USER")
    jenkins_token: SecretStr | None = Field(None, validation_alias="OPSLOOP_JENKINS_TOKEN")
    jenkins_webhook_token: SecretStr | None = Field(
        None, validation_alias="OPSLOOP_JENKINS_WEBHOOK_TOKEN"
    )
    grafana_url: str | None = Field(None, validation_alias="OPSLOOP_GRAFANA_URL")
    grafana_token: SecretStr | None = Field(None, validation_alias="OPSLOOP_GRAFANA_TOKEN")
    grafana_webhook_secret: SecretStr | None = Field(
        None, validation_alias="OPSLOOP_GRAFANA_WEBHOOK_SECRET"
    )
    # Jira: Cloud takes the account's e-mail and an API token (basic auth); Data Center a
    # personal access token alone (bearer), so the e-mail stays unset there.
    jira_url: str | None = Field(None, validation_alias="OPSLOOP_JIRA_URL")
    jira_email: str | None = Field(None, validation_alias="OPSLOOP_JIRA_EMAIL")
    jira_token: SecretStr | None = Field(None, validation_alias="OPSLOOP_JIRA_TOKEN")
    # Tuning knobs, not in the contract; README lists them.
    log_level: str = Field("INFO", validation_alias="OPSLOOP_LOG_LEVEL")
    job_timeout: float = Field(60.0, gt=0, le=3600, validation_alias="OPSLOOP_JOB_TIMEOUT")
    channel_rate: float = Field(1.0, gt=0, le=100, validation_alias="OPSLOOP_CHANNEL_RATE")
    channel_burst: int = Field(3, ge=1, le=100, validation_alias="OPSLOOP_CHANNEL_BURST")
    alert_poll_seconds: float = Field(
        30.0, ge=0.2, le=3600, validation_alias="OPSLOOP_ALERT_POLL_SECONDS"
    )
    storm_threshold: int = Field(10, ge=1, le=10_000, validation_alias="OPSLOOP_STORM_THRESHOLD")
    deploy_step_timeout: float = Field(
        600.0, ge=1, le=7200, validation_alias="OPSLOOP_DEPLOY_STEP_TIMEOUT"
    )
    deploy_lease_seconds: float = Field(
        30.0, ge=1, le=600, validation_alias="OPSLOOP_DEPLOY_LEASE_SECONDS"
    )
    deploy_poll_seconds: float = Field(
        2.0, ge=0.1, le=600, validation_alias="OPSLOOP_DEPLOY_POLL_SECONDS"
    )
    # How often the canary's evidence is measured again while its approval request waits.
    evidence_seconds: float = Field(
        30.0, ge=1, le=3600, validation_alias="OPSLOOP_EVIDENCE_SECONDS"
    )
    build_poll_seconds: float = Field(
        5.0, ge=0.1, le=600, validation_alias="OPSLOOP_BUILD_POLL_SECONDS"
    )
    # How long a create that got no answer may still complete in the other system (GitLab's
    # own request time-out is 60 s): until then opsloop only looks for it, never makes it again.
    settle_seconds: float = Field(90.0, ge=1, le=3600, validation_alias="OPSLOOP_SETTLE_SECONDS")
    # One GitLab call, every retry included, so that the person hears within 30 s.
    gitlab_call_seconds: float = Field(
        24.0, ge=1, le=28, validation_alias="OPSLOOP_GITLAB_CALL_SECONDS"
    )

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb- (OAuth & Permissions page)")
        return v

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp- (Basic Information)")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        parts = _split_url(v)
        if parts.scheme not in REDIS_SCHEMES:
            raise ValueError(
                "must start with redis://, rediss://, unix:// or redis+sentinel://, "
                "or be unset for the embedded Redis"
            )
        if parts.scheme == "redis+sentinel":
            _check_sentinel(parts)
        else:
            _check_port(parts)
        return v

    @field_validator(
        "slack_api_url",
        "gitlab_url",
        "alertmanager_url",
        "prometheus_url",
        "grafana_url",
        "jira_url",
    )
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        parts = _split_url(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        _check_port(parts)
        return v

    @field_validator("docker_host")
    @classmethod
    def _docker_host(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if "://" not in v:
            return v  # host:port, which the Docker SDK reads as tcp://host:port
        parts = _split_url(v)
        if parts.scheme not in DOCKER_SCHEMES:
            raise ValueError("must be a unix://, tcp://, ssh:// or npipe:// address")
        if parts.password is not None:
            raise ValueError("must not carry a password (Docker does not take one)")
        if parts.scheme != "npipe":
            _check_port(parts)
        return v

    @field_validator("kubeconfig", "kube_context", mode="before")
    @classmethod
    def _unset_when_empty(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        if v.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v.upper()

    def secret(self, name: str) -> str | None:
        """The plain value of a secret setting, for the one place that needs it."""
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else None

    @property
    def slack_api_base(self) -> str:
        url = self.slack_api_url or "https://slack.com/api/"
        return url if url.endswith("/") else url + "/"


def _split_url(value: str) -> SplitResult:
    try:
        return urlsplit(value)
    except ValueError:  # an unclosed [ of an IPv6 address
        raise ValueError("is not a URL (an IPv6 address's [ is not closed)") from None


def _check_port(parts: SplitResult) -> None:
    try:
        parts.port  # noqa: B018  # parsed on access; raises on "host:abc"
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None


def _check_sentinel(parts: SplitResult) -> None:
    """`redis+sentinel://[:password@]host[:port][,host2[:port]]/service[/db]`."""
    for host in parts.netloc.rsplit("@", 1)[-1].split(","):
        port = host.partition(":")[2]
        if port and not (port.isdecimal() and port.isascii() and int(port) <= 65535):
            raise ValueError("has a Sentinel port that is not a number from 0 to 65535")
    if not [p for p in parts.path.split("/") if p]:
        raise ValueError(
            "needs the Sentinel service name, "
            "e.g. redis+sentinel://sentinel1:26379,sentinel2:26379/mymaster"
        )


def _shown(value: Any) -> str:
    """A rejected value as an error quotes it: any URL in it without its userinfo."""
    return repr(hide_userinfo(value)) if isinstance(value, str) else repr(value)


def env_name(field: str) -> str:
    """The environment variable a Settings field is read from."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias or field.upper())


def _settings_error(exc: ValidationError) -> SettingsError:
    lines = []
    for err in exc.errors():
        loc = str(err["loc"][0]) if err["loc"] else ""
        # pydantic reports the alias it read (the variable name); map it back to the field.
        field = next((f for f in Settings.model_fields if env_name(f) == loc), loc)
        name = env_name(field) if field in Settings.model_fields else loc
        message = str(err["msg"]).removeprefix("Value error, ")
        shown = "" if field in SECRET_FIELDS else f" (got {_shown(err.get('input'))})"
        lines.append(f"{name}: {message}{shown}")
    return SettingsError("\n".join(lines))


def load_settings(**overrides: Any) -> Settings:
    """Read the environment and `.env`; raise SettingsError naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise _settings_error(e) from None


def config_path(settings: Settings) -> Path | None:
    """The YAML file in use: OPSLOOP_CONFIG_FILE, else ./opsloop.yml when present."""
    if settings.config_file is not None:
        return settings.config_file
    default = Path("opsloop.yml")
    return default if default.is_file() else None


def require(settings: Settings, *fields: str) -> None:
    """Stop start-up when a setting the chosen process needs is missing."""
    missing = [env_name(f) for f in fields if not getattr(settings, f)]
    if missing:
        raise SettingsError("\n".join(f"{m}: is required for this command" for m in missing))
