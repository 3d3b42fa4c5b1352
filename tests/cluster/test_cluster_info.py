"""cluster-info's detached JWS, byte for byte what kube-controller-manager's bootstrap signer
writes and `kubeadm join` recomputes (k8s.io/cluster-bootstrap/token/jws)."""

from __future__ import annotations

import base64
import warnings

import jwt
import pytest
import yaml

from authsvc.cluster.cluster_info import (
    cluster_info_data,
    cluster_info_kubeconfig,
    detached_signature,
    signature_is_valid,
)

# The vectors of upstream's jws_test.go (computed there with go-jose).
CONTENT = "Hello from the other side. I must have called a thousand times."
SECRET = "my voice is my passcode"
TOKEN_ID = "joshua"
UPSTREAM = {
    (CONTENT, SECRET): "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8",
    ("", SECRET): "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..7Ui1ALizW4jXphVUB7xUqC9vLYLL9RZeOFfVLoB7Tgk",
    (CONTENT, ""): "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..UfkqvDGiIFxrMnFseDj9LYJOLNrvjW8aHhF71mvvAs8",
}


@pytest.mark.parametrize(("inputs", "expected"), UPSTREAM.items())
def test_signature_is_go_joses(inputs: tuple[str, str], expected: str) -> None:
    content, secret = inputs
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no short-key warning from PyJWT: the key is padded
        assert detached_signature(content, TOKEN_ID, secret) == expected


def test_header_is_alg_and_kid_only() -> None:
    header = detached_signature(CONTENT, "abcdef", "0123456789abcdef").split(".")[0]
    assert base64.urlsafe_b64decode(header + "==") == b'{"alg":"HS256","kid":"abcdef"}'


def test_valid_only_for_its_content_id_and_secret() -> None:
    signature = UPSTREAM[(CONTENT, SECRET)]
    assert signature_is_valid(signature, CONTENT, TOKEN_ID, SECRET)
    assert not signature_is_valid(signature, CONTENT + " ", TOKEN_ID, SECRET)
    assert not signature_is_valid(signature, CONTENT, "joshub", SECRET)
    assert not signature_is_valid(signature, CONTENT, TOKEN_ID, SECRET + "x")
    # Upstream's own twin: the signature with something appended.
    assert not signature_is_valid(signature + "foo", CONTENT, TOKEN_ID, SECRET)


@pytest.mark.parametrize("malformed", ["", "..", "a.b.c", "abc", UPSTREAM[(CONTENT, SECRET)].replace("..", ".x.")])
def test_malformed_signatures_are_not_valid(malformed: str) -> None:
    assert not signature_is_valid(malformed, CONTENT, TOKEN_ID, SECRET)


def test_a_signature_over_another_header_is_not_valid() -> None:
    # Verifies with the secret (PyJWT), but kubeadm compares strings: a `typ` header is not the signer's.
    compact = jwt.api_jws.PyJWS().encode(CONTENT.encode(), SECRET.encode().ljust(32, b"\0"), "HS256", {"kid": TOKEN_ID})
    header, _, signature = compact.split(".")
    assert not signature_is_valid(f"{header}..{signature}", CONTENT, TOKEN_ID, SECRET)


def test_the_kubeconfig_is_kubeadms_shape() -> None:
    content = cluster_info_kubeconfig("https://10.0.0.1:6443", b"-----BEGIN CERTIFICATE-----\n")
    parsed = yaml.safe_load(content)

    assert parsed["clusters"] == [
        {
            "name": "",
            "cluster": {
                "server": "https://10.0.0.1:6443",
                "certificate-authority-data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
            },
        }
    ]
    assert parsed["contexts"] is None and parsed["users"] is None and parsed["current-context"] == ""
    data = cluster_info_data(content, {"bbbbbb": "b" * 16, "aaaaaa": "a" * 16})
    assert list(data) == ["kubeconfig", "jws-kubeconfig-aaaaaa", "jws-kubeconfig-bbbbbb"]
    assert signature_is_valid(data["jws-kubeconfig-aaaaaa"], content, "aaaaaa", "a" * 16)
