"""The narrowest RBAC rules that allow a set of requests.

Requests are folded into grants keyed by (namespace, API group, resource, verb), each with the
object names it was used on, or "any name" as soon as one request named none. Rules are then
formed without widening anything: verbs are merged only where their names are the same, and
resources only where their verbs and names are the same, so a rule allows exactly the
combinations that were recorded. Memory grows with distinct grants, never with the log.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from authsvc.rbac.requests import Request

# audit2rbac's verb expansions (pkg/process.go, DefaultGenerateOptions): a client that watches
# usually lists first and gets afterwards, and one that updates reads first. Off by default.
VERB_EXPANSIONS: dict[str, tuple[str, ...]] = {
    "watch": ("get", "list"),
    "list": ("get", "watch"),
    "update": ("get", "patch"),
    "patch": ("get", "update"),
}
# A grant used on more names than this allows any name (and says so): a Role listing hundreds
# of names helps no reviewer, and it keeps memory bounded whatever the log holds.
MAX_NAMES = 50

# What kube-apiserver's bootstrap policy grants every authenticated user (ClusterRoles
# system:discovery, system:public-info-viewer and system:basic-user, bound to
# system:authenticated): kubectl's discovery and `kubectl auth can-i` need no suggestion.
DEFAULT_URLS: tuple[str, ...] = (
    *("/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*"),
    *("/healthz", "/livez", "/readyz", "/version", "/version/"),
)
DEFAULT_RESOURCES = frozenset(
    {
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authentication.k8s.io", "selfsubjectreviews"),
    }
)

_Key = tuple[str, str, str, str]  # namespace ("" = cluster), API group, resource, verb
_ANY = None  # the names of a grant that some request used without a name


@dataclass(frozen=True, slots=True)
class Rule:
    """One PolicyRule: either a resource rule (api_groups, resources) or a URL rule."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


class Grants:
    """Accumulates requests; `rules(namespace)` gives the rules of one Role or the ClusterRole."""

    def __init__(self, *, expand_verbs: bool = False) -> None:
        self.expand_verbs = expand_verbs
        self._names: dict[_Key, set[str] | None] = {}
        self._url_verbs: dict[str, set[str]] = defaultdict(set)
        self.capped: set[_Key] = set()  # grants that reached MAX_NAMES and allow any name
        self.default_covered = 0  # requests every authenticated user may make anyway

    def add(self, request: Request) -> None:
        if covered_by_default(request):
            self.default_covered += 1
            return
        verbs = (request.verb, *VERB_EXPANSIONS.get(request.verb, ())) if self.expand_verbs else (request.verb,)
        if not request.is_resource:
            self._url_verbs[request.url].update(verbs)
            return
        for verb in verbs:
            self._add_name((request.namespace, request.api_group, request.resource, verb), request.name)

    def _add_name(self, key: _Key, name: str) -> None:
        if key in self._names and self._names[key] is _ANY:
            return
        if not name:
            self._names[key] = _ANY
            return
        names = self._names.setdefault(key, set())
        assert names is not None
        names.add(name)
        if len(names) > MAX_NAMES:
            self._names[key] = _ANY
            self.capped.add(key)

    @property
    def empty(self) -> bool:
        return not self._names and not self._url_verbs

    def namespaces(self) -> list[str]:
        """Namespaces that need a Role, sorted."""
        return sorted({key[0] for key in self._names} - {""})

    def rules(self, namespace: str = "") -> list[Rule]:
        """The rules for `namespace`, or for the ClusterRole ("": cluster-scoped resources,
        all-namespace requests and URLs), sorted: resource rules by group, then URL rules."""
        grants = {key[1:]: names for key, names in self._names.items() if key[0] == namespace}
        rules = _resource_rules(grants)
        if not namespace:
            rules += _url_rules(self._url_verbs)
        return rules


def covered_by_default(request: Request) -> bool:
    """Whether kube-apiserver's default roles already allow this to every authenticated user."""
    if not request.is_resource:
        return request.verb == "get" and any(_url_matches(pattern, request.url) for pattern in DEFAULT_URLS)
    return request.verb == "create" and (request.api_group, request.resource) in DEFAULT_RESOURCES


def _url_matches(pattern: str, url: str) -> bool:
    """RBAC's nonResourceURLs match: exact, or a prefix when the pattern ends in "*"."""
    return url.startswith(pattern[:-1]) if pattern.endswith("*") else url == pattern


def _resource_rules(grants: dict[tuple[str, str, str], set[str] | None]) -> list[Rule]:
    verbs_of: dict[tuple[str, str, tuple[str, ...] | None], set[str]] = defaultdict(set)
    for (group, resource, verb), names in grants.items():
        verbs_of[(group, resource, None if names is _ANY else tuple(sorted(names)))].add(verb)
    resources_of: dict[tuple[str, tuple[str, ...], tuple[str, ...] | None], set[str]] = defaultdict(set)
    for (group, resource, names_key), verbs in verbs_of.items():
        resources_of[(group, tuple(sorted(verbs)), names_key)].add(resource)
    rules = [
        Rule(verbs=verbs, api_groups=(group,), resources=tuple(sorted(resources)), resource_names=names or ())
        for (group, verbs, names), resources in resources_of.items()
    ]
    return sorted(rules, key=lambda r: (r.api_groups, r.resources, r.verbs, r.resource_names))


def _url_rules(url_verbs: dict[str, set[str]]) -> list[Rule]:
    urls_of: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for url, verbs in url_verbs.items():
        urls_of[tuple(sorted(verbs))].append(url)
    rules = [Rule(verbs=verbs, non_resource_urls=tuple(sorted(urls))) for verbs, urls in urls_of.items()]
    return sorted(rules, key=lambda r: (r.non_resource_urls, r.verbs))


def describe_capped(keys: Iterable[_Key]) -> list[str]:
    """One line per grant that allows any name because it was used on too many."""
    return [
        f"{verb} {resource}{f' ({group})' if group else ''} in {namespace or 'the cluster'}: used on more "
        f"than {MAX_NAMES} names, allowed for any name"
        for namespace, group, resource, verb in sorted(keys)
    ]
