"""deploy/monitoring/: the alert rules and the Grafana dashboard, against the bot's real /metrics.

- `promtool check rules` and `promtool test rules` (opsloop.rules.test.yml fires each alert).
- Every PromQL expression of the dashboard names only metrics (and labels) the bot exports, as
  a real scrape of the bot shows them.
- A real Prometheus scrapes the bot as job "opsloop" with the rules loaded: the rules load
  healthy, every dashboard expression is accepted by its query API, and the rules' aggregations
  see the bot's series (the job label the rules expect is the one a scrape gives).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import BotUnderTest, running_bot
from tests.prometheus_server import PrometheusServer, prometheus_binary
from tests.servers import binary, missing
from tests.waiting import eventually

MONITORING = Path(__file__).resolve().parent.parent / "deploy" / "monitoring"
RULES = MONITORING / "opsloop.rules.yml"
RULES_TEST = MONITORING / "opsloop.rules.test.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"

# Series Prometheus makes itself, and the labels every scraped series carries.
PROMETHEUS_OWN = {"up"}
TARGET_LABELS = {"job", "instance", "le"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}  # fmt: skip


def promtool() -> str:
    return binary("promtool", "apt-get install prometheus")


def test_the_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_each_alert_fires_in_the_promtool_unit_tests() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", RULES_TEST.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=MONITORING,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text()))
    defined = set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    assert tested == defined, f"alerts without a unit test: {defined - tested}"


# -- the dashboard ----------------------------------------------------------------------------


def dashboard_targets() -> Iterator[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query of every panel, rows included."""
    board = json.loads(DASHBOARD.read_text())

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield panel["title"], target
            yield from walk(panel.get("panels", []))

    yield from walk(board["panels"])


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers that are not functions, keywords,
    label names or durations."""
    stripped = re.sub(r'"[^"]*"', "", expr)  # label values
    stripped = re.sub(r"\{[^}]*\}", "", stripped)  # label matchers
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)  # range selectors
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", stripped)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", stripped):
        after = stripped[m.end() :].lstrip()
        if after.startswith("(") or m.group().lower() in PROMQL_WORDS:
            continue
        names.add(m.group())
    return names


def label_names(expr: str, legend: str) -> set[str]:
    """Labels an expression groups or matches by, and those its legend shows."""
    labels = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels |= {x.strip() for x in group.split(",") if x.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    labels |= set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    return labels


def test_the_expression_parser_of_this_test_finds_names_and_labels() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, kind) "
        '(rate(opsloop_slack_ack_seconds_bucket{route=~"/hooks/.*"}[$__rate_interval]))) * 60'
    )
    assert metric_names(expr) == {"opsloop_slack_ack_seconds_bucket"}
    assert label_names(expr, "p99 {{kind}}") == {"le", "kind", "route"}


async def scrape_text(bot: BotUnderTest) -> str:
    async with aiohttp.ClientSession() as http, http.get(bot.base_url + "/metrics") as r:
        assert r.status == 200
        return await r.text()


def exported(text: str, bot: BotUnderTest) -> dict[str, set[str]]:
    """Every sample name the scrape can show -> its label names.

    A labelled counter with no child yet shows only its HELP and TYPE lines; its label names
    are then taken from the bot's registry, where the metric was declared."""
    declared = {
        m._name: set(m._labelnames)
        for m in vars(bot.deps.metrics).values()
        if hasattr(m, "_labelnames")
    }
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_count", "_sum"],
        }.get(family.type, [""])
        for suffix in suffixes:
            names.setdefault(family.name + suffix, set(declared.get(family.name, set())))
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


async def test_every_dashboard_expression_reads_metrics_the_bot_exports(redis_url: str) -> None:
    async with running_bot(redis_url) as bot:
        await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        text = await scrape_text(bot)
        names = exported(text, bot)
    targets = list(dashboard_targets())
    assert len(targets) >= 20
    wrong = []
    for title, target in targets:
        expr = target["expr"]
        used = metric_names(expr)
        assert used, f"{title}: no metric found in {expr!r}"
        for name in used - PROMETHEUS_OWN:
            if name not in names:
                wrong.append(f"{title}: {name} is not exported")
                continue
            missing_labels = label_names(expr, target.get("legendFormat", "")) - names[name]
            missing_labels -= TARGET_LABELS
            if missing_labels:
                wrong.append(f"{title}: {name} has no label {sorted(missing_labels)}")
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
    assert not wrong, "\n".join(wrong)


def test_the_dashboard_names_each_group_the_issue_asks_for() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["schemaVersion"] >= 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    exprs = " ".join(t["expr"] for _, t in dashboard_targets())
    for metric in (
        "opsloop_slack_ack_seconds_bucket",  # acks
        "opsloop_jobs_waiting",  # queue depth
        "opsloop_jobs_oldest_age_seconds",  # queue age
        "opsloop_slack_calls_total",
        "opsloop_slack_rate_limited_total",  # 429s
        'opsloop_http_requests_total{route=~"/hooks/.*"}',  # webhook outcomes
        "opsloop_deploys_in_flight",
        "opsloop_alert_groups_open",
        "opsloop_workers_alive",
        "opsloop_redis_up",
    ):
        assert metric in exprs, metric
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


# -- a real Prometheus scraping the bot -------------------------------------------------------


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    binary = prometheus_binary()
    if binary is None:
        missing("prometheus is not installed (apt-get install prometheus)")
    assert binary is not None
    server = PrometheusServer(binary, tmp_path)
    yield server
    server.stop()


@pytest.mark.timeout(60)
async def test_a_real_prometheus_loads_the_rules_and_runs_every_dashboard_query(
    redis_url: str, prometheus: PrometheusServer
) -> None:
    async with running_bot(redis_url) as bot:
        prometheus.start(target=bot.base_url.removeprefix("http://"), rule_files=[RULES])
        await eventually(
            lambda: prometheus.query('up{job="opsloop"} == 1'), within=20, what="the first scrape"
        )
        rules = await prometheus.get("/api/v1/rules")
        loaded = [r for g in rules["data"]["groups"] for r in g["rules"]]
        assert len(loaded) == 7
        assert all(r["health"] == "ok" for r in loaded), loaded

        # The rules' aggregations see the bot's series under the job label they expect.
        workers = await eventually(
            lambda: prometheus.query("max by (job) (opsloop_workers_alive) >= 1"),
            within=20,
            what="a worker alive, as the rule OpsloopNoWorkerAlive reads it",
        )
        assert workers[0]["metric"] == {"job": "opsloop"}
        assert await prometheus.query("opsloop_redis_up == 1")

        for title, target in dashboard_targets():
            expr = target["expr"].replace("$__rate_interval", "1m")
            answer = await prometheus.get("/api/v1/query", query=expr)
            assert answer["status"] == "success", (title, expr, answer)
