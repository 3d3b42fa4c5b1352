"""The ExecCredential document (client.authentication.k8s.io/v1) kubectl reads from an exec plugin.

Standard library only: `authsvc login` (run by kubectl before every command) imports it.
https://kubernetes.io/docs/reference/access-authn-authz/authentication/#input-and-output-formats
"""

from __future__ import annotations

EXEC_API_VERSION = "client.authentication.k8s.io/v1"


def exec_credential(token: str, expiration_timestamp: str) -> dict[str, object]:
    """`expiration_timestamp` in RFC 3339 (UTC, "Z"): kubectl re-runs the plugin after it."""
    return {
        "apiVersion": EXEC_API_VERSION,
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": expiration_timestamp},
    }


def exec_credential_certificate(certificate_pem: str, key_pem: str, expiration_timestamp: str) -> dict[str, object]:
    """A client certificate and its key (PEM): kubectl presents them in the TLS handshake."""
    return {
        "apiVersion": EXEC_API_VERSION,
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": certificate_pem,
            "clientKeyData": key_pem,
            "expirationTimestamp": expiration_timestamp,
        },
    }
