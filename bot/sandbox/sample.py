"""The sandbox's sample workspace: a few people, channels and the YAML config that uses them."""

from __future__ import annotations

from bot.config_file import OpsConfig, Roles
from bot.slack_emulator import EmulatorUser

ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"

USERS = [
    EmulatorUser(id=ALICE, name="alice", real_name="Alice (deployer)", email="alice@example.com"),
    EmulatorUser(id=BOB, name="bob", real_name="Bob (approver)", email="bob@example.com"),
    EmulatorUser(id=CAROL, name="carol", real_name="Carol (developer)", email="carol@example.com"),
]
CHANNELS = {"C0GENERAL": "general", "C0ALERTS": "alerts", "C0DEPLOYS": "deploys"}
USERGROUPS = {"S0SRE": [BOB]}


def sample_config() -> OpsConfig:
    """Roles for the sample people; later capabilities add projects, services and routes."""
    return OpsConfig(roles=Roles(deployers=[ALICE], approvers=[BOB, "S0SRE"]))
