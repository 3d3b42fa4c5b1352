"""`tokens:` section: the issuer, keys, lifetimes and rotation timing of the tokens authsvc signs."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from authsvc.settings.fields import Duration, Section, https_url

if TYPE_CHECKING:
    from pki.policy import SigningPolicy
    from pki.tokens.config import TokenConfig


class TokenSettings(Section):
    # kube-apiserver's --service-account-issuer (kubeadm's default).
    issuer: str = "https://kubernetes.default.svc.cluster.local"
    # `iss` of user tokens, when kube-apiserver is to verify them itself (`authsvc apiserver-config`):
    # it refuses a JWT authenticator for its own --service-account-issuer. An https URL with a path
    # (e.g. https://authsvc.example:8444/users): the public listener serves its discovery at
    # <path>/.well-known/openid-configuration. Unset: user tokens carry `issuer`, as before. Setting
    # it ends the user tokens signed before (the webhook then takes user tokens only under it).
    user_issuer: str | None = None
    # Key type of new signing keys: RS256 → RSA-2048 (as kubeadm), ES256 → P-256.
    algorithm: Literal["RS256", "ES256"] = "RS256"
    sa_ttl: Duration = dt.timedelta(hours=1)
    user_ttl: Duration = dt.timedelta(hours=8)
    max_ttl: Duration = dt.timedelta(days=1)
    # Audience of user tokens; SA tokens default to the issuer, as kube-apiserver's --api-audiences.
    user_audience: str = "authsvc"
    # kube-apiserver's --api-audiences, when set there; empty means [issuer].
    api_audiences: tuple[str, ...] = ()
    leeway: Duration = dt.timedelta(seconds=30)
    # jwks_uri advertised by discovery; default: <server.public_url>/openid/v1/jwks (this server's
    # own key set). Only ever from configuration: never built from a request's headers.
    jwks_uri: str | None = None
    # Cache-Control max-age of discovery and JWKS (kube-apiserver: 1h).
    jwks_max_age: Duration = dt.timedelta(hours=1)
    # How long a prepared key is published before `keys rotate --phase activate` may sign with it.
    publish_before_activate: Duration = dt.timedelta(hours=1)
    # Minimum time a retiring key stays published (tokens kube-apiserver signed with the same key).
    retire_min_wait: Duration = dt.timedelta(hours=1)
    # How often a server re-reads signing keys and revocations from the (shared) inventory.
    cache_refresh: Duration = dt.timedelta(seconds=5)
    # Whether the webhook's "authsvc" backend vouches for service-account tokens. Off by default:
    # kube-apiserver validates them natively (sa.pub in --service-account-key-file) and also checks
    # that the service account (UID) and bound pod still exist, which the webhook cannot; it then
    # asks the webhook about the tokens it refused, so vouching here would let a token bound to a
    # deleted pod back in. Turn on only for API servers that cannot be given sa.pub.
    webhook_service_accounts: bool = False

    @field_validator("user_issuer")
    @classmethod
    def _check_user_issuer(cls, value: str | None) -> str | None:
        if value is None:
            return None
        https_url(value, "user_issuer")
        if not urlsplit(value).path.strip("/"):
            raise ValueError(
                f"user_issuer {value!r} needs a path (e.g. {value.rstrip('/')}/users): its discovery document "
                "is served beside the service-account issuer's /.well-known/openid-configuration"
            )
        return value

    @field_validator("jwks_uri")
    @classmethod
    def _check_jwks_uri(cls, value: str | None) -> str | None:
        # kube-apiserver's --service-account-jwks-uri must be https too.
        return None if value is None else https_url(value, "jwks_uri")

    @model_validator(mode="after")
    def _user_issuer_of_its_own(self) -> TokenSettings:
        # Compared without a trailing slash: kube-apiserver finds both at the same discovery URL.
        if self.user_issuer is not None and self.user_issuer.rstrip("/") == self.issuer.rstrip("/"):
            raise ValueError(
                f"user_issuer {self.user_issuer!r} is the service-account issuer: kube-apiserver refuses a JWT "
                "authenticator for its own --service-account-issuer; give user tokens another URL, or leave it unset"
            )
        return self

    def to_config(self, policy: SigningPolicy | None = None) -> TokenConfig:
        # Imported here: loading the settings (e.g. for `authsvc login`) must not load the token stack.
        from pki.tokens.config import TokenConfig

        return TokenConfig(
            issuer=self.issuer,
            user_issuer=self.user_issuer,
            algorithm=self.algorithm,
            sa_ttl=self.sa_ttl,
            user_ttl=self.user_ttl,
            max_ttl=self.max_ttl,
            user_audience=self.user_audience,
            api_audiences=self.api_audiences,
            leeway=self.leeway,
            cache_refresh=self.cache_refresh,
            publish_before_activate=self.publish_before_activate,
            retire_min_wait=self.retire_min_wait,
            policy=policy,
        )
