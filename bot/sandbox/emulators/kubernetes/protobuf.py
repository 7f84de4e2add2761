"""Just enough of Kubernetes' protobuf encoding to read a SelfSubjectAccessReview.

kubectl sends typed requests such as `kubectl auth can-i`'s review as
`application/vnd.kubernetes.protobuf`: the magic `k8s\\0`, then a runtime.Unknown whose `raw`
field holds the object. The answer may be JSON (client-go decodes by the answer's type).
"""

from __future__ import annotations

from .errors import bad_request

PROTOBUF = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# Field numbers from k8s.io/api/authorization/v1/generated.proto.
_RESOURCE_ATTRIBUTES = {
    1: "namespace",
    2: "verb",
    3: "group",
    4: "version",
    5: "resource",
    6: "subresource",
    7: "name",
}
_NON_RESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise bad_request("truncated protobuf")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of one message (the only kind these messages use that
    matters here); other wire types are skipped."""
    found: dict[int, bytes] = {}
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 2:
            size, at = _varint(data, at)
            found[number] = data[at : at + size]
            at += size
        elif wire == 0:
            _, at = _varint(data, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise bad_request("unsupported protobuf wire type")
    return found


def _strings(data: bytes, names: dict[int, str]) -> dict[str, str]:
    return {names[n]: v.decode() for n, v in fields(data).items() if n in names}


def access_review_spec(body: bytes) -> dict[str, object]:
    """The `spec` of a protobuf SelfSubjectAccessReview, as its JSON would have it."""
    if not body.startswith(MAGIC):
        raise bad_request("the protobuf body lacks the k8s magic prefix")
    raw = fields(body[len(MAGIC) :]).get(2, b"")
    spec = fields(fields(raw).get(2, b""))
    result: dict[str, object] = {}
    if 1 in spec:
        result["resourceAttributes"] = _strings(spec[1], _RESOURCE_ATTRIBUTES)
    if 2 in spec:
        result["nonResourceAttributes"] = _strings(spec[2], _NON_RESOURCE_ATTRIBUTES)
    return result
