"""The YAML file's shared types: durations, Slack IDs, the strict base, and the part of a
service (`services.<name>`) every deployer shares.

bot/config_file.py builds the file from these, and each plugin's service model
(integrations/<system>/config.py) extends `Service` with its own keys; neither imports the
other, so this module imports nothing of the bot but durations.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any

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


class Strict(BaseModel):
    """Unknown keys are refused, so that a typo such as `aprovals:` stops start-up instead of
    being silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CanaryStep(Strict):
    """One canary step (`services.<name>.steps[n]`): the new version's share."""

    percent: int = Field(ge=1, le=100)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `steps: [25, 50, 100]` is shorthand for `[{percent: 25}, ...]`.
        if isinstance(value, int) and not isinstance(value, bool):
            return {"percent": value}
        return value


class Service(Strict):
    """A service's settings (`services.<name>`) that every deployer shares.

    Each plugin's model extends it with `deployer: Literal["<its value>"]` and its own keys;
    the YAML file picks the model by `deployer`.
    """

    deployer: str
    steps: Sequence[CanaryStep] = Field(default_factory=lambda: [CanaryStep(percent=100)])
    approvals: int = Field(default=1, ge=1, le=10)
    approvers: list[SlackPrincipal] | None = None
    approval_timeout: Duration = timedelta(hours=1)
    alert_labels: dict[str, str] = Field(default_factory=dict)
    channel: ChannelId | None = None

    @field_validator("steps")
    @classmethod
    def _steps_rise_to_100(cls, steps: Sequence[CanaryStep]) -> Sequence[CanaryStep]:
        percents = [s.percent for s in steps]
        if not percents:
            raise ValueError("needs at least one step, ending at 100")
        if any(b <= a for a, b in itertools.pairwise(percents)):
            raise ValueError(f"percentages must rise step by step, got {percents}")
        if percents[-1] != 100:
            raise ValueError(f"the last step must be 100, got {percents[-1]}")
        return steps

    def destination(self) -> str:
        """Where the service deploys to, in a few words ("Docker registry/acme/web")."""
        return self.deployer
