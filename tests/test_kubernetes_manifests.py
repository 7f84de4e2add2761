"""deploy/kubernetes/: rendered with `kubectl kustomize`, each object checked the way a cluster
would take it, and what a user would notice checked against the bot itself.

- Every built-in object validates against the Kubernetes OpenAPI schemas that
  kubernetes-validate ships (strict: an unknown field is an error), for kubectl's version and
  the newest it knows.
- The Prometheus Operator's objects (ServiceMonitor, PrometheusRule) are custom resources with no
  schema here: their fields are checked one by one (they were validated against the CRDs of
  prometheus-operator's example/prometheus-operator-crd/ when written; deploy/kubernetes/README.md).
- The probes answer 200 on a real bot at their paths; the Role is the README's; the Secret's
  keys are every token setting; the example opsloop.yml and the Sentinel URL are accepted by
  the bot's own parsers.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr
from redis.asyncio.sentinel import SentinelConnectionPool

from bot.config_load import parse_config
from bot.redis_conn import close, connect
from bot.settings import Settings, env_name, load_settings
from tests.harness import running_bot
from tests.servers import binary

REPO = Path(__file__).resolve().parent.parent
KUBE = REPO / "deploy" / "kubernetes"
RULES = REPO / "deploy" / "monitoring" / "opsloop.rules.yml"
KUSTOMIZATIONS = [".", "examples/sentinel", "examples/production"]
SERVE = {"app.kubernetes.io/name": "opsloop", "app.kubernetes.io/component": "serve"}
OPERATOR_GROUP = "monitoring.coreos.com/v1"


@cache
def kubectl() -> str:
    return binary(
        "kubectl", "it renders the kustomizations: https://kubernetes.io/docs/tasks/tools/"
    )


@cache
def render(kustomization: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(KUBE / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def rendered_text(kustomization: str) -> str:
    return yaml.safe_dump_all(render(kustomization))


def find(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def kubernetes_versions() -> list[str]:
    """kubectl's minor version (schemas for it, or the nearest kubernetes-validate has) and the
    newest kubernetes-validate knows."""
    out = subprocess.run(
        [kubectl(), "version", "--client", "-o", "json"], capture_output=True, text=True
    )
    minor = int(re.sub(r"\D", "", json.loads(out.stdout)["clientVersion"]["minor"]))
    known = sorted(
        {tuple(int(p) for p in v.split(".")) for v in kubernetes_validate.utils.all_versions()}
    )
    nearest = min(known, key=lambda v: abs(v[1] - minor))
    return sorted({".".join(map(str, nearest)), kubernetes_validate.latest_version()})


# -- every object, as the API server would take it --------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_object_is_valid_for_kubernetes(kustomization: str) -> None:
    docs = render(kustomization)
    assert docs
    for version in kubernetes_versions():
        for doc in docs:
            if doc["apiVersion"] == OPERATOR_GROUP:
                continue  # custom resources: test_the_service_monitor_scrapes_the_serve_pods
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_base_has_the_objects_the_issue_names() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"].rsplit("-", 1)[0]) for d in render("."))
    assert kinds == [
        ("ConfigMap", "opsloop-config"),
        ("ConfigMap", "opsloop-env"),
        ("Deployment", "opsloop"),  # opsloop-serve
        ("Deployment", "opsloop"),  # opsloop-worker
        ("PodDisruptionBudget", "opsloop"),
        ("Service", "opsloop"),
        ("ServiceAccount", "opsloop"),
    ]
    assert {d["metadata"]["namespace"] for d in render(".")} == {"opsloop"}


# -- what a user would notice ---------------------------------------------------------------


async def test_the_probes_ask_the_bots_real_routes_on_its_port(redis_url: str) -> None:
    serve = find(render("."), "Deployment", "opsloop-serve")
    c = container(serve)
    assert c["args"] == ["serve"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = {e["name"]: e["value"] for e in c["env"]}
    # The bot listens where the probes and the Service look: every interface, that port.
    assert env["OPSLOOP_HOST"] == "0.0.0.0"
    assert int(env["OPSLOOP_PORT"]) == ports["http"]
    probes = {"liveness": c["livenessProbe"], "readiness": c["readinessProbe"]}
    assert {name: p["httpGet"]["path"] for name, p in probes.items()} == {
        "liveness": "/healthz",
        "readiness": "/readyz",
    }
    assert all(p["httpGet"]["port"] in ("http", ports["http"]) for p in probes.values())
    async with running_bot(redis_url, worker=False) as bot, aiohttp.ClientSession() as http:
        for probe in probes.values():
            async with http.get(bot.base_url + probe["httpGet"]["path"]) as answer:
                assert answer.status == 200, probe


def test_two_serve_replicas_and_a_worker_that_runs_worker() -> None:
    docs = render(".")
    serve = find(docs, "Deployment", "opsloop-serve")
    worker = find(docs, "Deployment", "opsloop-worker")
    assert serve["spec"]["replicas"] == 2
    assert container(worker)["command"] == ["opsloop"]
    assert container(worker)["args"] == ["worker"]
    # No HTTP in a worker: no ports and no probes (deploy/kubernetes/base/worker.yaml says why).
    assert not {"ports", "livenessProbe", "readinessProbe"} & set(container(worker))
    for deployment in (serve, worker):
        resources = container(deployment)["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert "memory" in resources["limits"]


def test_the_pdb_and_the_service_select_the_serve_pods_only() -> None:
    docs = render(".")
    serve_pods = find(docs, "Deployment", "opsloop-serve")["spec"]["template"]["metadata"]
    worker_pods = find(docs, "Deployment", "opsloop-worker")["spec"]["template"]["metadata"]
    pdb = find(docs, "PodDisruptionBudget", "opsloop-serve")
    service = find(docs, "Service", "opsloop")

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    for selector in (pdb["spec"]["selector"]["matchLabels"], service["spec"]["selector"]):
        assert selects(selector, serve_pods["labels"])
        assert not selects(selector, worker_pods["labels"])
    assert pdb["spec"]["minAvailable"] == 1
    port = service["spec"]["ports"][0]
    assert port["targetPort"] == "http"


def test_the_pods_run_as_the_images_user_on_a_read_only_root() -> None:
    for name in ("opsloop-serve", "opsloop-worker"):
        deployment = find(render("."), "Deployment", name)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["serviceAccountName"] == "opsloop"
        c = container(deployment)
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_yaml_file_is_mounted_where_the_bot_reads_it_and_is_valid() -> None:
    docs = render(".")
    config_map = find(docs, "ConfigMap", "opsloop-config")
    for name in ("opsloop-serve", "opsloop-worker"):
        deployment = find(docs, "Deployment", name)
        c = container(deployment)
        config_file = Path(next(e["value"] for e in c["env"] if e["name"] == "OPSLOOP_CONFIG_FILE"))
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(config_file.parent))
        assert volumes[mount["name"]]["configMap"]["name"] == config_map["metadata"]["name"]
        assert config_file.name in config_map["data"]
    config = parse_config(yaml.safe_load(config_map["data"]["opsloop.yml"]))
    assert {"shop", "cart"} <= set(config.services)


def secret_settings() -> set[str]:
    """Every setting that holds a token or secret: the Secret's possible keys."""
    return {
        env_name(name)
        for name, field in Settings.model_fields.items()
        if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
    }


