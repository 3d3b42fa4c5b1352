"""The narrowest rules: every recorded request is allowed, nothing else is."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from authsvc.rbac import grants as grants_module
from authsvc.rbac.grants import Grants, Rule
from authsvc.rbac.objects import build_objects, to_dicts
from authsvc.rbac.requests import Request
from authsvc.rbac.subjects import Subject
from tests.rbac.support import allows, allows_url

ALICE = Subject.user("alice")


def rules_of(*requests: Request, expand: bool = False, namespace: str = "") -> list[Rule]:
    grants = Grants(expand_verbs=expand)
    for request in requests:
        grants.add(request)
    return grants.rules(namespace)


def test_names_are_kept_only_when_every_request_named_one() -> None:
    named = rules_of(
        Request("get", "ns1", "", "configmaps", "c1"), Request("get", "ns1", "", "configmaps", "c2"), namespace="ns1"
    )
    assert named == [Rule(verbs=("get",), api_groups=("",), resources=("configmaps",), resource_names=("c1", "c2"))]

    # The twin: one unnamed get of the same resource makes the grant nameless.
    unnamed = rules_of(
        Request("get", "ns1", "", "configmaps", "c1"), Request("get", "ns1", "", "configmaps"), namespace="ns1"
    )
    assert unnamed == [Rule(verbs=("get",), api_groups=("",), resources=("configmaps",))]


def test_names_are_per_verb() -> None:
    rules = rules_of(
        Request("get", "ns1", "", "configmaps", "c1"), Request("list", "ns1", "", "configmaps"), namespace="ns1"
    )
    assert rules == [
        Rule(verbs=("get",), api_groups=("",), resources=("configmaps",), resource_names=("c1",)),
        Rule(verbs=("list",), api_groups=("",), resources=("configmaps",)),
    ]


def test_resources_merge_only_where_verbs_and_names_match() -> None:
    rules = rules_of(
        Request("get", "ns1", "", "configmaps", "x"),
        Request("get", "ns1", "", "secrets", "x"),
        Request("get", "ns1", "", "pods", "y"),
        Request("list", "ns1", "", "pods"),
        Request("list", "ns1", "", "services"),
        namespace="ns1",
    )
    assert rules == [
        Rule(verbs=("get",), api_groups=("",), resources=("configmaps", "secrets"), resource_names=("x",)),
        Rule(verbs=("get",), api_groups=("",), resources=("pods",), resource_names=("y",)),
        Rule(verbs=("list",), api_groups=("",), resources=("pods", "services")),
    ]


def test_namespaces_and_cluster_scope_are_kept_apart() -> None:
    grants = Grants()
    for request in (
        Request("list", "ns1", "", "pods"),
        Request("list", "", "", "nodes"),
        Request("get", url="/metrics"),
    ):
        grants.add(request)

    assert grants.namespaces() == ["ns1"]
    assert grants.rules("ns1") == [Rule(verbs=("list",), api_groups=("",), resources=("pods",))]
    assert grants.rules() == [
        Rule(verbs=("list",), api_groups=("",), resources=("nodes",)),
        Rule(verbs=("get",), non_resource_urls=("/metrics",)),
    ]


def test_verb_expansion_is_audit2rbacs_and_only_on_request() -> None:
    requests = (Request("list", "ns1", "", "pods"), Request("update", "ns1", "apps", "deployments", "web"))
    assert rules_of(*requests, expand=True, namespace="ns1") == [
        Rule(verbs=("get", "list", "watch"), api_groups=("",), resources=("pods",)),
        Rule(
            verbs=("get", "patch", "update"), api_groups=("apps",), resources=("deployments",), resource_names=("web",)
        ),
    ]
    assert rules_of(*requests, namespace="ns1") == [
        Rule(verbs=("list",), api_groups=("",), resources=("pods",)),
        Rule(verbs=("update",), api_groups=("apps",), resources=("deployments",), resource_names=("web",)),
    ]


def test_what_every_authenticated_user_may_do_needs_no_rule() -> None:
    grants = Grants()
    for request in (
        Request("get", url="/api"),
        Request("get", url="/apis/apps/v1"),
        Request("get", url="/openapi/v2"),
        Request("get", url="/version"),
        Request("create", "", "authorization.k8s.io", "selfsubjectaccessreviews"),
    ):
        grants.add(request)
    assert grants.empty and grants.default_covered == 5

    # The twins: another verb, or a URL the defaults do not cover, needs its rule.
    grants.add(Request("post", url="/api"))
    grants.add(Request("get", url="/metrics"))
    grants.add(Request("get", url="/versions"))
    assert grants.rules() == [
        Rule(verbs=("post",), non_resource_urls=("/api",)),
        Rule(verbs=("get",), non_resource_urls=("/metrics", "/versions")),
    ]


def test_a_grant_used_on_too_many_names_allows_any_name() -> None:
    grants = Grants()
    for i in range(grants_module.MAX_NAMES):
        grants.add(Request("get", "ns1", "", "configmaps", f"c{i}"))
    assert len(grants.rules("ns1")[0].resource_names) == grants_module.MAX_NAMES and not grants.capped

    grants.add(Request("get", "ns1", "", "configmaps", "one-more"))

    assert grants.rules("ns1") == [Rule(verbs=("get",), api_groups=("",), resources=("configmaps",))]
    assert grants.capped == {("ns1", "", "configmaps", "get")}


# ---------------------------------------------------------------- exactness, over random request sets

NAMESPACES = ("", "a", "b")
GROUPS = ("", "apps")
RESOURCES = ("pods", "pods/log", "configmaps")
VERBS = ("get", "list", "watch", "create", "update", "delete")
NAMES = ("", "x", "y")

requests_strategy = st.lists(
    st.builds(
        Request,
        verb=st.sampled_from(VERBS),
        namespace=st.sampled_from(NAMESPACES),
        api_group=st.sampled_from(GROUPS),
        resource=st.sampled_from(RESOURCES),
        name=st.sampled_from(NAMES),
    ),
    min_size=1,
    max_size=12,
)


def documents_for(requests: list[Request]) -> list[dict[str, object]]:
    grants = Grants()
    for request in requests:
        grants.add(request)
    return to_dicts(build_objects(grants, ALICE, "test"))


@settings(max_examples=150, deadline=None)
@given(requests_strategy)
def test_rules_allow_exactly_the_recorded_requests(requests: list[Request]) -> None:
    documents = documents_for(requests)
    for r in requests:
        assert allows(documents, r.verb, r.namespace, r.api_group, r.resource, r.name), r
    # Nothing else: anything allowed was recorded in that namespace (or across all namespaces,
    # which only a ClusterRole can grant), with that name or with none.
    for verb, namespace, group, resource, name in itertools.product(
        VERBS, NAMESPACES, GROUPS, RESOURCES, ("x", "y", "z")
    ):
        if allows(documents, verb, namespace, group, resource, name):
            assert any(
                (r.verb, r.api_group, r.resource) == (verb, group, resource)
                and r.namespace in ("", namespace)
                and r.name in ("", name)
                for r in requests
            ), (verb, namespace, group, resource, name)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(("get", "post")), st.sampled_from(("/metrics", "/logs", "/debug/x"))), min_size=1
    )
)
def test_url_rules_allow_exactly_the_recorded_urls(requests: list[tuple[str, str]]) -> None:
    grants = Grants()
    for verb, url in requests:
        grants.add(Request(verb, url=url))
    documents = to_dicts(build_objects(grants, ALICE, "test"))
    for verb, url in itertools.product(("get", "post", "put"), ("/metrics", "/logs", "/debug/x", "/debug")):
        assert allows_url(documents, verb, url) == ((verb, url) in requests)


@settings(max_examples=50, deadline=None)
@given(requests_strategy, st.randoms())
def test_output_does_not_depend_on_the_order_of_the_log(requests: list[Request], rnd: object) -> None:
    shuffled = list(requests)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert documents_for(shuffled) == documents_for(requests)
