"""The Kubernetes verb of a request, for the audit line: kube-apiserver's RequestInfo, in short.

As k8s.io/apiserver pkg/endpoints/request/requestinfo.go decides it: resource requests are
`/api/v1/...` and `/apis/GROUP/VERSION/...`, optionally under `namespaces/NS/`; a GET of a
collection is `list` (`watch` with `?watch=true|1`, or under the deprecated `/watch/` prefix),
of a named object `get`; POST `create`, PUT `update`, PATCH `patch`, DELETE `delete` or, on a
collection, `deletecollection`. Anything else (`/healthz`, `/version`, discovery) is a
non-resource request whose verb is the lower-cased method.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "GET": "get", "HEAD": "get"}
_WATCH_VALUES = frozenset({"true", "1"})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    verb: str
    resource: str = ""  # "pods", "pods/exec"; empty for a non-resource request
    namespace: str = ""
    name: str = ""


def request_info(method: str, path: str, query: str) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        rest = parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        rest = parts[3:]
    else:
        return RequestInfo(method.lower())
    if not rest:
        return RequestInfo(method.lower())  # discovery of a group version
    watch_prefix = rest[0] == "watch"
    if watch_prefix:
        rest = rest[1:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    elif len(rest) == 2 and rest[0] == "namespaces":
        namespace = rest[1]  # the Namespace object itself: /api/v1/namespaces/NS
    resource, name, subresource = [*rest, "", "", ""][:3]
    verb = _verb(method, bool(name), watch_prefix or _is_watch(query))
    return RequestInfo(verb, f"{resource}/{subresource}" if subresource else resource, namespace, name)


def _verb(method: str, named: bool, watch: bool) -> str:
    verb = _BY_METHOD.get(method.upper(), method.lower())
    if verb == "get" and watch:
        return "watch"
    if verb == "get" and not named:
        return "list"
    if verb == "delete" and not named:
        return "deletecollection"
    return verb


def _is_watch(query: str) -> bool:
    if "watch" not in query:
        return False
    return any(v.lower() in _WATCH_VALUES for v in parse_qs(query).get("watch", ()))
