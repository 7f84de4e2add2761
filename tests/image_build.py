"""Building the repository's Dockerfile on a test dockerd, where no registry is reachable.

- The base: a Debian bookworm root filesystem made by `mmdebstrap` (python3 and its venv module,
  no compiler), imported as `local/python:3.11-bookworm` and passed as the build argument BASE.
  Its tar is kept in pytest's cache (`.pytest_cache/d/opsloop-image/`, keyed by everything that
  shapes it), so only the first run pays the ~25 s; `pytest --cache-clear` or `make clean`
  drops it.
- The wheels: the build containers have no network, and the host's way out (here an
  intercepting proxy whose CA only the host trusts) is not theirs. So `pip wheel` runs in a
  container of the base itself, on the host's network and trusting the host's CA bundle, which
  resolves the dependencies for the base's own Python (markers such as `python_full_version`
  included); the build then installs from that wheelhouse alone (the Dockerfile's WHEELHOUSE).
- The context: what `.dockerignore` lets through, plus `wheelhouse/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What the Dockerfile's stages need of a base: python3 and `python3 -m venv`. Nothing else, so
# the image test can show that the final stage has no compiler.
BASE_PACKAGES = ("python3", "python3-venv")
BASE_TAG = "local/python:3.11-bookworm"
MMDEBSTRAP = [
    "mmdebstrap",
    "--variant=minbase",
    "--format=tar",
    "--include=" + ",".join(BASE_PACKAGES),
    "--aptopt=APT::Install-Recommends false",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
]
# Where the host's TLS trust lives (Debian's ca-certificates); pip in the base trusts it too.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
PIP_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST")


def why_no_image_tools() -> str | None:
    """Why the base image cannot be made here, or None (dockerd is checked on its own)."""
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed (apt-get install mmdebstrap)"
    return None


def base_key() -> str:
    """Everything that shapes the base tar, hashed: a change makes a new one."""
    return hashlib.sha256(json.dumps([SUITE, MIRROR, *MMDEBSTRAP]).encode()).hexdigest()[:16]


def base_tar(cache: Path) -> Path:
    """The base's root filesystem as a tar, made by mmdebstrap unless the cache has it."""
    cache.mkdir(parents=True, exist_ok=True)
    tar = cache / f"base-{base_key()}.tar"
    if tar.is_file():
        return tar
    partial = cache / f"partial-{os.getpid()}.tar"
    try:
        done = subprocess.run(
            [*MMDEBSTRAP, SUITE, str(partial), MIRROR],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed:\n{done.stderr[-3000:]}")
        partial.replace(tar)  # atomic: a concurrent run sees the whole tar or none
    finally:
        partial.unlink(missing_ok=True)
    for stale in cache.glob("base-*.tar"):
        if stale != tar:
            stale.unlink(missing_ok=True)
    return tar


def requirements() -> list[str]:
    """What installing the project needs: its dependencies and its build backend."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [*project["project"]["dependencies"], *project["build-system"]["requires"]]


def wheelhouse(client: Any, cache: Path) -> Path:
    """Wheels for `requirements()` made by the base's own pip, cached per requirements."""
    key = hashlib.sha256(json.dumps([base_key(), requirements()]).encode()).hexdigest()[:16]
    folder = cache / f"wheels-{key}"
    if (folder / "complete").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text("\n".join(requirements()) + "\n")
    environment = {
        name: os.environ[name] for name in PROXY_VARIABLES + PIP_VARIABLES if name in os.environ
    }
    volumes = {str(folder): {"bind": "/wheelhouse", "mode": "rw"}}
    if HOST_CA_BUNDLE.is_file():
        volumes[str(HOST_CA_BUNDLE)] = {"bind": "/etc/host-ca.crt", "mode": "ro"}
        environment["PIP_CERT"] = "/etc/host-ca.crt"
    script = (
        "python3 -m venv /tmp/venv && /tmp/venv/bin/pip wheel --quiet --disable-pip-version-check"
        " --wheel-dir /wheelhouse -r /wheelhouse/requirements.txt"
    )
    container = client.containers.run(
        BASE_TAG, ["sh", "-c", script], network_mode="host", volumes=volumes,
        environment=environment, detach=True,
    )  # fmt: skip
    try:
        status = container.wait(timeout=600)
        if status["StatusCode"] != 0:
            log = container.logs().decode(errors="replace")[-3000:]
            raise RuntimeError(f"pip wheel in the base failed:\n{log}")
    finally:
        container.remove(force=True)
    (folder / "complete").touch()
    for stale in cache.glob("wheels-*"):
        if stale != folder:
            shutil.rmtree(stale, ignore_errors=True)
    return folder


def build_context(wheels: Path, into: Path) -> Path:
    """The repository as `.dockerignore` lets it through, plus `wheelhouse/`."""
    from docker.utils.build import exclude_paths

    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    into.mkdir(parents=True, exist_ok=True)
    for name in sorted(exclude_paths(str(REPO), patterns, dockerfile="Dockerfile")):
        source = REPO / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    shutil.copy2(REPO / ".dockerignore", into / ".dockerignore")
    shutil.copytree(wheels, into / "wheelhouse")
    return into


@dataclass
class BuiltImage:
    tag: str
    size: int  # bytes, as `docker image ls` reports it
    attrs: dict[str, Any]


def build_image(client: Any, context: Path, tag: str) -> BuiltImage:
    """`docker build --build-arg BASE=... --build-arg WHEELHOUSE=wheelhouse -t TAG context`."""
    import docker

    try:
        image, _ = client.images.build(
            path=str(context),
            tag=tag,
            buildargs={"BASE": BASE_TAG, "WHEELHOUSE": "wheelhouse"},
            rm=True,
            forcerm=True,
            pull=False,
            timeout=900,
        )
    except docker.errors.BuildError as e:
        log = "".join(str(line.get("stream", line)) for line in e.build_log)
        raise RuntimeError(f"docker build failed:\n{log[-5000:]}") from None
    return BuiltImage(tag, int(image.attrs["Size"]), image.attrs)


def import_base(client: Any, tar: Path) -> None:
    """`docker import` the base's tar as BASE_TAG."""
    client.api.import_image_from_file(
        str(tar), repository=BASE_TAG.split(":")[0], tag=BASE_TAG.split(":")[1],
        changes=['CMD ["python3"]'],
    )  # fmt: skip
