"""`opsloop sandbox` as a newcomer runs it: a real process, stopped as they would stop it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.browser import require_browser
from tests.servers import free_port

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def sandbox_process(tmp_path: Path) -> Iterator[str]:
    """Runs `python -m bot sandbox` in `tmp_path` as a newcomer would and yields the page's URL;
    stops it with Ctrl-C (SIGINT) and checks it exits cleanly, its Redis gone with it."""
    require_browser()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    env.update(
        PYTHONPATH=str(REPO),
        OPSLOOP_DATA_DIR=str(tmp_path / "data"),
        # Never a developer's Docker: /deploy web is tests/test_sandbox_deploys.py's, on dockerd.
        OPSLOOP_DOCKER_HOST="unix:///nonexistent/docker.sock",
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox", "--port", str(port)],
        env=env,
        cwd=tmp_path,  # no opsloop.yml or .env of the developer's
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "open http://" in line:
                url = re.search(r"http://\S+/", line)
                assert url is not None
                assert url.group(0) == f"http://127.0.0.1:{port}/"
                break
        else:
            pytest.fail(f"opsloop sandbox exited with {proc.wait()} before printing its URL")
        yield url.group(0)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
        assert code == 0
    # The embedded Redis it started is stopped with it.
    with socket.socket(socket.AF_UNIX) as s, pytest.raises(OSError):
        s.connect(str(tmp_path / "data" / "sandbox" / "redis.sock"))
