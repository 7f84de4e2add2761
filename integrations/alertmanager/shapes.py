"""Alertmanager's API v2 shapes read into the bot's types (bot/alerting/ports.py), and back.

Every reader raises `Unreadable` on a shape the API does not describe; the client turns that
into the one error a person sees (errors.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from bot.alerting.ports import ActiveAlert, Matcher, Silence


class Unreadable(ValueError):
    """Alertmanager's answer did not have the shape its API describes."""


def silence_marker(key: str) -> str:
    """What ends the comment of a silence made for request `key`: how a re-run finds it.

    Never the matchers, the author or the rest of the comment: two people's requests may
    share all of those, and each must keep its own silence."""
    return f"[opsloop:{key}]"


def filters(matchers: Sequence[Matcher]) -> list[tuple[str, str]]:
    """The query parameters that keep what matches every matcher."""
    return [("filter", m.expression()) for m in matchers]


def silence_body(matchers: Sequence[Matcher]) -> list[dict[str, object]]:
    """Matchers as a silence's JSON body carries them."""
    return [
        {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}
        for m in matchers
    ]


def marked(data: object, key: str) -> Silence | None:
    """The live silence in a `GET /api/v2/silences` answer whose comment carries `key`."""
    marker = silence_marker(key)
    for found in (silence(s) for s in as_list(data)):
        if found.state in ("active", "pending") and found.comment.endswith(marker):
            return found
    return None


def flag(value: bool) -> str:
    return "true" if value else "false"


def rfc3339(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# Go's RFC3339Nano: up to nine fractional digits, which `fromisoformat` refuses beyond six.
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", re.I)
_ZERO_YEAR = 1  # Go's zero time, 0001-01-01T00:00:00Z, means "not set"


def parse_time(value: object) -> datetime | None:
    """An Alertmanager timestamp as an aware UTC datetime; None for Go's zero time.

    Raises ValueError for anything else, so webhook parsers can use it as well.
    """
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise Unreadable(f"not a timestamp: {value!r}")
    whole, fraction, zone = match.groups()
    micros = (fraction or "")[:6].ljust(6, "0")
    moment = datetime.fromisoformat(f"{whole}.{micros}{'+00:00' if zone in 'Zz' else zone}")
    if moment.year == _ZERO_YEAR:
        return None
    return moment.astimezone(UTC)


def _required_time(value: object) -> datetime:
    moment = parse_time(value)
    if moment is None:
        raise Unreadable("a required timestamp is unset")
    return moment


def field(data: object, key: str) -> object:
    if not isinstance(data, dict) or key not in data:
        raise Unreadable(f"missing {key}")
    return data[key]


def text(value: object) -> str:
    if not isinstance(value, str):
        raise Unreadable(f"not a string: {value!r}")
    return value


def as_list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise Unreadable("not a list")
    return value


def _labels(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise Unreadable("not a label set")
    return {str(k): v for k, v in value.items()}


def _ids(value: object) -> tuple[str, ...]:
    return tuple(text(v) for v in as_list(value if value is not None else []))


def alert(data: object) -> ActiveAlert:
    """One alert of a `GET /api/v2/alerts` answer."""
    status = field(data, "status")
    generator = data.get("generatorURL") if isinstance(data, dict) else None
    return ActiveAlert(
        fingerprint=text(field(data, "fingerprint")),
        labels=_labels(field(data, "labels")),
        annotations=_labels(data.get("annotations") if isinstance(data, dict) else None),
        starts_at=_required_time(field(data, "startsAt")),
        ends_at=parse_time(field(data, "endsAt")),
        state=text(field(status, "state")),
        silenced_by=_ids(status.get("silencedBy") if isinstance(status, dict) else None),
        inhibited_by=_ids(status.get("inhibitedBy") if isinstance(status, dict) else None),
        generator_url=generator if isinstance(generator, str) and generator else None,
    )


def _matcher(data: object) -> Matcher:
    is_equal = data.get("isEqual", True) if isinstance(data, dict) else True
    return Matcher(
        name=text(field(data, "name")),
        value=text(field(data, "value")),
        is_regex=field(data, "isRegex") is True,
        is_equal=is_equal is not False,
    )


def silence(data: object) -> Silence:
    """One silence as `GET /api/v2/silence/{id}` answers it."""
    return Silence(
        id=text(field(data, "id")),
        matchers=tuple(_matcher(m) for m in as_list(field(data, "matchers"))),
        starts_at=_required_time(field(data, "startsAt")),
        ends_at=_required_time(field(data, "endsAt")),
        created_by=text(field(data, "createdBy")),
        comment=text(field(data, "comment")),
        state=text(field(field(data, "status"), "state")),
    )
