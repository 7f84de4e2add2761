"""Logging set-up with a last line of defence: credentials are masked in every record.

Known secret values (the tokens, and the passwords of URL settings) and any URL's password
(`scheme://user:password@host` -> `scheme://user:***@host`) are masked in the message, in an
exception's message and in its formatted traceback, whatever code logged them.
"""

from __future__ import annotations

import logging
from typing import TextIO

from bot.redact import mask_secrets, mask_url_passwords, url_password
from bot.settings import SECRET_FIELDS, Settings

URL_FIELDS = (
    "redis_url",
    "slack_api_url",
    "gitlab_url",
    "alertmanager_url",
    "prometheus_url",
    "docker_host",
)
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Masks credentials in a record before any handler formats it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets
        self._tracebacks = logging.Formatter()

    def _clean(self, text: str) -> str:
        return mask_url_passwords(mask_secrets(text, self._secrets))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = None  # a bad format string: the handler reports it, as logging does
        if message is not None and (cleaned := self._clean(message)) != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatted here, once: a handler's formatter uses exc_text when it is set.
            record.exc_text = self._tracebacks.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True


def known_secrets(settings: Settings) -> list[str]:
    """The secret settings' values and the passwords inside URL settings."""
    values = [settings.secret(f) for f in SECRET_FIELDS]
    values += [url_password(getattr(settings, f)) for f in URL_FIELDS]
    return [v for v in values if v]


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Root logging to `stream` (stderr), every record passed through RedactSecrets."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactSecrets(known_secrets(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # arq logs every job at INFO; that is noise at our default level.
    logging.getLogger("arq").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
