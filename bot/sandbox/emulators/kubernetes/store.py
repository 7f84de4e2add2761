"""The objects the emulated cluster holds, one resourceVersion counter, and watch events.

Every write bumps the counter and appends an event to a bounded history; watchers get the
events live, and a watch from a resourceVersion older than the history answers 410 Gone,
as etcd's compaction makes the real server answer. `compact()` drops the history at once.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .models import JSON
from .resources import Resource

HISTORY = 1000  # events kept for watches that resume from a resourceVersion


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_hash(value: Any, length: int = 10) -> str:
    """A short hash of a JSON value in Kubernetes' 'safe' alphabet (no vowels), as in
    pod-template-hash labels, so names look like the real `shop-6c5b8f7d9b`."""
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).digest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


@dataclass
class Event:
    rv: int
    resource: Resource
    type: str  # ADDED, MODIFIED, DELETED
    object: JSON


@dataclass
class Watcher:
    resource: Resource
    namespace: str  # "" for all namespaces
    accepts: Callable[[JSON], bool]
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)


class Store:
    """Objects by (plural, namespace, name), as the API shows them (deep copies go out)."""

    def __init__(self) -> None:
        self.rv = 1
        self.objects: dict[tuple[str, str, str], JSON] = {}
        self.history: deque[Event] = deque(maxlen=HISTORY)
        # Events older than this are gone: a watch from before it answers 410.
        self.oldest_rv = 1
        self.watchers: list[Watcher] = []

    # -- reading --------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str) -> JSON | None:
        found = self.objects.get((resource.plural, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(self, resource: Resource, namespace: str = "") -> list[JSON]:
        return [copy.deepcopy(o) for o in self._items(resource, namespace)]

    def _items(self, resource: Resource, namespace: str) -> Iterator[JSON]:
        for (plural, ns, _), obj in sorted(self.objects.items()):
            if plural == resource.plural and (not namespace or ns == namespace):
                yield obj

    # -- writing --------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def create(self, resource: Resource, obj: JSON) -> JSON:
        """Stores a new object, filling in what the server owns in its metadata."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if resource.namespaced else ""
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        meta.update(
            uid=str(uuid.uuid4()),
            resourceVersion=self._next_rv(),
            creationTimestamp=now_iso(),
        )
        if resource.namespaced:
            meta["namespace"] = namespace
        if resource.plural != "namespaces":
            meta["generation"] = 1
        self.objects[(resource.plural, namespace, meta["name"])] = obj
        self._emit(resource, "ADDED", obj)
        return copy.deepcopy(obj)

    def replace(self, resource: Resource, obj: JSON) -> JSON:
        """Stores a changed object: a new resourceVersion, generation + 1 if its spec changed.
        Unchanged objects are left alone (no event), as the real server does."""
        meta = obj["metadata"]
        key = (resource.plural, meta.get("namespace", ""), meta["name"])
        old = self.objects[key]
        obj = copy.deepcopy(obj)
        for owned in ("uid", "creationTimestamp", "generation", "resourceVersion"):
            if owned in old["metadata"]:
                obj["metadata"][owned] = old["metadata"][owned]
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        if obj == old:
            return copy.deepcopy(old)
        if obj.get("spec") != old.get("spec") and "generation" in old["metadata"]:
            obj["metadata"]["generation"] = old["metadata"]["generation"] + 1
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[key] = obj
        self._emit(resource, "MODIFIED", obj)
        return copy.deepcopy(obj)

    def delete(self, resource: Resource, namespace: str, name: str) -> JSON | None:
        obj = self.objects.pop((resource.plural, namespace, name), None)
        if obj is None:
            return None
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._emit(resource, "DELETED", obj)
        return copy.deepcopy(obj)

    def compact(self) -> None:
        """Forgets every past event: watches from an older resourceVersion answer 410."""
        self.history.clear()
        self.oldest_rv = self.rv

    # -- watching -------------------------------------------------------------------------

    def _emit(self, resource: Resource, kind: str, obj: JSON) -> None:
        event = Event(int(obj["metadata"]["resourceVersion"]), resource, kind, copy.deepcopy(obj))
        if len(self.history) == self.history.maxlen:
            self.oldest_rv = self.history[0].rv
        self.history.append(event)
        for watcher in self.watchers:
            if self._concerns(watcher, event):
                watcher.queue.put_nowait(event)

    @staticmethod
    def _concerns(watcher: Watcher, event: Event) -> bool:
        meta = event.object["metadata"]
        return (
            event.resource.plural == watcher.resource.plural
            and (not watcher.namespace or meta.get("namespace") == watcher.namespace)
            and watcher.accepts(event.object)
        )

    def watch(
        self, resource: Resource, namespace: str, accepts: Callable[[JSON], bool], since: int
    ) -> Watcher | None:
        """A watcher fed the events after `since` (0: every object now, as ADDED), then live;
        None when `since` is older than the kept history (the caller answers 410)."""
        watcher = Watcher(resource, namespace, accepts)
        if since == 0:
            for obj in self._items(resource, namespace):
                if accepts(obj):
                    rv = int(obj["metadata"]["resourceVersion"])
                    watcher.queue.put_nowait(Event(rv, resource, "ADDED", copy.deepcopy(obj)))
        elif since < self.oldest_rv:
            return None
        else:
            for event in self.history:
                if event.rv > since and self._concerns(watcher, event):
                    watcher.queue.put_nowait(event)
        self.watchers.append(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        if watcher in self.watchers:
            self.watchers.remove(watcher)