def documented_secret_keys() -> set[str]:
    readme = (KUBE / "README.md").read_text()
    command = re.search(r"kubectl create secret generic opsloop(.*?)\n```", readme, re.S)
    assert command, "deploy/kubernetes/README.md shows no `kubectl create secret` command"
    return set(re.findall(r"--from-literal=(\w+)=", command.group(1)))


def test_the_secret_is_referenced_never_rendered_and_its_keys_are_documented() -> None:
    assert documented_secret_keys() == secret_settings()
    for kustomization in KUSTOMIZATIONS:
        docs = render(kustomization)
        assert not [d for d in docs if d["kind"] == "Secret"]
        text = rendered_text(kustomization)
        # No token set in a manifest: not as an env value, not in a ConfigMap.
        for key in secret_settings():
            assert f"{key}:" not in text and f"{key}=" not in text, (kustomization, key)
        assert not re.search(r"xox[abp]-|xapp-", text)
        for name in ("opsloop-serve", "opsloop-worker"):
            sources = container(find(docs, "Deployment", name))["envFrom"]
            # The Secret comes last: its keys win over the same keys in opsloop-env.
            assert sources[-1] == {"secretRef": {"name": "opsloop"}}


def pod_settings(kustomization: str, name: str) -> Settings:
    """The settings the bot would load in that pod, with the documented Secret filled in."""
    docs = render(kustomization)
    c = container(find(docs, "Deployment", name))
    values: dict[str, Any] = {}
    for source in c["envFrom"]:
        if "configMapRef" in source:
            values.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            values.update({key: f"{key.lower()}-value" for key in documented_secret_keys()})
    values["SLACK_BOT_TOKEN"] = "xoxb-1-2-test"
    values["SLACK_APP_TOKEN"] = "xapp-1-A1-2-test"
    values.update({e["name"]: e["value"] for e in c.get("env", [])})
    return load_settings(**values)


