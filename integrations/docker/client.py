"""The docker SDK behind one object: connected on first use, called in threads, and the one
place where its failures become the bot's `IntegrationError("Docker", ...)`.

The SDK (and requests under it) is imported by the first call that needs the engine, never when
this package is imported: a bot without a Docker service never loads it. Every message can be
shown to a Slack user as it is.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from bot.errors import IntegrationError
from integrations.docker.shapes import SYSTEM, engine_address, engine_url

MAX_REASON = 300  # characters of Docker's own explanation passed on to a person

T = TypeVar("T")


def clip(text: str, limit: int = MAX_REASON) -> str:
    """`text` on one line, cut to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sdk_errors() -> Any:
    """The docker SDK's `docker.errors`, for code that runs once the client is connected."""
    import docker.errors

    return docker.errors


def _reason(error: Any) -> str:
    """Docker's own explanation in an APIError."""
    text = error.explanation if isinstance(error.explanation, str) else str(error)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return clip(str(text))


class EngineClient:
    """A docker SDK client for one engine address, made on first use."""

    def __init__(self, base_url: str | None, *, timeout: float) -> None:
        """`base_url=None`: DOCKER_HOST or the local socket, as `docker.from_env()` does."""
        self._base_url = base_url
        self.where = engine_address(base_url)
        self.timeout = timeout
        self._client: Any = None  # docker.DockerClient

    def sdk(self) -> Any:
        """The connected `docker.DockerClient` (in a thread: connecting blocks)."""
        if self._client is None:
            self._probe()
            import docker

            if self._base_url is None:
                self._client = docker.from_env(timeout=int(self.timeout))
            else:
                self._client = docker.DockerClient(
                    base_url=self._base_url, timeout=int(self.timeout)
                )
        return self._client

    async def call(self, fn: Callable[[], T]) -> T:
        """Run one synchronous SDK step in a thread; turn its failure into IntegrationError."""
        try:
            return await asyncio.to_thread(fn)
        except IntegrationError:
            raise
        except Exception as e:
            error, reconnect = self._translate(e)
            if error is None:
                raise
            if reconnect:
                await self.close()  # the next call connects (and probes) afresh
            raise error from e

    async def close(self) -> None:
        """Release the connections; a later call connects again."""
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)

    def _probe(self) -> None:
        """Connect to a unix socket once before the SDK does.

        docker 7's unix transport leaks its socket when the connect fails (no socket file,
        nobody listening), which surfaces later as a ResourceWarning; this probe closes its own.
        """
        url = engine_url(self._base_url)
        if not url.startswith("unix://"):
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(self.timeout)
            try:
                probe.connect(url[len("unix://") :])
            except OSError as e:
                raise self._unreachable() from e

    def _unreachable(self) -> IntegrationError:
        return IntegrationError(SYSTEM, f"Docker at {self.where} is unreachable", retryable=True)

    def _translate(self, e: Exception) -> tuple[IntegrationError | None, bool]:
        """The bot's error for an SDK failure (None: not one), and whether to reconnect."""
        if isinstance(e, TypeError):  # an option containers.create does not know
            return IntegrationError(SYSTEM, f"a container option was not accepted: {e}"), False
        if "docker" not in sys.modules:  # nothing from the SDK has run: not its failure
            return None, False
        import requests.exceptions

        errors = sdk_errors()
        if isinstance(e, errors.ImageNotFound):
            return IntegrationError(SYSTEM, f"image was not found: {_reason(e)}"), False
        if isinstance(e, errors.APIError):
            retryable = e.status_code is not None and e.status_code >= 500
            message = f"Docker answered: {_reason(e)}"
            return IntegrationError(SYSTEM, message, retryable=retryable), False
        if isinstance(e, requests.exceptions.ReadTimeout):
            message = f"Docker at {self.where} did not answer within {self.timeout:g} s"
            return IntegrationError(SYSTEM, message, retryable=True), False
        if isinstance(e, requests.exceptions.ConnectionError):
            return self._unreachable(), True
        if isinstance(e, errors.DockerException):
            if "server API version" in str(e) or self._client is None:
                # The client could not even ask the engine for its API version.
                return self._unreachable(), True
            return IntegrationError(SYSTEM, f"the Docker client refused: {clip(str(e))}"), False
        return None, False
