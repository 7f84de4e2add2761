"""An in-process Jenkins: the JSON API opsloop uses, for tests and the sandbox.

emu = JenkinsEmulator()                       # user opsloop; jobs folder/legacy-build and plain
async with emu.serve() as url:                # url: http://127.0.0.1:<free port>
    # basic auth opsloop:<emu.token> (an API token: POSTs need no crumb; the password does)
    POST /job/folder/job/legacy-build/buildWithParameters  BRANCH=main ...
                                              # 201, Location: <url>/queue/item/<n>/
    GET  /queue/item/<n>/api/json             # executable {number, url} once started
    GET  /job/folder/job/legacy-build/<n>/api/json         # building, result, actions
    GET  /job/folder/job/legacy-build/<n>/wfapi/describe   # stages and their status
    POST /job/folder/job/legacy-build/<n>/stop
    GET  /job/folder/job/legacy-build/<n>/testReport/api/json
emu.step_seconds = 0.05                       # each Pipeline stage takes this long
emu.state.queue_seconds = 1.0                 # builds wait this long in the queue
emu.fail_stage("Test")                        # the next build fails in its Test stage
emu.fail(503, times=2, path="*/buildWithParameters")   # faults; status 0: connection drops
emu.delay = 5.0                               # every answer waits five seconds
emu.requests                                  # every request, in arrival order
emu.notify(bot_url + "/hooks/jenkins?token=...")  # the Notification plugin posts phases

Undeclared parameters are dropped, as Jenkins drops them (SECURITY-170).
"""

from .emulator import DEFAULT_JOBS, Fault, JenkinsEmulator, Recorded
from .state import DEFAULT_STAGES, JenkinsState, JobDef

__all__ = [
    "DEFAULT_JOBS",
    "DEFAULT_STAGES",
    "Fault",
    "JenkinsEmulator",
    "JenkinsState",
    "JobDef",
    "Recorded",
]
