"""The emulated projects' Git repositories: commits, branches and tags, without any files.

Every project starts with the same small history, so tests can name refs without seeding them:

    main      <- "Add CI pipeline"      (the default branch, protected)
    develop   <- "Work in progress"     (one commit ahead of main)
    v1.0.0    -> "Initial commit"       (a tag on main's first commit)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .http import not_found
from .models import EmulatedProject

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class CommitRecord:
    sha: str
    parent: str | None
    message: str
    author_name: str
    author_email: str
    at: datetime

    @property
    def title(self) -> str:
        return self.message.split("\n", 1)[0]


@dataclass(frozen=True)
class TagRecord:
    name: str
    sha: str
    message: str | None
    created_at: datetime


@dataclass
class Repository:
    """One project's refs; branch and tag names are case-sensitive, as in Git."""

    project: EmulatedProject
    commits: dict[str, CommitRecord] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name -> head sha
    tags: dict[str, TagRecord] = field(default_factory=dict)

    def branch(self, name: str) -> str:
        """The head of a branch, or GitLab's `404 Branch Not Found`."""
        if name not in self.branches:
            raise not_found("Branch")
        return self.branches[name]

    def tag(self, name: str) -> TagRecord:
        if name not in self.tags:
            raise not_found("Tag")
        return self.tags[name]

    def commit(self, sha: str) -> CommitRecord:
        found = self.commits.get(sha) or next(
            (c for s, c in self.commits.items() if len(sha) >= 7 and s.startswith(sha)), None
        )
        if found is None:
            raise not_found("Commit")
        return found

    def between(self, base: str, head: str) -> list[CommitRecord]:
        """The commits reachable from `head` and not from `base`, oldest first (Git's
        `base..head`; the history here is a chain of single parents)."""
        behind: set[str] = set()
        sha: str | None = base
        while sha is not None:
            behind.add(sha)
            sha = self.commits[sha].parent
        ahead = []
        sha = head
        while sha is not None and sha not in behind:
            ahead.append(self.commits[sha])
            sha = self.commits[sha].parent
        return ahead[::-1]

    def resolve(self, ref: str) -> tuple[str, str] | None:
        """("branch" | "tag", sha) for a ref name; branches first, as GitLab looks them up."""
        if ref in self.branches:
            return "branch", self.branches[ref]
        if ref in self.tags:
            return "tag", self.tags[ref].sha
        return None


class Repositories:
    """Every project's repository, with the default history above."""

    def __init__(self, projects: Iterable[EmulatedProject], clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._by_project: dict[int, Repository] = {}
        self._counter = 0
        for project in projects:
            self._seed(project)

    def of(self, project: EmulatedProject) -> Repository:
        return self._by_project[project.id]

    def _seed(self, project: EmulatedProject) -> None:
        repo = Repository(project)
        self._by_project[project.id] = repo
        start = self.clock() - timedelta(days=30)
        first = self._commit(repo, None, "Initial commit", "Alice Deployer", start)
        second = self._commit(repo, first, "Add CI pipeline", "Bob Approver", start)
        wip = self._commit(repo, second, "Work in progress", "Carol Oncall", start)
        repo.branches[project.default_branch] = second
        if project.default_branch != "develop":
            repo.branches["develop"] = wip
        repo.tags["v1.0.0"] = TagRecord("v1.0.0", first, "Release 1.0.0", start)

    def _commit(
        self,
        repo: Repository,
        parent: str | None,
        message: str,
        author: str,
        at: datetime | None = None,
    ) -> str:
        self._counter += 1
        seed = f"{repo.project.path_with_namespace}\0{self._counter}\0{message}"
        sha = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
        email = author.split()[0].lower() + "@example.com"
        repo.commits[sha] = CommitRecord(sha, parent, message, author, email, at or self.clock())
        return sha

    # -- changes made by tests and the sandbox -------------------------------------------------

    def add_branch(self, project: EmulatedProject, name: str, ref: str | None = None) -> str:
        """A branch at `ref` (a branch, tag or sha; default: the default branch's head)."""
        repo = self.of(project)
        repo.branches[name] = self._target(repo, ref)
        return repo.branches[name]

    def add_tag(
        self,
        project: EmulatedProject,
        name: str,
        ref: str | None = None,
        message: str | None = None,
    ) -> TagRecord:
        repo = self.of(project)
        repo.tags[name] = TagRecord(name, self._target(repo, ref), message, self.clock())
        return repo.tags[name]

    def push(
        self,
        project: EmulatedProject,
        branch: str,
        message: str,
        author: str,
        at: datetime | None = None,
    ) -> str:
        """One new commit on `branch` (made if missing, from the default branch), committed
        at `at` (default: now); its sha."""
        repo = self.of(project)
        parent = repo.branches.get(branch) or self._target(repo, None)
        repo.branches[branch] = self._commit(repo, parent, message, author, at)
        return repo.branches[branch]

    def _target(self, repo: Repository, ref: str | None) -> str:
        if ref is None:
            return repo.branches[repo.project.default_branch]
        resolved = repo.resolve(ref)
        return resolved[1] if resolved else repo.commit(ref).sha
