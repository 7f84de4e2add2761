"""A GitLab service's part of the YAML file (`services.<name>` with `deployer: gitlab`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from bot.config_types import CanaryStep, Service


class JobStep(CanaryStep):
    """A canary step made true by playing a manual job of the rollout's pipeline."""

    job: str | None = None


class GitLabService(Service):
    """Deployed by its own pipeline in `project`: each step plays `steps[n].job`."""

    deployer: Literal["gitlab"]
    project: str | None = None
    ref: str | None = None
    steps: Sequence[JobStep] = Field(default_factory=lambda: [JobStep(percent=100)])
    rollback_job: str | None = None

    @model_validator(mode="after")
    def _needs_a_project(self) -> GitLabService:
        if not self.project:
            raise ValueError("a gitlab service needs `project` (e.g. acme/api)")
        return self

    def destination(self) -> str:
        return f"GitLab {self.project}"
