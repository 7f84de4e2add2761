"""Flagger as the wiring sees it: used when a service says `deployer: flagger`; its deployers
are the gates Flagger's webhooks call at `POST /hooks/flagger`, which answers only while
OPSLOOP_FLAGGER_WEBHOOK_TOKEN is set."""

from __future__ import annotations

from bot.config_file import OpsConfig
from bot.deploys.ports import IMAGE_TAG
from bot.plugins import DeployerKind, Plugin, Provided
from bot.settings import Settings
from integrations.flagger.config import FlaggerService
from integrations.flagger.deployer import KIND, flagger_deployers

_NO_TOKEN = (
    "OPSLOOP_FLAGGER_WEBHOOK_TOKEN is not set, so /hooks/flagger answers 404 and Flagger's "
    "gates stay closed"
)


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return any(s.deployer == KIND for s in config.services.values())


def _start(settings: Settings, config: OpsConfig) -> Provided:
    canaries = sorted(
        f"{s.namespace}/{s.canary}"
        for s in config.services.values()
        if isinstance(s, FlaggerService)
    )
    token_set = bool(settings.secret("flagger_webhook_token"))

    async def check() -> str:
        # Flagger calls opsloop, not the other way round: what can be checked is the token.
        if not token_set:
            raise RuntimeError(_NO_TOKEN)
        return f"webhook token set; gates for {', '.join(canaries)} at /hooks/flagger"

    status = "Flagger gate on" if token_set else "Flagger gate off (no webhook token)"
    return Provided(status=status, check=check, deployers={KIND: flagger_deployers()})


PLUGIN = Plugin(
    name="flagger",
    configured=_configured,
    start=_start,
    status_when_off="Flagger not used",
    deployers=(
        DeployerKind(
            name=KIND,
            model=FlaggerService,
            versions=IMAGE_TAG,
            not_configured="{service} is a Flagger canary, which this opsloop cannot gate.",
        ),
    ),
)
