"""`proxy:` section: `authsvc proxy`, the authentication proxy in front of kube-apiserver.

The proxy authenticates every request with the webhook's chain (and client certificates from
`client_ca`), then forwards it to `upstream` as the person: with the front-proxy client
certificate and `X-Remote-*` headers (`request-header` mode, kube-apiserver's
`--requestheader-*` flags, which kubeadm sets), or as a service account allowed to impersonate
(`impersonation` mode, for API servers whose flags cannot be changed). docs/proxy.md.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, field_validator

from authsvc.settings.fields import Duration, Section, https_url

# What kube-apiserver accepts as a header name (RFC 9110 token characters).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _header_name(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an HTTP header name")
    return value


class RequestHeaderSettings(Section):
    """request-header mode: who the proxy is to the API server, and the headers it reads."""

    # Signed by the front-proxy CA (--requestheader-client-ca-file); its CN must be in
    # --requestheader-allowed-names. kubeadm's front-proxy-client is what a kubeadm API server
    # already allows (relative to the home).
    client_cert: str = "pki/front-proxy-client.crt"
    client_key: str = "pki/front-proxy-client.key"
    # --requestheader-username-headers, --requestheader-group-headers and
    # --requestheader-extra-headers-prefix as kubeadm sets them.
    username_header: str = "X-Remote-User"
    group_header: str = "X-Remote-Group"
    extra_header_prefix: str = "X-Remote-Extra-"

    _check_names = field_validator("username_header", "group_header", "extra_header_prefix")(_header_name)


class ImpersonationSettings(Section):
    """impersonation mode: the service account token the proxy forwards with."""

    # A file holding the token of a service account allowed to `impersonate` users, groups and
    # userextras (relative to the home). Re-read when it changes (projected tokens rotate).
    # Unset in a pod: the pod's own service account token.
    token_file: str | None = None


class ProxySettings(Section):
    bind: str = "127.0.0.1:8445"
    mode: Literal["request-header", "impersonation"] = "request-header"
    # The API server's URL. [default: cluster.server]
    upstream: str | None = None
    # The CA that signed the API server's serving certificate (relative to the home).
    upstream_ca: str = "pki/ca.crt"
    # The proxy's own serving certificate: `authsvc init` signs it with the cluster CA
    # (pki/ca.crt), SANs from serving_sans; kubeconfigs from `authsvc issue --via-proxy` trust it.
    tls_cert: str = "pki/authsvc/proxy.crt"
    tls_key: str = "pki/authsvc/proxy.key"
    serving_sans: tuple[str, ...] = ("DNS:localhost", "IP:127.0.0.1")
    # kubectl since 1.12 speaks TLS 1.3; 1.2 is kube-apiserver's own minimum.
    tls_min_version: Literal["tls1.2", "tls1.3"] = "tls1.2"
    # People's client certificates are verified against this CA in the TLS handshake (identity:
    # CN = user, O = groups, as kube-apiserver's --client-ca-file). Empty: no client certificates.
    client_ca: str = "pki/ca.crt"
    # Threads that run the authenticator chain and the revocation check (LDAP, database): the
    # event loop never waits on them.
    threads: int = Field(8, ge=1, le=64)
    # Connections kept open to the API server (streams such as watches hold one each).
    max_upstream_connections: int = Field(256, ge=1, le=10_000)
    connect_timeout: Duration = Field(dt.timedelta(seconds=10), gt=dt.timedelta(0))
    # Prometheus /metrics, /healthz and /readyz on plain HTTP (the TLS listener forwards every
    # path to the API server, which has its own /metrics and /healthz). Empty: none.
    metrics_bind: str = "127.0.0.1:8446"
    request_header: RequestHeaderSettings = RequestHeaderSettings()
    impersonation: ImpersonationSettings = ImpersonationSettings()

    @field_validator("upstream")
    @classmethod
    def _check_upstream(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = https_url(value, "proxy.upstream")
        return parts.rstrip("/")
