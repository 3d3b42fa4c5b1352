"""`self_service:` section: the self-service access page on the public listener (docs/self-service.md).

People sign in at `<server.public_url>/` with the credentials /login takes (login.backends),
see who they are, download a kubeconfig in one of `modes`, and list and revoke the credentials
they hold. Off by default: `/` answers 404 until `enabled: true`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, field_validator

from authsvc.settings.fields import Duration, Section, https_url

# The kubeconfigs a person may download for themselves. Not `cert`: a key made by the server,
# valid for months, that kube-apiserver can never revoke, is an admin's decision (`authsvc issue`).
SelfServiceMode = Literal["exec", "exec-cert", "token"]
# A cluster name becomes a kubeconfig's cluster and context name and a download's file name.
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class SelfServiceCluster(Section):
    """One cluster the page offers kubeconfigs for."""

    # The kubeconfig's cluster name (letters, digits, '.', '_', '-').
    name: str
    # The API server's URL as people reach it.
    server: str
    # The CA bundle kubectl trusts that API server with (PEM, relative to the home); unset: the
    # cluster CA of this home (pki/ca.crt).
    ca_file: str | None = None
    # One line shown beside the cluster on the page (e.g. "production, eu-west").
    description: str = Field("", max_length=200)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _CLUSTER_NAME.fullmatch(value):
            raise ValueError(f"cluster name {value!r}: letters, digits, '.', '_' and '-', at most 63")
        return value

    @field_validator("server")
    @classmethod
    def _check_server(cls, value: str) -> str:
        return https_url(value, "server")


class SelfServiceSettings(Section):
    # Serve the page at <server.public_url>/ (needs server.public_url and login.backends).
    enabled: bool = False
    # The kubeconfig modes people may choose, the first one preselected: exec (`authsvc login`
    # as kubectl's credential plugin: later logins refresh by themselves), exec-cert (the same
    # plugin with client certificates of login.certificate_ttl), token (an authsvc token of
    # tokens.user_ttl in the file: works without authsvc installed, revocable, but a secret at rest).
    modes: tuple[SelfServiceMode, ...] = ("exec",)
    # Plain text shown at the top of every page (e.g. who to ask for access); empty: none.
    banner: str = Field("", max_length=2000)
    # The clusters offered when authsvc fronts several (their API servers all use this webhook or
    # trust its tokens), each {name: prod, server: https://prod.example:6443, ca_file:
    # pki/prod-ca.crt, description: "production"}; empty: this home's cluster.name at cluster.server.
    clusters: tuple[SelfServiceCluster, ...] = ()
    # How long a sign-in lasts on the page (then the password again); at most 12h.
    session_ttl: Duration = Field(dt.timedelta(minutes=15), gt=dt.timedelta(0), le=dt.timedelta(hours=12))

    @field_validator("modes")
    @classmethod
    def _check_modes(cls, modes: tuple[str, ...]) -> tuple[str, ...]:
        if not modes:
            raise ValueError("offer at least one mode (exec, exec-cert, token), or set enabled: false")
        if len(set(modes)) != len(modes):
            raise ValueError("each mode may be listed once")
        return modes

    @field_validator("clusters")
    @classmethod
    def _unique_clusters(cls, clusters: tuple[SelfServiceCluster, ...]) -> tuple[SelfServiceCluster, ...]:
        names = [c.name for c in clusters]
        if len(set(names)) != len(names):
            raise ValueError("each cluster name may be listed once")
        return clusters
