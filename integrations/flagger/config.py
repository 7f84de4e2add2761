"""A Flagger service's part of the YAML file (`services.<name>` with `deployer: flagger`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.config_types import Service

# Kubernetes object names: a namespace is a DNS label, a Canary a DNS subdomain (RFC 1123).
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class FlaggerService(Service):
    """A Canary that Flagger runs; opsloop is its webhook gate. Flagger's analysis has its own
    steps, so `steps` is not taken; `channel` is, since no command says where to ask."""

    deployer: Literal["flagger"]
    namespace: str = Field(default="default", max_length=63)
    canary: str = Field(max_length=253)
    image: str | None = None  # lets /deploy set the target's image, once opsloop can

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _LABEL.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Kubernetes namespace: lower-case letters, digits and `-`"
            )
        return value

    @field_validator("canary")
    @classmethod
    def _canary(cls, value: str) -> str:
        if not _SUBDOMAIN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Canary's name: lower-case letters, digits, `-` and `.`"
            )
        return value

    @model_validator(mode="after")
    def _no_steps_and_a_channel(self) -> FlaggerService:
        if self.channel is None:  # no command says where: Flagger's calls are asked here
            raise ValueError(
                "a flagger service needs `channel` (C...): where opsloop asks for approval "
                "when Flagger calls its gate"
            )
        if "steps" in self.model_fields_set:
            raise ValueError(
                "a flagger service takes no `steps`: Flagger runs the canary's steps "
                "(the Canary's `analysis`), and opsloop answers its gates"
            )
        return self

    def destination(self) -> str:
        return f"Flagger canary {self.namespace}/{self.canary}"
