"""What answers Slack loads no outside system: counted in a fresh interpreter, where a lazy or
type-only import costs nothing (the import contracts in pyproject.toml see those too)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# The systems' packages and their SDKs: loaded by the wiring (bot.runtime) only.
HEAVY = ("integrations", "gitlab", "docker")


def _added_by(module: str) -> list[str]:
    """The modules that importing `module` loads into a fresh interpreter."""
    script = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"import {module}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    added: list[str] = json.loads(run.stdout)
    return added


@pytest.mark.parametrize("module", ["bot.replies", "bot.durable", "bot.slack_in"])
def test_the_slack_facing_modules_load_no_outside_system(module: str) -> None:
    assert [m for m in _added_by(module) if m.split(".")[0] in HEAVY] == []


def test_the_shared_wording_loads_next_to_nothing() -> None:
    # bot.replies once loaded the process's whole wiring (about 680 modules) for one dataclass.
    assert len(_added_by("bot.replies")) < 100