def test_each_pod_starts_with_valid_settings_and_a_redis_url() -> None:
    for kustomization in KUSTOMIZATIONS:
        for name in ("opsloop-serve", "opsloop-worker"):
            settings = pod_settings(kustomization, name)
            assert settings.redis_url, (kustomization, name)
            assert str(settings.config_file) == "/etc/opsloop/opsloop.yml"


async def test_the_sentinel_example_names_sentinels_the_bot_can_use() -> None:
    url = pod_settings("examples/sentinel", "opsloop-serve").redis_url
    assert url is not None and url.startswith("redis+sentinel://")
    client = connect(url)  # nothing is sent until first use
    try:
        pool = client.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        assert pool.service_name == "mymaster"
        sentinels = pool.sentinel_manager.sentinels
        assert len(sentinels) == 3
        assert all(s.connection_pool.connection_kwargs["port"] == 26379 for s in sentinels)
    finally:
        await close(client)


def readme_role() -> list[dict[str, Any]]:
    """The smallest Role as the project's documentation gives it (a yaml block with a Role)."""
    for doc in sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")]):
        for block in re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S):
            objects = [o for o in yaml.safe_load_all(block) if o]
            if any(o.get("kind") == "Role" for o in objects if isinstance(o, dict)):
                return objects
    raise AssertionError("no Role found in README.md or docs/")


def test_the_deployer_role_is_the_smallest_role_the_readme_gives() -> None:
    docs = render("examples/production")
    documented = {o["kind"]: o for o in readme_role()}
    role = find(docs, "Role", "opsloop")
    binding = find(docs, "RoleBinding", "opsloop")
    assert role["rules"] == documented["Role"]["rules"]
    assert role["metadata"]["namespace"] == documented["Role"]["metadata"]["namespace"]
    assert binding["roleRef"] == documented["RoleBinding"]["roleRef"]
    # Bound to the pods' own account, in the namespace they run in.
    account = find(docs, "ServiceAccount", "opsloop")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    # Exactly the objects the example opsloop.yml's services name.
    config = parse_config(
        yaml.safe_load(find(docs, "ConfigMap", "opsloop-config")["data"]["opsloop.yml"])
    )
    names = {n for rule in role["rules"] for n in rule.get("resourceNames", [])}
    shop, cart = config.services["shop"], config.services["cart"]
    assert names == {
        shop.rollout,
        cart.deployment,
        cart.deployment + "-canary",
    }


def test_the_service_monitor_scrapes_the_serve_pods() -> None:
    docs = render("examples/production")
    monitor = find(docs, "ServiceMonitor", "opsloop")
    service = find(docs, "Service", "opsloop")
    assert monitor["apiVersion"] == OPERATOR_GROUP
    labels = service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # The operator names the job after the Service unless jobLabel says otherwise; the alert
    # rules select job="opsloop".
    assert "jobLabel" not in monitor["spec"]
    assert service["metadata"]["name"] == "opsloop"
    assert 'job="opsloop"' in RULES.read_text()
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
    assert set(monitor["spec"]) == {"selector", "namespaceSelector", "endpoints"}


def test_the_prometheus_rule_holds_the_rules_file() -> None:
    rule = find(render("examples/production"), "PrometheusRule", "opsloop")
    assert rule["apiVersion"] == OPERATOR_GROUP
    assert set(rule["spec"]) == {"groups"}
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    assert rule["metadata"]["namespace"] == "opsloop"


def test_an_overlay_sets_the_image() -> None:
    images = {
        container(d)["image"] for d in render("examples/production") if d["kind"] == "Deployment"
    }
    assert images == {"registry.example.com/platform/opsloop:0.1.0"}
    images = {container(d)["image"] for d in render(".") if d["kind"] == "Deployment"}
    assert images == {"ghcr.io/opsloop/opsloop:latest"}
