"""An in-process GitLab: the REST API v4 endpoints opsloop uses, for tests and the sandbox.

emu = GitLabEmulator()                        # alice, bob, carol; acme/web and acme/api
async with emu.serve() as url:                # url: http://127.0.0.1:<free port>
    gl = gitlab.Gitlab(url, private_token=emu.token)
    gl.projects.get("acme/web").issues.create({"title": "Flaky test"})
    emu.issues("acme/web")                    # what GitLab now holds, as its API shows it
    emu.fail(500, times=2, path="*/issues")   # the next two issue requests answer 500
    emu.delay = 5.0                           # every answer waits five seconds
    emu.hold("*/issues", 60, method="POST", after_handling=True)  # filed, answer held
    emu.requests                              # every request, in arrival order

Pipelines, refs and webhooks (controls.py):
    emu.pipeline_step_seconds = 0.1           # pipelines move by themselves while serving
    emu.fail_job("unit")                      # a chosen job fails
    emu.add_hook("acme/web", url, "secret")   # Pipeline Hook deliveries, as GitLab sends them
"""

from .emulator import DEFAULT_BOT_USER, DEFAULT_PROJECTS, DEFAULT_USERS, GitLabEmulator
from .faults import Failure, Hold
from .hooks import HookDelivery, HookEvent, HookRecord
from .models import EmulatedProject, EmulatedUser, IssueRecord, RecordedRequest
from .pipelines import DEFAULT_JOBS, JobSpec

__all__ = [
    "DEFAULT_BOT_USER",
    "DEFAULT_JOBS",
    "DEFAULT_PROJECTS",
    "DEFAULT_USERS",
    "EmulatedProject",
    "EmulatedUser",
    "Failure",
    "GitLabEmulator",
    "Hold",
    "HookDelivery",
    "HookEvent",
    "HookRecord",
    "IssueRecord",
    "JobSpec",
    "RecordedRequest",
]
