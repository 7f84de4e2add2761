"""What people type after `/task`, parsed into plain values.

    /task Fix the login redirect @alice #bug #frontend project:web -- steps to reproduce ...

The title is every word that is not an option; `@person` (a Slack mention) assigns it, `#label`
or `label:x` adds labels, `project:alias` (or `in:alias`) picks the project from the YAML file,
and everything after `--` is the description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from bot.replies import escape

# Slack escapes mentions when the command has should_escape: <@U123|alice>, <#C123|general>.
_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_PLAIN_MENTION = re.compile(r"^@([A-Za-z0-9._-]+)$")
_CHANNEL_LINK = re.compile(r"^<#[CG][A-Z0-9]+\|([^>]+)>$")
_LABEL = re.compile(r"^[^\s,]{1,100}$")
_REF = re.compile(r"^(?:(?P<project>[A-Za-z0-9_.\-/]+))?#(?P<key>\d{1,9})$")
# A key-number reference, as Jira (and trackers like it) write their issues: WEB-12.
_KEY_REF = re.compile(r"^(?P<project>[A-Za-z][A-Za-z0-9_]{0,254})-(?P<key>\d{1,9})$")
_BROWSE_REF = re.compile(
    r"^<?https?://[^\s>|]+/browse/(?P<project>[A-Za-z][A-Za-z0-9_]*)-(?P<key>\d+)(?:\|[^>]*)?>?$"
)
_URL_REF = re.compile(
    r"^<?https?://[^/\s>|]+/(?P<project>[^\s>|]+?)/-/issues/(?P<key>\d+)(?:\|[^>]*)?>?$"
)

# `--` alone, as a word, starts the description; `a--b` and `--flag` are words of the title.
_SEPARATOR = re.compile(r"(?:^|\s)--(?:\s|$)")
MAX_TITLE = 255


class GrammarError(ValueError):
    """The text cannot be a task; the message says what to type instead."""


@dataclass
class TaskDraft:
    title: str
    project: str | None = None  # an alias from the YAML file, or a GitLab path
    labels: list[str] = field(default_factory=list)
    assignee_slack_id: str | None = None  # from a Slack mention
    assignee_username: str | None = None  # from a plain @name
    description: str = ""


def parse_create(text: str) -> TaskDraft:
    """`/task <title> [@person] [#label ...] [project:alias] [-- description]`."""
    separator = _SEPARATOR.search(text)
    head, description = (
        (text[: separator.start()], text[separator.end() :]) if separator else (text, "")
    )
    draft = TaskDraft(title="", description=description.strip())
    title_words: list[str] = []
    for word in head.split():
        low = word.lower()
        if m := _USER_MENTION.match(word):
            _one_assignee(draft)
            draft.assignee_slack_id = m.group(1)
        elif m := _PLAIN_MENTION.match(word):
            _one_assignee(draft)
            draft.assignee_username = m.group(1)
        elif m := _CHANNEL_LINK.match(word):
            draft.labels.append(m.group(1))  # Slack turned #label into a channel link
        elif word.startswith("#") and len(word) > 1 and not word[1:].isdigit():
            draft.labels.append(_label(word[1:]))
        elif low.startswith("label:") and len(word) > 6:
            draft.labels.extend(_label(x) for x in word[6:].split(",") if x)
        elif low.startswith(("project:", "in:")):
            value = word.split(":", 1)[1]
            if not value:
                raise GrammarError("`project:` needs a project, e.g. `project:web`.")
            draft.project = value
        else:
            title_words.append(word)
    draft.title = " ".join(title_words).strip()
    if not draft.title and draft.description:
        raise GrammarError(_no_title_before(draft.description))
    if not draft.title:
        raise GrammarError("A task needs a title, e.g. `/task Fix the login redirect`.")
    if len(draft.title) > MAX_TITLE:
        raise GrammarError(f"The title is {len(draft.title)} characters; GitLab takes {MAX_TITLE}.")
    return draft


def _no_title_before(description: str) -> str:
    """`/task -- text`: the title comes before `--`, so say where it goes."""
    words = " ".join(description.split())
    short = escape(words if len(words) <= 60 else words[:59].rstrip() + "…")
    return (
        "A task needs a title before `--` (what follows `--` is the description): "
        f"`/task &lt;title&gt; -- {short}`, or `/task {short}` to make it the title."
    )


def _one_assignee(draft: TaskDraft) -> None:
    if draft.assignee_slack_id or draft.assignee_username:
        raise GrammarError("A task takes one assignee; mention one person.")


def _label(value: str) -> str:
    if not _LABEL.match(value):
        raise GrammarError(f"`{value}` is not a label (no spaces or commas).")
    return value


@dataclass(frozen=True)
class TaskRef:
    """`web#12`, `acme/web#12`, `#12` (the channel's project), `WEB-12` or an issue URL."""

    project: str | None  # an alias, the tracker's project, or None: the channel's project
    key: str  # the task's key in its project (tasks/ports.py): "12", "WEB-12"

    def __str__(self) -> str:
        if self.project and self.key.startswith(self.project + "-"):
            return self.key  # WEB-12 names its project itself
        return f"{self.project or ''}#{self.key}"


def parse_ref(text: str) -> TaskRef:
    word = text.strip()
    if m := _KEY_REF.match(word) or _BROWSE_REF.match(word):
        # The project's key in capitals, as Jira writes it; "WEB-012" is WEB-12.
        project = m.group("project").upper()
        return TaskRef(project=project, key=f"{project}-{int(m.group('key'))}")
    m = _REF.match(word) or _URL_REF.match(word)
    if m is None:
        raise GrammarError(
            f"`{word}` is not a task reference; write `web#12`, `acme/web#12`, `#12`, `WEB-12` "
            "or its URL."
        )
    project = m.group("project")
    # The key as the tracker writes it: "012" is task 12.
    return TaskRef(project=unquote(project) if project else None, key=str(int(m.group("key"))))
