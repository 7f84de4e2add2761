"""Label and field selectors, as `?labelSelector=` and `?fieldSelector=` carry them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import bad_request
from .models import JSON

_SET = re.compile(r"^\s*(!?)([\w./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQUALITY = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")


@dataclass(frozen=True)
class Requirement:
    """One term: `key=v`, `key!=v`, `key in (a,b)`, `key notin (a)`, `key`, `!key`."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def holds(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op in ("=", "in"):
            return value in self.values
        return value not in self.values  # != and notin also match a missing label


def _split(selector: str) -> list[str]:
    """Commas separate terms, except inside the parentheses of `in (a,b)`."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def parse_labels(selector: str) -> list[Requirement]:
    requirements = []
    for term in _split(selector):
        equality = _EQUALITY.match(term)
        if equality:
            key, op, value = equality.groups()
            requirements.append(Requirement(key, "!=" if op == "!=" else "=", frozenset([value])))
            continue
        found = _SET.match(term)
        if not found:
            raise bad_request(f"unable to parse requirement: {term.strip()!r}")
        negated, key, op, values = found.groups()
        if op:
            members = frozenset(v.strip() for v in values.split(","))
            requirements.append(Requirement(key, op, members))
        else:
            requirements.append(Requirement(key, "!exists" if negated else "exists"))
    return requirements


def parse_fields(selector: str) -> list[Requirement]:
    """metadata.name and metadata.namespace, the fields kubectl selects by."""
    requirements = []
    for term in _split(selector):
        equality = _EQUALITY.match(term)
        if not equality or equality.group(1) not in ("metadata.name", "metadata.namespace"):
            raise bad_request(
                f'"{term.strip()}" is not a known field selector: only "metadata.name", '
                '"metadata.namespace"'
            )
        field, op, value = equality.groups()
        requirements.append(Requirement(field, "!=" if op == "!=" else "=", frozenset([value])))
    return requirements


def object_matcher(label_selector: str, field_selector: str) -> Callable[[JSON], bool]:
    labels = parse_labels(label_selector)
    fields = parse_fields(field_selector)

    def matches(obj: JSON) -> bool:
        meta = obj.get("metadata") or {}
        own_labels = meta.get("labels") or {}
        own_fields = {f"metadata.{k}": str(meta.get(k, "")) for k in ("name", "namespace")}
        return all(r.holds(own_labels) for r in labels) and all(r.holds(own_fields) for r in fields)

    return matches
