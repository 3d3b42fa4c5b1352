"""The header rules alone: what a client may not send, what each mode adds, the verb of a path."""

from __future__ import annotations

import pytest

from authsvc.identity import UserInfo
from authsvc.proxy.credentials import bearer_token
from authsvc.proxy.headers import (
    escape_extra_key,
    forwarded_request_headers,
    forwarded_response_headers,
    has_control_characters,
    impersonation_identity,
    is_upgrade,
    request_header_identity,
)
from authsvc.proxy.request_info import request_info

ALICE = UserInfo("alice", "u-1", ("dev", "ops"), {"scopes.example.org/x": ("a", "b")})


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "Impersonate-User",
        "impersonate-group",
        "Impersonate-Uid",
        "Impersonate-Extra-Anything",
        "X-Remote-User",
        "x-remote-group",
        "X-Remote-Extra-Scopes",
        "X-Remote-Uid",
        "Host",
        "X-Forwarded-For",
        "Forwarded",
        "Proxy-Authorization",
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Upgrade",
        "TE",
        "Expect",
    ],
)
def test_a_header_that_could_speak_for_someone_is_dropped(name: str) -> None:
    assert forwarded_request_headers([(name, "admin"), ("Accept", "application/json")]) == [
        ("Accept", "application/json")
    ]


def test_configured_identity_headers_and_prefixes_are_dropped_too() -> None:
    sent = [("X-Forwarded-User", "admin"), ("X-Extra-Team", "x"), ("X-Extra", "kept"), ("Accept", "*/*")]
    kept = forwarded_request_headers(sent, identity_names=("X-Forwarded-User", "X-Extra-"))
    assert kept == [("X-Extra", "kept"), ("Accept", "*/*")]


def test_headers_named_by_connection_are_dropped_and_an_upgrade_keeps_its_own() -> None:
    sent = [("Connection", "Upgrade, X-Secret"), ("X-Secret", "s"), ("Upgrade", "SPDY/3.1"), ("Accept", "*/*")]
    assert forwarded_request_headers(sent) == [("Accept", "*/*")]
    assert forwarded_request_headers(sent, upgrade=True) == [
        ("Accept", "*/*"),
        ("Connection", "Upgrade"),
        ("Upgrade", "SPDY/3.1"),
    ]
    assert is_upgrade(sent) and not is_upgrade([("Upgrade", "SPDY/3.1")]) and not is_upgrade([("Connection", "close")])


def test_response_headers_lose_hop_by_hop_ones() -> None:
    answer = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"), ("Audit-Id", "x")]
    assert forwarded_response_headers(answer) == [("Content-Type", "application/json"), ("Audit-Id", "x")]


def test_request_header_identity_is_what_the_requestheader_flags_read() -> None:
    headers = request_header_identity(
        ALICE, username_header="X-Remote-User", group_header="X-Remote-Group", extra_header_prefix="X-Remote-Extra-"
    )
    assert headers == [
        ("X-Remote-User", "alice"),
        ("X-Remote-Group", "dev"),
        ("X-Remote-Group", "ops"),
        ("X-Remote-Extra-scopes.example.org%2Fx", "a"),
        ("X-Remote-Extra-scopes.example.org%2Fx", "b"),
    ]


def test_impersonation_identity_sends_no_uid() -> None:
    headers = impersonation_identity(ALICE)
    assert headers[:3] == [("Impersonate-User", "alice"), ("Impersonate-Group", "dev"), ("Impersonate-Group", "ops")]
    assert all(not name.lower().endswith("uid") for name, _ in headers)


@pytest.mark.parametrize(
    ("key", "escaped"),
    [
        ("authentication.kubernetes.io/pod-name", "authentication.kubernetes.io%2Fpod-name"),
        ("100%", "100%25"),
        ("a b", "a%20b"),
        ("é", "%C3%A9"),
        ("plain-key_1", "plain-key_1"),
    ],
)
def test_extra_keys_are_escaped_as_client_go_escapes_them(key: str, escaped: str) -> None:
    assert escape_extra_key(key) == escaped


@pytest.mark.parametrize("name", ["evil\r\nX-Remote-Group: system:masters", "tab\tname", "nul\x00"])
def test_an_identity_with_control_characters_is_recognised(name: str) -> None:
    assert has_control_characters(UserInfo(name))
    assert has_control_characters(UserInfo("ok", groups=(name,)))
    assert not has_control_characters(UserInfo("ok", groups=("dev",)))


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("  Bearer abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer  abc", None),
        ("Bearer a b", None),
        ("Bearer t\x00k", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("method", "path", "query", "verb", "resource", "namespace", "name"),
    [
        ("GET", "/api/v1/namespaces", "", "list", "namespaces", "", ""),
        ("GET", "/api/v1/namespaces/default", "", "get", "namespaces", "default", "default"),
        ("GET", "/api/v1/namespaces/default/pods", "", "list", "pods", "default", ""),
        ("GET", "/api/v1/namespaces/default/pods", "watch=true", "watch", "pods", "default", ""),
        ("GET", "/api/v1/namespaces/default/pods", "watch=1&labelSelector=a", "watch", "pods", "default", ""),
        ("GET", "/api/v1/namespaces/default/pods", "watch=false", "list", "pods", "default", ""),
        ("GET", "/api/v1/watch/namespaces/default/pods", "", "watch", "pods", "default", ""),
        ("GET", "/api/v1/namespaces/default/pods/web", "", "get", "pods", "default", "web"),
        ("GET", "/api/v1/namespaces/default/pods/web/log", "follow=true", "get", "pods/log", "default", "web"),
        ("POST", "/api/v1/namespaces/default/pods/web/exec", "command=sh", "create", "pods/exec", "default", "web"),
        ("POST", "/apis/apps/v1/namespaces/ns/deployments", "", "create", "deployments", "ns", ""),
        ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d", "", "patch", "deployments", "ns", "d"),
        ("PUT", "/apis/apps/v1/namespaces/ns/deployments/d/scale", "", "update", "deployments/scale", "ns", "d"),
        ("DELETE", "/api/v1/namespaces/ns/secrets", "", "deletecollection", "secrets", "ns", ""),
        ("DELETE", "/api/v1/namespaces/ns/secrets/s", "", "delete", "secrets", "ns", "s"),
        ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "", "list", "clusterroles", "", ""),
        ("GET", "/api/v1/nodes/n1", "", "get", "nodes", "", "n1"),
        ("GET", "/healthz", "", "get", "", "", ""),
        ("GET", "/apis/apps/v1", "", "get", "", "", ""),
        (
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            "",
            "create",
            "selfsubjectrulesreviews",
            "",
            "",
        ),
    ],
)
def test_the_verb_of_a_request(
    method: str, path: str, query: str, verb: str, resource: str, namespace: str, name: str
) -> None:
    info = request_info(method, path, query)
    assert (info.verb, info.resource, info.namespace, info.name) == (verb, resource, namespace, name)
