"""Pure parts: kid as kube-apiserver computes it, claim shapes as kube-apiserver issues them."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pki.errors import KeyMaterialError, PolicyError, TokenRejected
from pki.keys import public_key_pem
from pki.tokens.claims import (
    KIND_LEGACY,
    KIND_SERVICE_ACCOUNT,
    KIND_USER,
    PodBinding,
    bound_sa_claims,
    identity_from_claims,
    legacy_sa_claims,
    user_claims,
)
from pki.tokens.kid import algorithm_for, kid_for
from tests.components.support import require_binary
from tests.tokens.conftest import b64url, independent_kid

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
ISSUER = "https://kubernetes.default.svc.cluster.local"


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(65537, 2048).public_key(), ec.generate_private_key(ec.SECP256R1()).public_key()],
    ids=["rsa", "p256"],
)
def test_kid_is_base64url_sha256_of_spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> None:
    kid = kid_for(key)
    assert kid == independent_kid(key)
    assert len(kid) == 43 and "=" not in kid  # 32 bytes, unpadded


def test_kid_matches_openssl(tmp_path: Path) -> None:
    """The same value from openssl's DER of the public key (`openssl pkey -pubin -outform DER`)."""
    openssl = require_binary("openssl")
    key = rsa.generate_private_key(65537, 2048).public_key()
    (tmp_path / "sa.pub").write_bytes(public_key_pem(key))
    der = subprocess.run(
        [openssl, "pkey", "-pubin", "-in", tmp_path / "sa.pub", "-outform", "DER"], capture_output=True, check=True
    ).stdout
    digest = subprocess.run([openssl, "dgst", "-sha256", "-binary"], input=der, capture_output=True, check=True).stdout
    assert kid_for(key) == b64url(digest)
    other = rsa.generate_private_key(65537, 2048).public_key()
    assert kid_for(other) != b64url(digest)


def test_algorithms_follow_kube() -> None:
    assert algorithm_for(rsa.generate_private_key(65537, 2048).public_key()) == "RS256"
    assert algorithm_for(ec.generate_private_key(ec.SECP256R1()).public_key()) == "ES256"
    assert algorithm_for(ec.generate_private_key(ec.SECP384R1()).public_key()) == "ES384"
    with pytest.raises(KeyMaterialError, match="Ed25519"):
        algorithm_for(ed25519.Ed25519PrivateKey.generate().public_key())


def test_bound_claims_have_kube_shape() -> None:
    claims = bound_sa_claims(
        issuer=ISSUER,
        namespace="ci",
        name="deployer",
        uid="u-1",
        audiences=[ISSUER],
        now=NOW,
        ttl=dt.timedelta(hours=1),
        jti="j-1",
        pod=PodBinding("runner-0", "p-1"),
    )
    start = int(NOW.timestamp())
    assert claims == {
        "iss": ISSUER,
        "sub": "system:serviceaccount:ci:deployer",
        "aud": [ISSUER],
        "iat": start,
        "nbf": start,
        "exp": start + 3600,
        "jti": "j-1",
        "kubernetes.io": {
            "namespace": "ci",
            "serviceaccount": {"name": "deployer", "uid": "u-1"},
            "pod": {"name": "runner-0", "uid": "p-1"},
        },
    }
    identity = identity_from_claims(claims)
    assert identity.kind == KIND_SERVICE_ACCOUNT
    assert identity.username == "system:serviceaccount:ci:deployer" and identity.uid == "u-1"
    assert identity.groups == ("system:serviceaccounts", "system:serviceaccounts:ci")
    assert identity.extra == {
        "authentication.kubernetes.io/pod-name": ("runner-0",),
        "authentication.kubernetes.io/pod-uid": ("p-1",),
    }


def test_bound_claims_omit_empty_uid_like_go() -> None:
    claims = bound_sa_claims(
        issuer=ISSUER, namespace="ci", name="x", uid="", audiences=["a"], now=NOW, ttl=dt.timedelta(minutes=10), jti="j"
    )
    assert claims["kubernetes.io"] == {"namespace": "ci", "serviceaccount": {"name": "x"}}
    assert identity_from_claims(claims).extra == {}


@pytest.mark.parametrize(
    ("namespace", "name", "pod", "message"),
    [
        ("Kube_System", "x", None, "namespace"),
        ("ci", "no/slash", None, "service account name"),
        ("ci", "x", PodBinding("runner-0", ""), "UID"),
        ("a" * 64, "x", None, "namespace"),
    ],
)
def test_bound_claims_refuse_what_kube_refuses(namespace: str, name: str, pod: PodBinding | None, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        bound_sa_claims(
            issuer=ISSUER, namespace=namespace, name=name, uid="u", audiences=["a"], now=NOW,
            ttl=dt.timedelta(hours=1), jti="j", pod=pod,
        )  # fmt: skip


def test_legacy_claims_have_kube_shape() -> None:
    claims = legacy_sa_claims(
        namespace="ci", name="deployer", uid="u-1", secret_name="deployer-token-x2b4c", now=NOW,
        ttl=dt.timedelta(hours=1), jti="j",
    )  # fmt: skip
    assert claims["iss"] == "kubernetes/serviceaccount"
    assert claims["sub"] == "system:serviceaccount:ci:deployer"
    assert claims["kubernetes.io/serviceaccount/namespace"] == "ci"
    assert claims["kubernetes.io/serviceaccount/secret.name"] == "deployer-token-x2b4c"
    assert claims["kubernetes.io/serviceaccount/service-account.name"] == "deployer"
    assert claims["kubernetes.io/serviceaccount/service-account.uid"] == "u-1"
    assert "aud" not in claims and claims["exp"] > claims["iat"]
    assert identity_from_claims(claims).kind == KIND_LEGACY
    with pytest.raises(PolicyError, match="UID"):
        legacy_sa_claims(namespace="ci", name="d", uid="", secret_name="s", now=NOW, ttl=dt.timedelta(hours=1), jti="j")


def test_user_claims_and_identity() -> None:
    claims = user_claims(
        issuer=ISSUER, username="alice", groups=["dev"], audience="authsvc", now=NOW, ttl=dt.timedelta(hours=8),
        jti="j", source="ldap", uid="1001", extra={"department": ["r&d"]},
    )  # fmt: skip
    assert claims["sub"] == "alice" and claims["aud"] == ["authsvc"] and claims["groups"] == ["dev"]
    assert claims["authsvc.io/source"] == "ldap" and claims["uid"] == "1001"
    identity = identity_from_claims(claims)
    assert (identity.kind, identity.source, identity.extra) == (KIND_USER, "ldap", {"department": ("r&d",)})


def test_user_claims_refuse_a_service_account_name() -> None:
    with pytest.raises(PolicyError, match="service-account name"):
        user_claims(
            issuer=ISSUER, username="system:serviceaccount:kube-system:admin", groups=[], audience="a", now=NOW,
            ttl=dt.timedelta(hours=1), jti="j", source="cli",
        )  # fmt: skip


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "system:serviceaccount:ci:a", "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "b"}}},
        {"sub": "x", "kubernetes.io": "not an object"},
        {"sub": "system:serviceaccount:ci:a"},
        {"sub": "alice", "groups": "dev"},
        {"sub": "alice", "extra": {"k": "v"}},
        {"sub": ""},
    ],
    ids=["subject-mismatch", "private-claim-not-object", "sa-subject-without-claims", "groups-string", "extra-string",
         "empty-subject"],
)  # fmt: skip
def test_identity_refuses_shapes_authsvc_does_not_sign(claims: dict[str, object]) -> None:
    with pytest.raises(TokenRejected):
        identity_from_claims(claims)
