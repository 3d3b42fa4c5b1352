"""The `cluster-info` ConfigMap in `kube-public`: how `kubeadm join --token` trusts the cluster.

It holds a kubeconfig with the API server's URL and CA (`kubeconfig`), and, for each bootstrap
token that may sign, a detached JWS of that kubeconfig: `jws-kubeconfig-<token-id>`. A joining
node fetches the ConfigMap anonymously, recomputes the signature with the secret half of its
token and compares: only someone who knows the token could have signed this CA.

The signature is what kube-controller-manager's bootstrap signer writes
(k8s.io/cluster-bootstrap/token/jws): a compact JWS over the kubeconfig text, HS256, key = the
token secret, protected header `{"alg":"HS256","kid":"<token-id>"}`, with the payload part
removed (RFC 7515 appendix F: `header..signature`). kubeadm compares the strings, so the
header must be byte for byte go-jose's: sorted keys, no `typ`. Signed and checked with PyJWT.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping

import jwt
import yaml

CLUSTER_INFO = "cluster-info"
PUBLIC_NAMESPACE = "kube-public"
KUBECONFIG_KEY = "kubeconfig"
SIGNATURE_PREFIX = "jws-kubeconfig-"
ALGORITHM = "HS256"
# go-jose (and so kubeadm >= 1.30) pads HS256 keys shorter than 32 bytes with zeros; HMAC pads
# any key shorter than its 64-byte block with zeros anyway (RFC 2104), so the signature is the
# same as 1.20's unpadded one. Padding here keeps PyJWT from warning about a short HMAC key.
_MIN_KEY_BYTES = 32

_JWS = jwt.PyJWS()


def cluster_info_kubeconfig(server: str, ca_pem: bytes) -> str:
    """The kubeconfig kubeadm puts in cluster-info: one cluster named "", no user, no context."""
    document: dict[str, object] = {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {"certificate-authority-data": base64.b64encode(ca_pem).decode(), "server": server},
                "name": "",
            }
        ],
        "contexts": None,
        "current-context": "",
        "kind": "Config",
        "preferences": {},
        "users": None,
    }
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False)


def _key(token_secret: str) -> bytes:
    return token_secret.encode().ljust(_MIN_KEY_BYTES, b"\0")


def detached_signature(content: str, token_id: str, token_secret: str) -> str:
    """`header..signature` of `content`, as the bootstrap signer computes it."""
    compact = _JWS.encode(content.encode(), _key(token_secret), ALGORITHM, headers={"kid": token_id, "typ": None})
    header, _payload, signature = compact.split(".")
    return f"{header}..{signature}"


def signature_is_valid(signature: str, content: str, token_id: str, token_secret: str) -> bool:
    """What `kubeadm join` checks: the signature verifies with the token secret (PyJWT, the payload
    put back in its place), names the token, and equals the one the signer would write."""
    header, sep, rest = signature.partition("..")
    if not sep or "." in rest:
        return False
    payload = base64.urlsafe_b64encode(content.encode()).rstrip(b"=").decode()
    try:
        decoded = _JWS.decode_complete(f"{header}.{payload}.{rest}", _key(token_secret), algorithms=[ALGORITHM])
    except jwt.PyJWTError:
        return False
    if decoded["header"].get("kid") != token_id or decoded["payload"] != content.encode():
        return False
    return hmac.compare_digest(signature, detached_signature(content, token_id, token_secret))


def signatures(content: str, signing_tokens: Mapping[str, str]) -> dict[str, str]:
    """`jws-kubeconfig-<id>` → signature, for each (token id → secret) that may sign."""
    return {
        SIGNATURE_PREFIX + token_id: detached_signature(content, token_id, secret)
        for token_id, secret in sorted(signing_tokens.items())
    }


def cluster_info_data(content: str, signing_tokens: Mapping[str, str]) -> dict[str, str]:
    return {KUBECONFIG_KEY: content, **signatures(content, signing_tokens)}
