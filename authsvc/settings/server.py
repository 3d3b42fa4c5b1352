"""`server:` section: how `authsvc serve` listens (granian, TLS, mTLS)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from authsvc.errors import ConfigError
from authsvc.settings.fields import Section


class ServerSettings(Section):
    bind: str = "127.0.0.1:8443"
    workers: int = Field(2, ge=1, le=64)
    # Python threads per worker (granian's blocking threads): requests a worker runs at once.
    # A review that waits for a backend (the directory, up to ldap.request_budget) holds one;
    # with a single thread every other review on that worker would wait behind it.
    threads: int = Field(4, ge=1, le=64)
    # Paths relative to the home. init creates these.
    tls_cert: str = "pki/authsvc/serving.crt"
    tls_key: str = "pki/authsvc/serving.key"
    tls_min_version: Literal["tls1.2", "tls1.3"] = "tls1.3"
    # CA of the certificates allowed to call the webhook: a CA of its own, so that a person's
    # client certificate from the cluster CA cannot talk to the webhook.
    client_ca: str = "pki/authsvc/webhook-client-ca.crt"
    # Optional CRL (PEM, relative to the home) of that CA, e.g. from `authsvc crl --ca authsvc/webhook-client-ca`.
    client_crl: str | None = None
    # The API server must present a client certificate; switch off only for development.
    require_client_cert: bool = True
    serving_sans: tuple[str, ...] = ("DNS:localhost", "IP:127.0.0.1")
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # The public listener: TLS without client certificates, for people and probes (/login,
    # OIDC discovery and JWKS, /healthz, /readyz, /metrics; never /authenticate). Empty: none.
    public_bind: str = ""
    # The public listener's URL as people, kubectl and token verifiers reach it: exec-mode
    # kubeconfigs send logins to <public_url>/login, and discovery publishes
    # <public_url>/openid/v1/jwks (never an address taken from a request's Host or Forwarded
    # headers). `authsvc init` writes https://127.0.0.1:8444; unset, `authsvc serve` refuses to
    # serve discovery (unless tokens.jwks_uri is set).
    public_url: str | None = None

    def published_url(self, used_for: str) -> str:
        """`public_url`, for something authsvc publishes (`used_for` says what); ConfigError when unset."""
        if self.public_url is None:
            raise ConfigError(
                f"server.public_url is not set in authsvc.yaml: {used_for}; set it to the public listener's "
                "URL as clients reach it (e.g. https://authsvc.example:8444)"
            )
        return self.public_url
