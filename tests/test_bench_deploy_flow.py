"""`python -m bench.deploy_flow --kind kubernetes`, one round: the bench's Kubernetes part runs
end to end (opsloop serve and worker as processes, redis-server, the Slack and Kubernetes
emulators, the real kubectl) and reports every click of both kinds, beside kubectl's."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import missing

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def test_the_kubernetes_cases_run_end_to_end_and_time_every_click(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        missing("no kubectl on PATH (the Google Cloud CLI's kubectl package, not Debian's)")
    results = tmp_path / "deploy_flow.json"
    argv = ["--kind", "kubernetes", "--rounds", "1", "--step-timeout", "30"]
    ran = subprocess.run(
        [sys.executable, "-m", "bench.deploy_flow", *argv, "--json", str(results)],
        cwd=REPO, capture_output=True, text=True, timeout=140, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "ratio opsloop / kubectl" in ran.stdout
    report = json.loads(results.read_text())["kubernetes"]
    assert [(c["name"], c["pass"]) for c in report["checks"] if not c["pass"]] == []
    rnd = report["per_round"][0]
    steps = [(c["kind"], c["percent"]) for c in rnd["clicks"]]
    assert steps == [("argo", 50), ("argo", 75), ("argo", 100), ("deployment", 50),
                     ("deployment", 100)]  # fmt: skip
    assert [(s["kind"], s["percent"]) for s in rnd["kubectl"]] == steps
    for click in rnd["clicks"]:
        # The write comes after the click and before the cluster stands at the step.
        assert 0 < click["patch_s"] < click["cluster_s"] < 30, click
        assert not math.isnan(click["slack_s"]), click
    for floor in rnd["kubectl"]:
        assert 0 < floor["patch_s"] <= floor["exit_s"] < 30, floor
    assert rnd["promotes"] == {"argo": 3}
