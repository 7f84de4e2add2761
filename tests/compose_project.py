"""deploy/compose/ as a user would have it, in a temporary directory, run by Debian's
docker-compose (1.29, the Python one).

The copy keeps the repository's layout around it (the compose file names `../..` as the build
context and `../monitoring/opsloop.rules.yml`) and carries `.env` copied from `.env.example`,
so the repository itself is never written to. docker-compose runs with a minimal environment:
the shell's variables would win over `.env` in the file's `${...}`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.image_build import REPO

COMPOSE_DIR = REPO / "deploy" / "compose"
RULES = REPO / "deploy" / "monitoring" / "opsloop.rules.yml"


def why_no_compose() -> str | None:
    if shutil.which("docker-compose") is None:
        return "docker-compose is not installed (apt-get install docker-compose)"
    return None


def project_copy(into: Path) -> Path:
    """The compose directory, with `.env` from `.env.example`; returns the directory."""
    compose = into / "deploy" / "compose"
    shutil.copytree(COMPOSE_DIR, compose, ignore=shutil.ignore_patterns(".env"))
    shutil.copy2(compose / ".env.example", compose / ".env")
    monitoring = into / "deploy" / "monitoring"
    monitoring.mkdir(parents=True)
    shutil.copy2(RULES, monitoring / RULES.name)
    return compose


def compose(
    directory: Path,
    *args: str,
    files: tuple[str, ...] = (),
    docker_host: str = "",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`docker-compose [-f FILE ...] ARGS` in `directory`; raises with its output on failure."""
    environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(directory)}
    if docker_host:
        environment["DOCKER_HOST"] = docker_host
    command = ["docker-compose"]
    for file in files:
        command += ["-f", file]
    done = subprocess.run(
        [*command, *args], cwd=directory, env=environment, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"docker-compose {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done


def resolved(directory: Path) -> dict[str, object]:
    """`docker-compose config`: the file as Compose reads it, `.env` substituted."""
    loaded = yaml.safe_load(compose(directory, "config").stdout)
    assert isinstance(loaded, dict)
    return loaded
