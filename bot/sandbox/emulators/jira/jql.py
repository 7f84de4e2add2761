"""The part of JQL the emulator understands: clauses joined by AND, then ORDER BY.

    project = WEB AND statusCategory != Done AND assignee = "5b10..." ORDER BY created DESC
    project = WEB AND labels = "opsloop3f2a..."

Fields: project, statusCategory, status, assignee, labels, key; operators = and !=. Anything
else is refused as Jira refuses it: 400 with its message in `errorMessages`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .state import CATEGORY_NAMES, IssueRecord

_CLAUSE = re.compile(r'^\s*(\w+)\s*(!=|=)\s*("(?:[^"\\]|\\.)*"|[^\s"]+)\s*$')
_ORDER = re.compile(r"\s+ORDER\s+BY\s+(\w+)(?:\s+(ASC|DESC))?\s*$", re.IGNORECASE)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)


class JqlError(ValueError):
    """Jira's words for a query it cannot run."""


Match = Callable[[IssueRecord], bool]


def compile_jql(jql: str) -> tuple[Match, bool]:
    """A predicate over issues, and whether the newest come first."""
    text = jql.strip()
    newest_first = True
    order = _ORDER.search(" " + text)
    if order:
        text = (" " + text)[: order.start()].strip()
        if order.group(1).lower() != "created":
            raise JqlError(f"Field '{order.group(1)}' does not support sorting here.")
        newest_first = (order.group(2) or "ASC").upper() == "DESC"
    tests: list[Match] = []
    for clause in _AND.split(text) if text else []:
        m = _CLAUSE.match(clause)
        if m is None:
            raise JqlError(f"Error in the JQL Query: the clause '{clause.strip()}' is not valid.")
        name, op, raw = m.group(1), m.group(2), m.group(3)
        value = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw
        test = _field_test(name, value)
        tests.append(test if op == "=" else (lambda t: lambda i: not t(i))(test))
    return (lambda issue: all(t(issue) for t in tests)), newest_first


def _field_test(name: str, value: str) -> Match:
    low = name.lower()
    if low == "project":
        return lambda i: i.project.lower() == value.lower()
    if low == "statuscategory":
        wanted = {v.lower(): k for k, v in CATEGORY_NAMES.items()}.get(value.lower(), value)
        return lambda i: i.status.category == wanted
    if low == "status":
        return lambda i: i.status.name.lower() == value.lower()
    if low == "assignee":
        return lambda i: (i.assignee or "") == value
    if low == "labels":
        return lambda i: value in i.labels
    if low == "key":
        return lambda i: i.key.upper() == value.upper()
    raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
