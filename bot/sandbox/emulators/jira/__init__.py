"""An in-process Jira: the REST endpoints opsloop uses, for tests and the sandbox.

emu = JiraEmulator()                          # alice, bob, carol; projects WEB, OPS, SEC, HR
async with emu.serve() as url:                # url: http://127.0.0.1:<free port>
    # Cloud: basic auth with the bot's e-mail and API token; Data Center: bearer token
    session.post(url + "/rest/api/3/issue", auth=BasicAuth(emu.email, emu.token), json=...)
    emu.issues                                # what Jira now holds, by key ("WEB-1")
    emu.fail(503, times=2, path="*/issue")    # the next two create requests answer 503
    emu.hold("*/issue", 60, method="POST", after_handling=True)  # created, answer held
    emu.limit_rate(10, 1.0)                   # beyond 10 requests a second: 429 + Retry-After
    emu.requests                              # every request, in arrival order

SEC demands the custom field "Team" (customfield_10010) on create; HR is a project the bot may
neither browse nor create in (403 on create, 404 on its issues).
"""

from .emulator import BOT_USER, DEFAULT_PROJECTS, DEFAULT_USERS, JiraEmulator, RecordedRequest
from .state import IssueRecord, JiraProject, JiraUser

__all__ = [
    "BOT_USER",
    "DEFAULT_PROJECTS",
    "DEFAULT_USERS",
    "IssueRecord",
    "JiraEmulator",
    "JiraProject",
    "JiraUser",
    "RecordedRequest",
]
