"""The documentation a user reads: every link resolves inside the repository, and its examples run.

A link that opens a 404 on GitHub is a dead end in someone's first hour, and moving a section
between files (the README into `docs/`) breaks anchors silently; this keeps them honest.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.config_load import parse_config

REPO = Path(__file__).resolve().parent.parent
# The user-facing Markdown: the README, docs/, and the deploy/ guides.
DOCS = sorted(
    [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "deploy").rglob("*.md")]
)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text without code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text(encoding="utf-8")))


def broken(path: Path, target: str) -> str | None:
    """Why `target`, linked from `path`, does not resolve; None when it does."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ... are outside
        return None
    file_part, _, anchor = target.partition("#")
    dest = (path.parent / file_part).resolve() if file_part else path
    if REPO not in dest.parents and dest != REPO:
        return f"{target}: outside the repository"
    if not dest.exists():
        return f"{target}: no such file"
    if anchor:
        if dest.is_dir() or dest.suffix != ".md":
            return f"{target}: an anchor into something that is not Markdown"
        if anchor not in anchors(dest):
            return f"{target}: {dest.relative_to(REPO)} has no heading #{anchor}"
    return None


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves_inside_the_repository(path: Path) -> None:
    problems = [why for target in links(path) if (why := broken(path, target))]
    assert not problems, f"{path.relative_to(REPO)}: " + "; ".join(problems)


def test_the_link_checker_catches_a_dead_link(tmp_path: Path) -> None:
    page = REPO / "docs" / "architecture.md"
    assert broken(page, "benchmarks.md") is None
    assert broken(page, "exactly-once.md") == "exactly-once.md: no such file"
    assert broken(page, "#exactly-once") is None
    assert broken(page, "#exactly-twice") is not None
    assert broken(page, "../../outside.md") == "../../outside.md: outside the repository"
    assert slug("Ack latency: `make bench` (or `python -m bench.ack_latency`)") == (
        "ack-latency-make-bench-or-python--m-benchack_latency"
    )


def test_the_readme_is_in_the_order_a_user_needs_it() -> None:
    headings = re.findall(
        r"^## (.+)$", prose((REPO / "README.md").read_text(encoding="utf-8")), re.M
    )
    wanted = ["Try it", "Run it for real", "Slack app set-up", "Configure", "Operate"]
    assert [h for h in headings if h in wanted] == wanted
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) < 500, (
        "the README is for users: move narratives and histories to docs/"
    )


def test_the_readmes_yaml_example_is_a_valid_opsloop_yml() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    examples = [
        block
        for block in re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M)
        if block.startswith("roles:")
    ]
    assert examples, "the README shows an opsloop.yml under Configure"
    for block in examples:
        config = parse_config(yaml.safe_load(block), "the README's example")
        assert config.services and config.projects and config.alerts.routes
