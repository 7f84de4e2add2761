"""The sandbox's sample workspace: a few people, channels and the YAML config that uses them."""

from __future__ import annotations

from datetime import timedelta

from bot.config_file import AlertRoute, Alerts, OpsConfig, Project, Roles, Service
from bot.sandbox.cluster import cart_service, shop_service
from bot.sandbox.deploys import api_service, web_service
from bot.sandbox.emulators.slack import EmulatorUser

ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
SRE = "S0SRE"
ALERTS_CHANNEL = "C0ALERTS"

USERS = [
    EmulatorUser(id=ALICE, name="alice", real_name="Alice (deployer)", email="alice@example.com"),
    EmulatorUser(id=BOB, name="bob", real_name="Bob (SRE)", email="bob@example.com"),
    EmulatorUser(id=CAROL, name="carol", real_name="Carol (developer)", email="carol@example.com"),
]
GENERAL, DEPLOYS, LEGACY = "C0GENERAL", "C0DEPLOYS", "C0LEGACY"
CHANNELS = {GENERAL: "general", ALERTS_CHANNEL: "alerts", DEPLOYS: "deploys", LEGACY: "legacy"}
USERGROUPS = {SRE: [BOB]}


def sample_config(*, docker: bool = False) -> OpsConfig:
    """Roles for the sample people, alert routes for the sample alert (the sandbox page's
    "Fire sample alert"): critical alerts escalate to @sre (Bob) after two minutes unanswered,
    and deploy services: `api` through the emulated GitLab, `shop` (an Argo Rollout) and `cart`
    (a plain Deployment) on the emulated Kubernetes (bot/sandbox/cluster.py), and `web` on
    Docker when `docker` (the sandbox found an engine and its images; bot/sandbox/deploys.py).

    The same as this opsloop.yml:

        roles: {deployers: [U0ALICE], approvers: [U0BOB, S0SRE]}
        projects:
          web: {gitlab: acme/web, default_ref: main, channel: C0GENERAL}
          api: {gitlab: acme/api, default_ref: main, channel: C0DEPLOYS}
          legacy: {jenkins: folder/legacy-build, channel: C0LEGACY, protected_refs: [main]}
          ops: {jira: OPS}          # its tasks go to the emulated Jira (/task ... project:ops)
        services:
          api:
            deployer: gitlab
            project: acme/api
            ref: main
            channel: C0DEPLOYS
            steps: [{percent: 10, job: canary}, {percent: 100, job: production}]
            rollback_job: rollback
            approvals: 1
            alert_labels: {service: api}
          shop:                     # the Rollout's steps: 20%, pause, 50%, pause, 80%, 5s, 100%
            deployer: kubernetes
            namespace: shop
            rollout: shop
            image: registry.example.com/acme/shop
            channel: C0DEPLOYS
          cart:                     # its canary is Deployment cart-canary
            deployer: kubernetes
            namespace: shop
            deployment: cart
            image: registry.example.com/acme/cart
            replicas: 4
            steps: [25, 50, 100]
            channel: C0DEPLOYS
          web:                      # only when Docker answers
            deployer: docker
            image: opsloop-sandbox/app
            replicas: 4
            steps: [25, 50, 100]
            channel: C0DEPLOYS
            container: {network_mode: host, labels: {opsloop.sandbox: "1"}}
        alerts:
          routes:
            - match: {severity: critical}
              channel: C0ALERTS
              escalate_after: 2m
              escalate_to: [S0SRE]
            - channel: C0ALERTS
    """
    services: dict[str, Service] = {
        "api": api_service(DEPLOYS),
        "shop": shop_service(DEPLOYS),
        "cart": cart_service(DEPLOYS),
    }
    if docker:
        services["web"] = web_service(DEPLOYS)
    return OpsConfig(
        roles=Roles(deployers=[ALICE], approvers=[BOB, SRE]),
        projects={
            "web": Project(gitlab="acme/web", default_ref="main", channel=GENERAL),
            "api": Project(gitlab="acme/api", default_ref="main", channel=DEPLOYS),
            # Built on the emulated Jenkins (bot/sandbox/jenkins.py)
            "legacy": Project(
                jenkins="folder/legacy-build", channel=LEGACY, protected_refs=["main"]
            ),
            "ops": Project(jira="OPS"),
        },
        services=services,
        alerts=Alerts(
            routes=[
                AlertRoute(
                    match={"severity": "critical"},
                    channel=ALERTS_CHANNEL,
                    escalate_after=timedelta(minutes=2),
                    escalate_to=[SRE],
                ),
                AlertRoute(channel=ALERTS_CHANNEL),
            ]
        ),
    )
