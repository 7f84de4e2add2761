"""A real Docker Engine for tests: its own socket, data and exec roots, stopped by its own PID.

dockerd runs with `--bridge=none` and no iptables/forwarding changes, so it leaves the host's
network alone; containers get only `lo` unless they run with `network_mode="host"`. No registry
is needed: the images are made here from busybox-static.

- `local/busybox:1`: /bin/busybox and its applet symlinks, imported as a root filesystem.
- `local/app:1`: a long-running shell loop that exits at once on SIGTERM.
- `local/app:2`: the same with a HEALTHCHECK every second, so readiness waits for "healthy".
- `local/app:bad`: exits at once with a line on stderr.

Tests ask for the `dockerd` fixture (tests/fixtures.py) by name: one engine per test module
(starting it and building the images takes about a second).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.sandbox.busybox_images import build_context, rootfs_tar

READY_WITHIN = 20.0

# A container stops on SIGTERM at once: `wait` is interrupted by the trapped signal, while a
# plain `sleep` as PID 1 would ignore it until Docker kills it after the stop timeout.
LOOP = "trap 'exit 0' TERM INT; while true; do sleep 1 & wait $!; done"
APP_IMAGES: dict[str, str] = {
    "1": f'FROM local/busybox:1\nLABEL app.version="1"\nCMD ["sh", "-c", "{LOOP}"]\n',
    "2": (
        'FROM local/busybox:1\nLABEL app.version="2"\n'
        "HEALTHCHECK --interval=1s --timeout=1s --retries=3 CMD true\n"
        f'CMD ["sh", "-c", "{LOOP}"]\n'
    ),
    "bad": (
        'FROM local/busybox:1\nCMD ["sh", "-c", "echo app failed: missing config >&2; exit 3"]\n'
    ),
}


@dataclass
class DockerEngine:
    """A dockerd process listening only on a unix socket in `directory`."""

    binary: str
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    client: Any = None  # docker.DockerClient once started

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_file(self) -> Path:
        return self.directory / "dockerd.log"

    def start(self) -> None:
        """Start dockerd and wait until its API answers."""
        import docker

        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "-H", self.url,
                    "--data-root", str(self.directory / "data"),
                    "--exec-root", str(self.directory / "exec"),
                    "--pidfile", str(self.directory / "dockerd.pid"),
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--ip-forward=false",
                    "--ip-masq=false",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.socket.exists():
                try:
                    client = docker.DockerClient(base_url=self.url, timeout=10)
                    client.ping()
                except docker.errors.DockerException:
                    pass
                else:
                    self.client = client
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dockerd did not start:\n{self._log_tail()}")

    def build_images(self, busybox: str) -> None:
        """local/busybox:1 imported from busybox-static; local/app:{1,2,bad} built from it."""
        self.client.api.import_image_from_data(
            rootfs_tar(busybox),
            repository="local/busybox",
            tag="1",
            changes=['CMD ["/bin/sh"]'],
        )
        for tag, dockerfile in APP_IMAGES.items():
            self.client.images.build(
                fileobj=build_context(dockerfile),
                custom_context=True,
                tag=f"local/app:{tag}",
                rm=True,
                pull=False,
            )

    def remove_containers(self) -> None:
        """Remove every container on this engine (tests start from nothing)."""
        for container in self.client.containers.list(all=True):
            container.remove(force=True)

    def stop(self) -> None:
        """Remove the containers, terminate dockerd by PID and wait."""
        if self.client is not None:
            with suppress(Exception):  # best effort: dockerd kills what is left anyway
                self.remove_containers()
            self.client.close()
            self.client = None
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None

    def remove_directory(self) -> None:
        """Unmount what dockerd left mounted (its default netns under exec/), then delete."""
        prefix = str(self.directory) + "/"
        with suppress(OSError):
            mounts = [
                line.split()[1]
                for line in Path("/proc/self/mounts").read_text().splitlines()
                if line.split()[1].startswith(prefix)
            ]
            for mount in sorted(mounts, reverse=True):
                subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def why_no_dockerd() -> str | None:
    """Why no dockerd can be started here, or None."""
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (apt-get install docker.io)"
    if shutil.which("busybox") is None:
        return "busybox is not installed (apt-get install busybox-static)"
    if os.geteuid() != 0:
        return "dockerd needs root"
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the docker SDK is not installed (pip install 'docker>=7,<8')"
    return None
