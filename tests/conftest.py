"""The test session's setup: a clean environment, and the shared fixtures of tests/fixtures.py."""

from __future__ import annotations

import os

# The bot reads .env from the working directory; tests must not pick up a developer's secrets.
os.environ.setdefault("OPSLOOP_CONFIG_FILE", os.devnull)

pytest_plugins = ["tests.fixtures"]
