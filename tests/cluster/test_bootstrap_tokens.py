"""Bootstrap-token Secrets in kubeadm's format, and how authsvc reads them back."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from kubernetes import client

from authsvc.authn.bootstrap import BootstrapToken
from authsvc.cluster.bootstrap_tokens import ClusterToken, parse_token_secret, token_secret
from authsvc.cluster.objects import serialize

NOW = dt.datetime(2026, 12, 3, 14, 0, 7, 500000, tzinfo=dt.UTC)
GROUP = "system:bootstrappers:kubeadm:default-node-token"


def record(**changes: object) -> BootstrapToken:
    values: dict[str, object] = {
        "token_id": "abcdef",
        "groups": (GROUP,),
        "description": "node-7",
        "created_at": NOW,
        "expires_at": NOW + dt.timedelta(hours=24),
        "usages": ("authentication", "signing"),
    }
    return BootstrapToken(**{**values, **changes})  # type: ignore[arg-type]


def decoded(secret: object) -> dict[str, str]:
    data = serialize(secret)["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_the_secret_has_kubeadms_name_type_and_fields() -> None:
    secret = token_secret(record(), "0123456789abcdef")
    body = serialize(secret)

    assert body["metadata"] == {
        "name": "bootstrap-token-abcdef",
        "namespace": "kube-system",
        "labels": {"app.kubernetes.io/managed-by": "authsvc", "app.kubernetes.io/component": "bootstrap-token"},
    }
    assert body["type"] == "bootstrap.kubernetes.io/token"
    assert decoded(secret) == {
        "auth-extra-groups": GROUP,
        "description": "node-7",
        "expiration": "2026-12-04T14:00:07Z",  # Go's time.RFC3339 in UTC: whole seconds, Z
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
    }


def test_optional_fields_are_left_out_as_kubeadm_does() -> None:
    secret = token_secret(record(groups=(), description="", expires_at=None, usages=("signing",)), "0123456789abcdef")
    assert decoded(secret) == {
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "usage-bootstrap-signing": "true",
    }


def test_read_back() -> None:
    parsed = parse_token_secret(token_secret(record(), "0123456789abcdef"))

    assert parsed == ClusterToken(
        "abcdef",
        "0123456789abcdef",
        NOW.replace(microsecond=0) + dt.timedelta(hours=24),
        ("authentication", "signing"),
        (GROUP,),
        "node-7",
        managed=True,
    )
    assert parsed is not None and "0123456789abcdef" not in repr(parsed)
    assert parsed.can_sign(NOW) and not parsed.can_sign(NOW + dt.timedelta(days=1))


def raw_secret(name: str, data: dict[str, str], kind: str = "bootstrap.kubernetes.io/token") -> client.V1Secret:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return client.V1Secret(metadata=client.V1ObjectMeta(name=name), type=kind, data=encoded)


def test_other_secrets_are_not_tokens() -> None:
    assert parse_token_secret(raw_secret("bootstrap-token-abcdef", {}, kind="Opaque")) is None
    assert parse_token_secret(raw_secret("my-secret", {"token-id": "abcdef"})) is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"token-id": "zzzzzz", "token-secret": "0123456789abcdef"}, "token-id does not match the name"),
        ({"token-id": "abcdef", "token-secret": "short"}, "token-secret is not 16 of [a-z0-9]"),
        ({"token-id": "abcdef", "token-secret": "0123456789abcdef", "expiration": "soon"}, "is not RFC 3339"),
    ],
)
def test_a_broken_secret_is_read_with_its_problem_and_never_signs(data: dict[str, str], problem: str) -> None:
    parsed = parse_token_secret(raw_secret("bootstrap-token-abcdef", {**data, "usage-bootstrap-signing": "true"}))
    assert parsed is not None and problem in parsed.problem and not parsed.can_sign(NOW)


def test_only_true_means_a_usage() -> None:
    data = {"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-signing": "yes"}
    parsed = parse_token_secret(raw_secret("bootstrap-token-abcdef", data))
    assert parsed is not None and parsed.usages == () and not parsed.can_sign(NOW)
