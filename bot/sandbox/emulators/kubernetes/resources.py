"""The resource types the emulator serves, as discovery lists them."""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    plural: str
    singular: str
    kind: str
    group: str  # "" for the core group
    version: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Custom resources (CRDs) refuse strategic merge patches, as the real API server does.
    custom: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `namespaces`: the name errors use."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


NAMESPACES = Resource(
    "namespaces",
    "namespace",
    "Namespace",
    "",
    "v1",
    False,
    verbs=("create", "get", "list", "watch"),
    short_names=("ns",),
)
DEPLOYMENTS = Resource(
    "deployments",
    "deployment",
    "Deployment",
    "apps",
    "v1",
    True,
    short_names=("deploy",),
    subresources=("scale", "status"),
    categories=("all",),
)
REPLICASETS = Resource(
    "replicasets",
    "replicaset",
    "ReplicaSet",
    "apps",
    "v1",
    True,
    short_names=("rs",),
    subresources=("scale", "status"),
    categories=("all",),
)
ROLLOUTS = Resource(
    "rollouts",
    "rollout",
    "Rollout",
    "argoproj.io",
    "v1alpha1",
    True,
    short_names=("ro",),
    subresources=("scale", "status"),
    custom=True,
)
# Flagger's Canary: stored and served only (no controller; bot/sandbox/.../canaries.py).
CANARIES = Resource(
    "canaries",
    "canary",
    "Canary",
    "flagger.app",
    "v1beta1",
    True,
    short_names=("canary",),
    subresources=("status",),
    categories=("all",),
    custom=True,
)
SELF_SUBJECT_ACCESS_REVIEWS = Resource(
    "selfsubjectaccessreviews",
    "selfsubjectaccessreview",
    "SelfSubjectAccessReview",
    "authorization.k8s.io",
    "v1",
    False,
    verbs=("create",),
)

RESOURCES = (
    NAMESPACES,
    DEPLOYMENTS,
    REPLICASETS,
    ROLLOUTS,
    CANARIES,
    SELF_SUBJECT_ACCESS_REVIEWS,
)
# Resources stored as objects (the access review is answered, never kept).
STORED = (NAMESPACES, DEPLOYMENTS, REPLICASETS, ROLLOUTS, CANARIES)
GROUP_VERSIONS = {
    "apps": "v1",
    "argoproj.io": "v1alpha1",
    "flagger.app": "v1beta1",
    "authorization.k8s.io": "v1",
}


def by_kind(kind: str) -> Resource:
    """`Deployment`, `deployment`, `deployments` or `deploy` all name the deployments."""
    wanted = kind.lower()
    for resource in STORED:
        names = (resource.kind.lower(), resource.plural, resource.singular, *resource.short_names)
        if wanted in names:
            return resource
    raise KeyError(f"no resource kind {kind!r}: one of {[r.kind for r in STORED]}")


def find(group: str, version: str, plural: str) -> Resource | None:
    for resource in RESOURCES:
        if (resource.group, resource.version, resource.plural) == (group, version, plural):
            return resource
    return None
