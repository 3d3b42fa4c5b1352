"""An event as the request the authorizer saw: which name it saw, which stage counts."""

from __future__ import annotations

from typing import Any

import pytest

from authsvc.rbac.requests import BadEvent, Request, request_of, stage_use
from tests.rbac.support import event


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (event("get", "configmaps", namespace="ns1", name="c1"), Request("get", "ns1", "", "configmaps", "c1")),
        (event("list", "pods", namespace="ns1"), Request("list", "ns1", "", "pods")),
        (event("list", "nodes"), Request("list", "", "", "nodes")),
        (event("list", "pods"), Request("list", "", "", "pods")),  # all namespaces: a cluster-wide request
        (
            event("get", "deployments", group="apps", namespace="a", name="d"),
            Request("get", "a", "apps", "deployments", "d"),
        ),
        # A create's name comes from the body at Metadata level; the authorizer saw none.
        (event("create", "secrets", namespace="ns2", name="s1"), Request("create", "ns2", "", "secrets")),
        # ... but a subresource's create names its parent in the URL.
        (
            event("create", "pods", namespace="ns1", name="p", subresource="eviction"),
            Request("create", "ns1", "", "pods/eviction", "p"),
        ),
        (event("deletecollection", "pods", namespace="ns1", name="x"), Request("deletecollection", "ns1", "", "pods")),
        # A list or watch with fieldSelector=metadata.name: the authorizer saw the name.
        (event("watch", "configmaps", namespace="ns1", name="c1"), Request("watch", "ns1", "", "configmaps", "c1")),
        (event("get", None, uri="/metrics?format=text"), Request("get", url="/metrics")),
        (event("post", None, uri="/logs/x"), Request("post", url="/logs/x")),
    ],
)
def test_request_of(data: dict[str, Any], expected: Request) -> None:
    assert request_of(data) == expected


def _with_ref(**fields: Any) -> dict[str, Any]:
    data = event("get", "pods", namespace="ns1", name="p")
    data["objectRef"] = {**data["objectRef"], **fields}
    return data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # Wildcards would widen a rule to everything: no request the API server records has one.
        pytest.param({**event("get", "pods"), "verb": "*"}, "verb '*'", id="verb-wildcard"),
        pytest.param(_with_ref(resource="*"), "objectRef.resource '*'", id="resource-wildcard"),
        pytest.param(_with_ref(apiGroup="*"), "objectRef.apiGroup '*'", id="group-wildcard"),
        pytest.param(_with_ref(subresource="*"), "objectRef.subresource", id="subresource-wildcard"),
        pytest.param(event("get", None, uri="/logs/*"), "wildcard", id="url-wildcard"),
        pytest.param(_with_ref(namespace="../kube-system"), "objectRef.namespace", id="namespace-path"),
        pytest.param(_with_ref(name="a/b"), "objectRef.name", id="name-slash"),
        pytest.param(_with_ref(name="a\nb"), "objectRef.name", id="name-newline"),
        pytest.param(_with_ref(resource=""), "objectRef.resource", id="resource-empty"),
        pytest.param(_with_ref(resource=None), "objectRef.resource", id="resource-missing"),
        pytest.param({**event("get", "pods"), "objectRef": "pods"}, "objectRef is not an object", id="ref-string"),
        pytest.param(_with_ref(name=["a"]), "objectRef.name", id="name-list"),
        pytest.param(_with_ref(namespace={"a": 1}), "a list or an object", id="namespace-object"),
        pytest.param(_with_ref(name=7), "objectRef.name 7", id="name-number"),
        pytest.param({**event("get", None), "requestURI": ["/x"]}, "a list or an object", id="uri-list"),
        pytest.param({**event("get", "pods"), "verb": ["get"]}, "a list or an object", id="verb-list"),
        pytest.param({**event("get", "pods"), "verb": None}, "verb None", id="verb-missing"),
        pytest.param({**event("get", None), "requestURI": None}, "no requestURI", id="uri-missing"),
        pytest.param({**event("get", None), "requestURI": "healthz"}, "no requestURI", id="uri-relative"),
    ],
)
def test_an_event_that_is_not_a_request_is_refused(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadEvent, match=reason.replace("*", r"\*").replace("(", r"\(")):
        request_of(data)


@pytest.mark.parametrize(
    ("data", "use"),
    [
        (event("get", "pods", stage="RequestReceived"), "skip"),
        (event("get", "pods", stage="ResponseComplete"), "count"),
        (event("get", "pods", stage="Panic"), "count"),
        # Long-running: counted when it starts, its completion only repeats the rule.
        (event("watch", "pods", stage="ResponseStarted"), "count"),
        (event("watch", "pods", stage="ResponseComplete"), "rules"),
        (event("get", "pods", name="p", subresource="log", stage="ResponseStarted"), "count"),
        (event("get", "pods", name="p", subresource="log", stage="ResponseComplete"), "rules"),
        (event("create", "pods", name="p", subresource="exec", stage="ResponseComplete"), "rules"),
    ],
)
def test_stage_use(data: dict[str, Any], use: str) -> None:
    assert stage_use(data["stage"], data) == use


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(BadEvent, match="stage 'Done'"):
        stage_use("Done", event("get", "pods"))
