"""Docker images made from a busybox-static binary, for machines with no registry: the sandbox's
sample app and the tests' images are built FROM a root filesystem imported from it."""

from __future__ import annotations

import io
import subprocess
import tarfile


def rootfs_tar(busybox: str) -> bytes:
    """A root filesystem with /bin/busybox, one symlink per applet and an empty /tmp."""
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777), ("etc", 0o755)):
            entry = tarfile.TarInfo(name)
            entry.type = tarfile.DIRTYPE
            entry.mode = mode
            tar.addfile(entry)
        tar.add(busybox, arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def build_context(dockerfile: str) -> io.BytesIO:
    """A docker build context holding only this Dockerfile."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = dockerfile.encode()
        entry = tarfile.TarInfo("Dockerfile")
        entry.size = len(data)
        tar.addfile(entry, io.BytesIO(data))
    buffer.seek(0)
    return buffer
