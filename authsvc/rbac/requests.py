"""One audit event as the request the RBAC authorizer saw, and which stage of it to count.

Field meanings follow audit.k8s.io/v1 Event (v1beta1 has the same ones):
https://kubernetes.io/docs/reference/config-api/apiserver-audit.v1/#audit-k8s-io-v1-Event
A resource request has an objectRef {apiGroup, resource, subresource, namespace, name}; a
non-resource request (/healthz, /metrics, discovery) has none, and its URL is requestURI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

# kube-apiserver's long-running check (BasicLongRunningRequestCheck in its server setup): only
# these requests get a ResponseStarted stage, as soon as they are served.
LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})

# Strict shapes, so that no wildcard ("*" means "everything" in verbs, apiGroups, resources and
# as a nonResourceURLs suffix) or other oddity in a log line can reach a rule.
_VERB = re.compile(r"[a-z]+")
_RESOURCE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_API_GROUP = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Use = Literal["count", "rules", "skip"]


class BadEvent(Exception):
    """An event whose fields are not what the API server writes; the message says which."""


@dataclass(frozen=True, slots=True)
class Request:
    """What the authorizer was asked: a resource request (resource set) or a URL (url set)."""

    verb: str
    namespace: str = ""
    api_group: str = ""
    resource: str = ""  # "pods", or "pods/log" for a subresource
    name: str = ""  # the object name the authorizer saw; "" when it saw none
    url: str = ""  # non-resource requests only, without the query string

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


def request_of(event: dict[str, Any]) -> Request:
    """The request an event records. Raises BadEvent naming the field that is wrong."""
    verb = event.get("verb")
    ref = event.get("objectRef")
    if ref is not None and not isinstance(ref, dict):
        raise BadEvent("objectRef is not an object")
    try:
        if ref is None:
            return _url_request(verb, event.get("requestURI"))
        fields = (ref.get("apiGroup"), ref.get("resource"), ref.get("subresource"), ref.get("namespace"))
        request = _resource_request(verb, *fields)
    except TypeError:  # a list or an object where a string belongs: not hashable, so not cached
        raise BadEvent("a field holds a list or an object where a string belongs") from None
    name = _name_of(ref.get("name")) if _sees_name(request.verb, request.resource) else ""
    return replace(request, name=name) if name else request


# Logs repeat the same requests (a controller's watch, a probe's get): each shape is checked
# once, and the object name (of many more values) on its own. Bounded: memory stays flat.
@lru_cache(maxsize=8192)
def _resource_request(verb: Any, group: Any, resource: Any, subresource: Any, namespace: Any) -> Request:
    _check_verb(verb)
    resource = _checked("resource", resource, _RESOURCE, required=True)
    subresource = _checked("subresource", subresource, _RESOURCE)
    return Request(
        verb,
        namespace=_checked("namespace", namespace, _NAMESPACE),
        api_group=_checked("apiGroup", group, _API_GROUP),
        resource=f"{resource}/{subresource}" if subresource else resource,
    )


@lru_cache(maxsize=1024)
def _url_request(verb: Any, uri: Any) -> Request:
    _check_verb(verb)
    return Request(verb, url=_url_of(uri))


def _check_verb(verb: Any) -> None:
    if not isinstance(verb, str) or not _VERB.fullmatch(verb):
        raise BadEvent(f"verb {_shown(verb)} is not a request verb")


def stage_use(stage: Any, event: dict[str, Any]) -> Use:
    """Whether an event counts its request ("count"), only adds to the rules, or is skipped.

    Each request is counted once, at a stage every request of its kind has: ResponseComplete
    (or Panic), and ResponseStarted for long-running requests (watch, exec, logs, ...), which
    may still be open when the log is read. A long-running request's ResponseComplete adds the
    same rule again, which changes nothing, and covers logs whose policy omits ResponseStarted.
    RequestReceived comes before the request is authorized and always has a later stage.
    Raises BadEvent for an unknown stage.
    """
    if stage == "RequestReceived":
        return "skip"
    if stage == "ResponseStarted":
        return "count"
    if stage in ("ResponseComplete", "Panic"):
        return "rules" if _long_running(event) else "count"
    raise BadEvent(f"stage {_shown(stage)} is not an audit stage")


def _long_running(event: dict[str, Any]) -> bool:
    ref = event.get("objectRef")
    subresource = ref.get("subresource") if isinstance(ref, dict) else None
    return event.get("verb") in LONG_RUNNING_VERBS or subresource in LONG_RUNNING_SUBRESOURCES


def _sees_name(verb: str, resource: str) -> bool:
    """Whether the authorizer saw objectRef.name for this request.

    At Metadata level the API server fills objectRef.name of a create from the object in the
    body, but authorization ran on the URL, which has no name: a rule with resourceNames never
    allows a create (or a deletecollection). A subresource's create (pods/eviction, exec,
    serviceaccounts/token) names its parent object in the URL, so it keeps the name.
    """
    if verb == "deletecollection":
        return False
    return verb != "create" or "/" in resource  # "/": a subresource


def _checked(key: str, value: Any, shape: re.Pattern[str], *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not shape.fullmatch(value) or (required and not value):
        raise BadEvent(f"objectRef.{key} {_shown(value)} is not a valid {key}")
    return value


def _name_of(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or "/" in value or _CONTROL.search(value):
        raise BadEvent(f"objectRef.name {_shown(value)} is not an object name")
    return value


def _url_of(uri: Any) -> str:
    if not isinstance(uri, str) or not uri.startswith("/"):
        raise BadEvent("a request without objectRef has no requestURI path")
    path = uri.split("?", 1)[0]
    if "*" in path or _CONTROL.search(path):
        raise BadEvent("requestURI holds a wildcard or a control character")
    return path


def _shown(value: Any) -> str:
    """A short, printable rendering of a bad value for a message (never a whole line)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
