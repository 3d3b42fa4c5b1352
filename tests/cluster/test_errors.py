"""The API server's error answers, as the one-line errors the CLI prints."""

from __future__ import annotations

import json

import pytest

from authsvc.cluster.errors import (
    ClusterConflict,
    ClusterError,
    ClusterForbidden,
    ClusterInvalid,
    ClusterNotFound,
    ClusterUnauthorized,
    api_error,
)

WHERE = "https://10.0.0.1:6443 (--kubeconfig bob.conf)"


def status(message: str, reason: str, code: int) -> str:
    return json.dumps(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code}
    )


def test_forbidden_names_the_missing_permission() -> None:
    body = status(
        'secrets "bootstrap-token-abcdef" is forbidden: User "bob" cannot create resource "secrets" in API group "" '
        'in the namespace "kube-system"',
        "Forbidden",
        403,
    )

    error = api_error(403, body, "create Secret kube-system/bootstrap-token-abcdef", WHERE)

    assert isinstance(error, ClusterForbidden) and error.status == 403 and error.reason == "Forbidden"
    assert str(error) == (
        'forbidden: User "bob" cannot create resource "secrets" in API group "" in the namespace "kube-system" '
        "(needed to create Secret kube-system/bootstrap-token-abcdef)"
    )


@pytest.mark.parametrize(
    ("code", "kind", "expected"),
    [
        (401, ClusterUnauthorized, f"the API server at {WHERE} refused the credentials: Unauthorized"),
        (404, ClusterNotFound, 'get ConfigMap kube-public/cluster-info: configmaps "cluster-info" not found'),
        (409, ClusterConflict, 'get ConfigMap kube-public/cluster-info: configmaps "cluster-info" not found'),
        (
            422,
            ClusterInvalid,
            'get ConfigMap kube-public/cluster-info: the API server refused it: configmaps "cluster-info" not found',
        ),
        (
            500,
            ClusterError,
            "get ConfigMap kube-public/cluster-info: the API server answered HTTP 500: "
            'configmaps "cluster-info" not found',
        ),
    ],
)
def test_each_status_is_its_own_error(code: int, kind: type[ClusterError], expected: str) -> None:
    body = status('configmaps "cluster-info" not found', "x", code)

    error = api_error(code, body, "get ConfigMap kube-public/cluster-info", WHERE)

    assert type(error) is kind and str(error) == expected


def test_a_body_that_is_not_a_status_still_says_what_failed() -> None:
    assert str(api_error(403, "<html>proxy says no</html>", "list Secrets in kube-system", WHERE)) == (
        "forbidden: list Secrets in kube-system: Forbidden (needed to list Secrets in kube-system)"
    )
    assert str(api_error(503, b"\xff\xfe", "list Secrets in kube-system", WHERE)).endswith("HTTP 503: HTTP 503")
