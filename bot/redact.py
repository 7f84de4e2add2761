"""Credentials taken out of text before it is shown or logged: URL userinfo and secret values.

A URL setting may carry a password (`redis://:pw@host`); its value is echoed in a settings
error, and an SDK's exception may quote it. Both forms here work on any text, so they also
catch a URL quoted inside a longer message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MASK = "***"
# A secret shorter than this would mask common words in unrelated text.
MIN_SECRET_LENGTH = 6
# scheme://userinfo@ : the userinfo runs to the last "@" before the path (an unencoded "@" in
# a password stays hidden).
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@")
# scheme://user:password@ : the password alone.
_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#:@]*):[^\s/?#]*@")


def hide_userinfo(text: str) -> str:
    """`redis://:pw@host/0` -> `redis://***@host/0`, for any URL in `text`."""
    return _USERINFO.sub(rf"\1{MASK}@", text)


def mask_url_passwords(text: str) -> str:
    """`https://bob:pw@host` -> `https://bob:***@host`, for any URL in `text`."""
    return _PASSWORD.sub(rf"\1:{MASK}@", text)


def url_password(url: str | None) -> str | None:
    """The password a URL setting carries, as it may appear decoded in an error."""
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with each known secret value (of a useful length) masked."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, MASK)
    return text
