"""The sandbox's sample workspace: a few people, channels and the YAML config that uses them."""

from __future__ import annotations

from datetime import timedelta

from bot.config_file import AlertRoute, Alerts, OpsConfig, Project, Roles
from bot.slack_emulator import EmulatorUser

ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
SRE = "S0SRE"
ALERTS_CHANNEL = "C0ALERTS"

USERS = [
    EmulatorUser(id=ALICE, name="alice", real_name="Alice (deployer)", email="alice@example.com"),
    EmulatorUser(id=BOB, name="bob", real_name="Bob (SRE)", email="bob@example.com"),
    EmulatorUser(id=CAROL, name="carol", real_name="Carol (developer)", email="carol@example.com"),
]
GENERAL, DEPLOYS = "C0GENERAL", "C0DEPLOYS"
CHANNELS = {GENERAL: "general", ALERTS_CHANNEL: "alerts", DEPLOYS: "deploys"}
USERGROUPS = {SRE: [BOB]}


def sample_config() -> OpsConfig:
    """Roles for the sample people and alert routes for the sample alert (the sandbox page's
    "Fire sample alert"): critical alerts escalate to @sre (Bob) after two minutes unanswered.

    The same as this opsloop.yml:

        roles: {deployers: [U0ALICE], approvers: [U0BOB, S0SRE]}
        projects:
          web: {gitlab: acme/web, default_ref: main, channel: C0GENERAL}
          api: {gitlab: acme/api, default_ref: main, channel: C0DEPLOYS}
        alerts:
          routes:
            - match: {severity: critical}
              channel: C0ALERTS
              escalate_after: 2m
              escalate_to: [S0SRE]
            - channel: C0ALERTS
    """
    return OpsConfig(
        roles=Roles(deployers=[ALICE], approvers=[BOB, SRE]),
        projects={
            "web": Project(gitlab="acme/web", default_ref="main", channel=GENERAL),
            "api": Project(gitlab="acme/api", default_ref="main", channel=DEPLOYS),
        },
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
