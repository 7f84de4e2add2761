"""Jenkins as the wiring sees it: used when OPSLOOP_JENKINS_URL is set or a project names a
Jenkins job (`projects.<alias>.jenkins`); with a user and API token, it builds those projects.
Without them, those projects' builds are refused saying what to set, rather than being sent to
another CI system that has never heard of the job."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import NoReturn

from bot.builds.ports import Run, RunJob, TestSummary
from bot.config_file import OpsConfig
from bot.errors import UserError
from bot.plugins import Plugin, Provided, answers
from bot.settings import Settings

_SET_IT = "set OPSLOOP_JENKINS_URL, OPSLOOP_JENKINS_USER and OPSLOOP_JENKINS_TOKEN."
_OFF = "Jenkins is not configured, so opsloop cannot run its jobs: " + _SET_IT


def _jobs(config: OpsConfig) -> frozenset[str]:
    return frozenset(p.jenkins for p in config.projects.values() if p.jenkins)


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return bool(settings.jenkins_url) or bool(_jobs(config))


def _start(settings: Settings, config: OpsConfig) -> Provided:
    url = (settings.jenkins_url or "").rstrip("/")
    user = settings.jenkins_user or ""
    token = settings.secret("jenkins_token")
    jobs = _jobs(config)
    basic = base64.b64encode(f"{user}:{token or ''}".encode()).decode()

    async def check() -> str:
        if not url:
            raise RuntimeError("projects name Jenkins jobs, but OPSLOOP_JENKINS_URL is unset")
        return await answers(url + "/me/api/json", {"Authorization": f"Basic {basic}"})

    def serves(project: str) -> bool:
        return project in jobs

    if not (url and user and token):
        status = "Jenkins configured" if url else "Jenkins not configured, but projects use it"
        return Provided(status=status, check=check, ci=_Refusing(), ci_serves=serves)
    from integrations.jenkins.ci import JenkinsCI
    from integrations.jenkins.client import JenkinsHTTP

    client = JenkinsCI(JenkinsHTTP(url, user, token))
    return Provided(
        status="Jenkins configured",
        check=check,
        ci=client,
        ci_serves=serves,
        close=client.close,
    )


class _Refusing:
    """The CI system of Jenkins' projects while Jenkins is not configured: says what to set."""

    system = "Jenkins"

    def _refuse(self) -> NoReturn:
        raise UserError(_OFF)

    async def ref_exists(self, project: str, ref: str) -> str | None:
        self._refuse()

    async def default_branch(self, project: str) -> str:
        self._refuse()

    async def start_run(
        self, project: str, ref: str, variables: Mapping[str, str], *, marker: str
    ) -> Run:
        self._refuse()

    async def find_run(self, project: str, ref: str, marker: str, since: float) -> Run | None:
        self._refuse()

    async def get_run(self, project: str, run_id: int) -> Run:
        self._refuse()

    async def latest_run(self, project: str, ref: str | None = None) -> Run | None:
        self._refuse()

    async def run_jobs(self, project: str, run_id: int) -> list[RunJob]:
        self._refuse()

    async def cancel_run(self, project: str, run_id: int) -> Run:
        self._refuse()

    async def retry_run(self, project: str, run_id: int) -> Run:
        self._refuse()

    async def test_summary(self, project: str, run_id: int) -> TestSummary | None:
        self._refuse()


PLUGIN = Plugin(
    name="jenkins",
    configured=_configured,
    start=_start,
    status_when_off="Jenkins not configured",
    not_configured={"ci": _OFF},
)
