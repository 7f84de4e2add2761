"""The sandbox's deploy services: `api` through the emulated GitLab always, `web` on Docker when
an engine answers.

`api` deploys by playing manual jobs of an acme/api pipeline, which the emulated GitLab runs
(build runs by itself; canary, production and rollback wait for the bot to play them), so
`/deploy api 1.2.0` works on any machine. `web` runs real containers; the sandbox makes their
images itself from a `busybox` binary (no registry needed), as tests/dockerd_server.py does:

- `opsloop-sandbox/busybox:1`: /bin/busybox and its applet symlinks, imported as a root fs.
- `opsloop-sandbox/app:1`: a shell loop that stops at once on SIGTERM.
- `opsloop-sandbox/app:2`, `:3`: the same with a HEALTHCHECK, so a step waits for "healthy".

Its containers carry the label `opsloop.sandbox=1` beside opsloop's own, so the sandbox removes
only what it started (at start, since its state starts empty, and at stop).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config_file import CanaryStep, OpsConfig
from bot.config_types import Analysis
from bot.errors import IntegrationError
from bot.sandbox import cluster
from bot.sandbox.busybox_images import build_context, rootfs_tar
from bot.sandbox.emulators.gitlab import GitLabEmulator, JobSpec
from integrations.docker.config import DockerService
from integrations.docker.engine import ContainerEngine
from integrations.docker.shapes import LABEL_SERVICE, engine_address
from integrations.gitlab.config import GitLabService, JobStep
from integrations.kubernetes.config import KubernetesService

log = logging.getLogger("opsloop.sandbox")

API_PROJECT = "acme/api"
API_JOBS = (
    JobSpec("build", "build"),
    JobSpec("canary", "canary", when="manual", environment="canary"),
    JobSpec("production", "production", when="manual", environment="production"),
    JobSpec("rollback", "rollback", when="manual", environment="production"),
)

IMAGE = "opsloop-sandbox/app"
BASE_IMAGE = "opsloop-sandbox/busybox:1"
SANDBOX_LABEL = "opsloop.sandbox"
PING_SECONDS = 2.0
BUILD_SECONDS = 60.0
WEB = "web"

# Stops at once on SIGTERM: `wait` is interrupted by the trapped signal, while a plain `sleep`
# as PID 1 would ignore it until Docker kills it after the stop timeout.
_LOOP = "trap 'exit 0' TERM INT; while true; do sleep 1 & wait $!; done"
_HEALTHCHECK = "HEALTHCHECK --interval=1s --timeout=1s --retries=3 CMD true\n"
APP_IMAGES: dict[str, str] = {
    version: (
        f'FROM {BASE_IMAGE}\nLABEL app.version="{version}"\n'
        + (_HEALTHCHECK if version != "1" else "")
        + f'CMD ["sh", "-c", "{_LOOP}"]\n'
    )
    for version in ("1", "2", "3")
}
# `api`'s canary evidence, from the sandbox's emulated Prometheus (bot/sandbox/emulators/
# prometheus): a version named `...bad...` regresses, so `/deploy api 1.3.0-bad` is refused.
API_ANALYSIS = Analysis.model_validate(
    {
        "queries": {
            "error_rate": (
                "sum(rate(http_requests_total"
                '{service="$service",version="$version",code=~"5.."}[1m]))'
                ' / sum(rate(http_requests_total{service="$service",version="$version"}[1m]))'
            ),
            "p99_seconds": (
                "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket"
                '{service="$service",version="$version"}[1m])))'
            ),
        },
        "max_regression": "20%",
    }
)
HOW_TO_ENABLE = "start Docker, or set OPSLOOP_DOCKER_HOST (or DOCKER_HOST) to an engine"


def api_service(channel: str) -> GitLabService:
    """`api`: two manual jobs of an acme/api pipeline; Reject plays `rollback`."""
    return GitLabService(
        deployer="gitlab",
        project=API_PROJECT,
        ref="main",
        channel=channel,
        steps=[JobStep(percent=10, job="canary"), JobStep(percent=100, job="production")],
        rollback_job="rollback",
        approvals=1,
        alert_labels={"service": "api"},
        analysis=API_ANALYSIS,
    )


def web_service(channel: str) -> DockerService:
    """`web`: four containers of opsloop-sandbox/app, on the host's network (no bridge)."""
    return DockerService(
        deployer="docker",
        image=IMAGE,
        replicas=4,
        steps=[CanaryStep(percent=25), CanaryStep(percent=50), CanaryStep(percent=100)],
        channel=channel,
        container={"network_mode": "host", "labels": {SANDBOX_LABEL: "1"}},
    )


# acme/api's releases: the commits behind each tag, hours before now, so that `/ops dora` can
# measure lead time (the oldest commit of a change to its rollout completing) from GitLab's
# compare between the stable version and the new one, e.g. `/deploy api 1.2.1` after 1.2.0.
API_RELEASES = [
    ("1.2.0", [("Fix the checkout time-out", 72), ("Log the payment provider's answer", 50)]),
    ("1.2.1", [("Cache the price list", 26), ("Retry the stock lookup once", 5)]),
    ("1.3.0-bad", [("Try the new pricing engine", 2)]),
]


def prepare_gitlab(gitlab: GitLabEmulator) -> None:
    """acme/api pipelines get the jobs `api`'s steps play, and its releases their commits."""
    gitlab.set_pipeline_jobs(API_PROJECT, API_JOBS)
    now = datetime.now(UTC)
    for tag, commits in API_RELEASES:
        for message, hours_ago in commits:
            gitlab.push(API_PROJECT, "main", message, at=now - timedelta(hours=hours_ago))
        gitlab.add_tag(API_PROJECT, tag, "main", f"Release {tag}")


