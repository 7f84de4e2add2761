"""The YAML file (`OPSLOOP_CONFIG_FILE`): roles, users, projects, services and alert routes.

Field names are part of the public contract (CONTRACT.md). Unknown keys are refused so that a
typo such as `aprovals:` stops start-up instead of being silently ignored.
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.durations import parse_duration

_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError("must be longer than zero")
        return timedelta(seconds=value)
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError("write a duration like 30s, 10m, 1h or 2d")


def _slack_principal(value: Any) -> str:
    if not isinstance(value, str) or not _SLACK_ID.match(value):
        raise ValueError(
            f"{value!r} is not a Slack user ID (U...) or user-group ID (S...); "
            "copy it from the person's or group's profile"
        )
    return value


def _channel(value: Any) -> str:
    if not isinstance(value, str) or not _CHANNEL_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack channel ID (C...); copy it from the channel")
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
SlackPrincipal = Annotated[str, BeforeValidator(_slack_principal)]
ChannelId = Annotated[str, BeforeValidator(_channel)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Roles(_Strict):
    deployers: list[SlackPrincipal] = Field(default_factory=list)
    approvers: list[SlackPrincipal] = Field(default_factory=list)


class Project(_Strict):
    gitlab: str = Field(min_length=1)
    default_ref: str | None = None
    channel: ChannelId | None = None
    protected_refs: list[str] | None = None
    notify_failed_default_branch: bool = False


class CanaryStep(_Strict):
    percent: int = Field(ge=1, le=100)
    job: str | None = None


def _step(value: Any) -> Any:
    # `steps: [25, 50, 100]` is shorthand for `[{percent: 25}, ...]`.
    if isinstance(value, int) and not isinstance(value, bool):
        return {"percent": value}
    return value


class Service(_Strict):
    deployer: Literal["docker", "gitlab"]
    image: str | None = None
    replicas: int = Field(default=1, ge=1, le=100)
    steps: list[Annotated[CanaryStep, BeforeValidator(_step)]] = Field(
        default_factory=lambda: [CanaryStep(percent=100)]
    )
    approvals: int = Field(default=1, ge=1, le=10)
    approvers: list[SlackPrincipal] | None = None
    approval_timeout: Duration = timedelta(hours=1)
    alert_labels: dict[str, str] = Field(default_factory=dict)
    container: dict[str, Any] = Field(default_factory=dict)
    channel: ChannelId | None = None
    project: str | None = None
    ref: str | None = None
    rollback_job: str | None = None

    @field_validator("steps")
    @classmethod
    def _steps_rise_to_100(cls, steps: list[CanaryStep]) -> list[CanaryStep]:
        percents = [s.percent for s in steps]
        if not percents:
            raise ValueError("needs at least one step, ending at 100")
        if any(b <= a for a, b in itertools.pairwise(percents)):
            raise ValueError(f"percentages must rise step by step, got {percents}")
        if percents[-1] != 100:
            raise ValueError(f"the last step must be 100, got {percents[-1]}")
        return steps

    @model_validator(mode="after")
    def _deployer_needs(self) -> Service:
        if self.deployer == "docker" and not self.image:
            raise ValueError("a docker service needs `image` (e.g. registry.example.com/acme/web)")
        if self.deployer == "gitlab" and not self.project:
            raise ValueError("a gitlab service needs `project` (e.g. acme/api)")
        return self


class AlertRoute(_Strict):
    match: dict[str, str] = Field(default_factory=dict)
    channel: ChannelId
    escalate_after: Duration | None = None
    escalate_to: list[SlackPrincipal] = Field(default_factory=list)


class Alerts(_Strict):
    ack_silence: Duration = timedelta(hours=2)
    routes: list[AlertRoute] = Field(default_factory=list)


class OpsConfig(_Strict):
    """The whole YAML file, typed."""

    roles: Roles = Field(default_factory=Roles)
    users: dict[str, str] = Field(default_factory=dict)
    projects: dict[str, Project] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    alerts: Alerts = Field(default_factory=Alerts)
