"""The YAML file (`OPSLOOP_CONFIG_FILE`): roles, users, projects, services and alert routes.

Field names are part of the public contract (CONTRACT.md). Unknown keys are refused so that a
typo such as `aprovals:` stops start-up instead of being silently ignored.

A service's keys depend on its `deployer`: each plugin brings the model of the values it serves
(integrations/<system>/config.py), and `config_model` makes the file's model from them, with
`services` a union chosen by `deployer`. `OpsConfig` itself types `services` by the part every
deployer shares (bot/config_types.py), which is all the families read.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Mapping
from datetime import timedelta
from types import GenericAlias
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, create_model, model_validator

from bot.config_types import (
    CanaryStep,
    ChannelId,
    Duration,
    Service,
    SlackPrincipal,
    Strict,
)


class Roles(Strict):
    deployers: list[SlackPrincipal] = Field(default_factory=list)
    approvers: list[SlackPrincipal] = Field(default_factory=list)


# A Jira project key: a capital letter, then capitals, digits or underscores.
JIRA_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,254}$")


def _jira_key(value: Any) -> Any:
    if isinstance(value, str) and not JIRA_KEY.match(value):
        raise ValueError(
            f"`{value}` is not a Jira project key; write the key as Jira shows it in issue "
            "references (WEB for WEB-12)"
        )
    return value


class Project(Strict):
    gitlab: str = ""  # empty only for a project other systems serve (`jenkins`, `jira`)
    jenkins: str | None = Field(
        default=None, min_length=1
    )  # a Jenkins job's full name: builds there
    jira: Annotated[str | None, BeforeValidator(_jira_key)] = (
        None  # its tasks go to this Jira project
    )
    default_ref: str | None = None
    channel: ChannelId | None = None
    protected_refs: list[str] | None = None
    notify_failed_default_branch: bool = False

    @model_validator(mode="after")
    def _has_a_home(self) -> Project:
        if not self.gitlab and not self.jenkins and not self.jira:
            raise ValueError(
                "a project needs `gitlab: <group/project>`, `jenkins: <job path>` or `jira: <KEY>`"
            )
        return self

    @property
    def ci_path(self) -> str:
        """The project as its CI system knows it: the Jenkins job when set, else GitLab's."""
        return self.jenkins or self.gitlab

    @property
    def tracker(self) -> tuple[str, str]:
        """Where the project's tasks are filed: ("jira", "WEB") when it names a Jira project
        (its code may still be on GitLab), else ("gitlab", "acme/web")."""
        return ("jira", self.jira) if self.jira else ("gitlab", self.gitlab)


class AlertRoute(Strict):
    match: dict[str, str] = Field(default_factory=dict)
    channel: ChannelId
    escalate_after: Duration | None = None
    escalate_to: list[SlackPrincipal] = Field(default_factory=list)


class Alerts(Strict):
    ack_silence: Duration = timedelta(hours=2)
    routes: list[AlertRoute] = Field(default_factory=list)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _digest_at(value: Any) -> Any:
    """`mon 09:00`: a weekday and a UTC time of day, normalised to that form."""
    text = " ".join(str(value).lower().split()) if value is not None else value
    if text is None:
        return None
    day, _, clock = text.partition(" ")
    hours, _, minutes = clock.partition(":")
    ok = (
        any(day in (w, w[:3]) for w in WEEKDAYS)
        and hours.isdigit()
        and minutes.isdigit()
        and len(minutes) == 2
    )
    if not ok or int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f'"{value}" is not a weekday and a UTC time; write e.g. "mon 09:00"')
    return f"{day[:3]} {int(hours):02d}:{minutes}"


class Feedback(Strict):
    """The delivery figures (/ops dora) and their weekly digest (docs/dora.md)."""

    digest_channel: ChannelId | None = None  # unset: no digest
    digest_at: Annotated[str, BeforeValidator(_digest_at)] = "mon 09:00"  # UTC
    # A rollout followed by an alert on its service within this long counts as failed.
    failure_window: Duration = timedelta(hours=1)


class OpsConfig(Strict):
    """The whole YAML file, typed."""

    roles: Roles = Field(default_factory=Roles)
    users: dict[str, str] = Field(default_factory=dict)
    projects: dict[str, Project] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    alerts: Alerts = Field(default_factory=Alerts)
    feedback: Feedback = Field(default_factory=Feedback)


def _no_deployer(value: Any) -> Any:
    raise ValueError("no deployer is known to this opsloop, so it has no services")


def config_model(models: Mapping[str, type[Service]]) -> type[OpsConfig]:
    """The YAML file's model when `models` are the services by `deployer` value."""
    return _config_model(tuple(sorted(models.items())))


@functools.cache
def _config_model(models: tuple[tuple[str, type[Service]], ...]) -> type[OpsConfig]:
    service: Any
    if not models:
        service = Annotated[Service, BeforeValidator(_no_deployer)]
    elif len(models) == 1:
        service = models[0][1]  # its `deployer: Literal[...]` refuses any other value
    else:
        union = functools.reduce(operator.or_, (model for _, model in models))
        service = Annotated[union, Field(discriminator="deployer")]
    services: Any = GenericAlias(dict, (str, service))  # dict[str, service], made at run time
    return create_model(
        "OpsConfig",
        __base__=OpsConfig,
        __module__=__name__,
        services=(services, Field(default_factory=dict)),
    )


__all__ = [
    "AlertRoute",
    "Alerts",
    "CanaryStep",
    "Feedback",
    "OpsConfig",
    "Project",
    "Roles",
    "Service",
    "config_model",
]
