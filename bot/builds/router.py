"""One `CISystem` over several: each project's calls go to the CI system that builds it (a
project with a Jenkins job to Jenkins, the others to GitLab), chosen by the project path each
call names. The wiring makes one when more than one CI system is started (bot/plugins.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bot.builds.ports import CISystem, Run, RunJob, TestSummary
from bot.errors import UserError

Serves = Callable[[str], bool]  # whether a CI system builds this project path


def system_for(ci: CISystem | None, project: str) -> CISystem | None:
    """The one CI system that builds `project` (through a router, its pick), or None; for
    readers of a system's other capabilities (the code host's compare, bot/feedback)."""
    if isinstance(ci, CIRouter):
        try:
            return ci.pick(project)
        except UserError:
            return None
    return ci


class CIRouter:
    """`CISystem` that passes each call to the first system serving its project; a system
    given without a test (None) serves every other project. With none for a project, each call
    is refused with `missing` (what to configure)."""

    def __init__(self, systems: Sequence[tuple[Serves | None, CISystem]], missing: str) -> None:
        self._systems = list(systems)
        self._missing = missing

    @property
    def system(self) -> str:
        return " / ".join(dict.fromkeys(s.system for _, s in self._systems))

    def pick(self, project: str) -> CISystem:
        for serves, system in self._systems:
            if serves is not None and serves(project):
                return system
        fallback = [s for serves, s in self._systems if serves is None]
        if not fallback:
            raise UserError(self._missing)
        return fallback[0]

    async def ref_exists(self, project: str, ref: str) -> str | None:
        return await self.pick(project).ref_exists(project, ref)

    async def default_branch(self, project: str) -> str:
        return await self.pick(project).default_branch(project)

    async def start_run(
        self, project: str, ref: str, variables: Mapping[str, str], *, marker: str
    ) -> Run:
        return await self.pick(project).start_run(project, ref, variables, marker=marker)

    async def find_run(self, project: str, ref: str, marker: str, since: float) -> Run | None:
        return await self.pick(project).find_run(project, ref, marker, since)

    async def get_run(self, project: str, run_id: int) -> Run:
        return await self.pick(project).get_run(project, run_id)

    async def latest_run(self, project: str, ref: str | None = None) -> Run | None:
        return await self.pick(project).latest_run(project, ref)

    async def run_jobs(self, project: str, run_id: int) -> list[RunJob]:
        return await self.pick(project).run_jobs(project, run_id)

    async def cancel_run(self, project: str, run_id: int) -> Run:
        return await self.pick(project).cancel_run(project, run_id)

    async def retry_run(self, project: str, run_id: int) -> Run:
        return await self.pick(project).retry_run(project, run_id)

    async def test_summary(self, project: str, run_id: int) -> TestSummary | None:
        return await self.pick(project).test_summary(project, run_id)