@dataclass
class DockerCheck:
    """Whether the sandbox can deploy `web`, and one line that says why (not)."""

    available: bool
    why: str
    built: list[str] = field(default_factory=list)
    removed: int = 0


async def check_docker(docker_host: str | None) -> DockerCheck:
    """Ping the engine quickly; make the sandbox's images where missing; remove containers an
    earlier sandbox left. Never raises: a missing Docker only leaves `web` out."""
    address = engine_address(docker_host)
    engine = ContainerEngine(docker_host, timeout=PING_SECONDS)
    try:
        version = await asyncio.wait_for(engine.ping(), PING_SECONDS + 1)
    except IntegrationError as e:
        return DockerCheck(False, e.message)
    except TimeoutError:
        return DockerCheck(False, f"Docker at {address} did not answer within {PING_SECONDS:g} s")
    except Exception as e:  # e.g. an address the SDK cannot use: Docker stays optional here
        return DockerCheck(False, f"Docker at {address} cannot be used: {_one_line(e)}")
    finally:
        await engine.close()
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(_prepare_engine, docker_host, version, address), BUILD_SECONDS
        )
    except TimeoutError:
        return DockerCheck(
            False, f"Docker {version} at {address} took over {BUILD_SECONDS:g} s to build images"
        )
    except Exception as e:  # the SDK's many errors: Docker stays optional in the sandbox
        log.debug("preparing Docker for the sandbox", exc_info=True)
        return DockerCheck(False, f"Docker {version} at {address} failed: {_one_line(e)}")


async def remove_sandbox_containers(docker_host: str | None) -> int:
    """Remove the `web` containers the sandbox started; how many there were."""
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(_remove_with_client, docker_host), BUILD_SECONDS
        )
    except Exception as e:
        log.warning("could not remove the sandbox's containers: %s", _one_line(e))
        return 0


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _client(docker_host: str | None) -> Any:
    import docker

    timeout = int(BUILD_SECONDS)
    if docker_host is None:
        return docker.from_env(timeout=timeout)
    return docker.DockerClient(base_url=docker_host, timeout=timeout)


def _prepare_engine(docker_host: str | None, version: str, address: str) -> DockerCheck:
    client = _client(docker_host)
    try:
        removed = _remove(client)
        missing = [tag for tag in APP_IMAGES if not _has_image(client, f"{IMAGE}:{tag}")]
        about = f"Docker {version} at {address}"
        if not missing:
            return DockerCheck(True, f"{about}, images {IMAGE}:1-3", removed=removed)
        busybox = shutil.which("busybox")
        if busybox is None:
            if {"1", "2"} & set(missing):
                return DockerCheck(
                    False,
                    f"{about} lacks {IMAGE}:1 and :2, and no `busybox` binary is on PATH to "
                    "build them from (apt-get install busybox-static)",
                    removed=removed,
                )
            return DockerCheck(True, f"{about}, images {IMAGE}:1-2", removed=removed)
        if not _has_image(client, BASE_IMAGE):
            repository, tag = BASE_IMAGE.rsplit(":", 1)
            client.api.import_image_from_data(
                rootfs_tar(busybox), repository=repository, tag=tag, changes=['CMD ["/bin/sh"]']
            )
        for tag in missing:
            client.images.build(
                fileobj=build_context(APP_IMAGES[tag]),
                custom_context=True,
                tag=f"{IMAGE}:{tag}",
                rm=True,
                pull=False,
            )
        built = [f"{IMAGE}:{tag}" for tag in missing]
        return DockerCheck(
            True,
            f"{about}, images {IMAGE}:1-3 (built {', '.join(':' + t for t in missing)} from "
            f"{busybox})",
            built=built,
            removed=removed,
        )
    finally:
        client.close()


def _has_image(client: Any, reference: str) -> bool:
    import docker.errors

    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def _remove_with_client(docker_host: str | None) -> int:
    client = _client(docker_host)
    try:
        return _remove(client)
    finally:
        client.close()


def _remove(client: Any) -> int:
    import docker.errors

    found = client.containers.list(
        all=True, filters={"label": [f"{LABEL_SERVICE}={WEB}", f"{SANDBOX_LABEL}=1"]}
    )
    for container in found:
        with suppress(docker.errors.NotFound):
            container.remove(force=True)
    return len(found)


def describe_services(config: OpsConfig) -> list[str]:
    """One line per deploy service, for the sandbox's start-up lines."""
    lines = []
    for name, s in sorted(config.services.items()):
        steps = ", ".join(f"{st.percent}%" for st in s.steps)
        if isinstance(s, KubernetesService) and s.rollout is not None:
            steps = "the Rollout's own"  # Argo's, read from the Rollout when a deploy starts
        lines.append(f"{name} ({s.destination()}; steps {steps})")
    return lines


def example_commands(config: OpsConfig) -> list[str]:
    """The page's /deploy examples for the sandbox's own services."""
    examples = []
    api = config.services.get("api")
    if isinstance(api, GitLabService) and api.project == API_PROJECT:
        examples.append("/deploy api 1.2.0")
    if cluster.is_sample(config):
        examples += cluster.EXAMPLES
    web = config.services.get(WEB)
    if isinstance(web, DockerService) and web.image == IMAGE:
        # The first deploy starts at full size; the second is the canary that asks for approval.
        examples += ["/deploy web 1", "/deploy web 2"]
    if config.services:
        examples.append("/deploy status")
    return examples
