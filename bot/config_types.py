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


_QUERY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _percentage(value: Any) -> float:
    """`20%` -> 0.2. A bare number is refused: 0.2 could mean 20% or 0.2%."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        number = float(text[:-1]) if text.endswith("%") else None
    except ValueError:
        number = None
    if number is None:
        raise ValueError(f"{value!r} is not a percentage; write it with %, e.g. 20%")
    if not 0 <= number <= 1000:
        raise ValueError(f"must be from 0% to 1000%, got {value!r}")
    return number / 100


class Analysis(Strict):
    """Canary evidence (`services.<name>.analysis`): queries measured for the canary and the
    stable version side by side on the approval message (bot/deploys/evidence.py). Every
    query is "higher is worse" (an error rate, a latency)."""

    # name -> PromQL returning one number; $version, $service and $namespace are substituted.
    queries: dict[str, str]
    # Canary worse than stable by more than this fraction (written `20%`): Approve refused.
    max_regression: Annotated[float, BeforeValidator(_percentage)] = 0.2
    # Queries that must answer: while one fails or returns nothing, Approve is refused.
    required: list[str] = Field(default_factory=list)

    @field_validator("queries")
    @classmethod
    def _named_queries(cls, queries: dict[str, str]) -> dict[str, str]:
        if not queries:
            raise ValueError("needs at least one query, e.g. `error_rate: '...'`")
        for name, query in queries.items():
            if not _QUERY_NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a query name: letters, digits and _, not starting "
                    "with a digit"
                )
            if not isinstance(query, str) or not query.strip():
                raise ValueError(f"query {name!r} is empty; write a PromQL expression")
        return queries

    @model_validator(mode="after")
    def _required_are_queries(self) -> Analysis:
        unknown = [n for n in self.required if n not in self.queries]
        if unknown:
            raise ValueError(
                f"required names {', '.join(unknown)}, which are not among the queries "
                f"({', '.join(self.queries)})"
            )
        return self


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
    analysis: Analysis | None = None  # canary evidence from Prometheus

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
