"""`authn:` section: the webhook's authenticator chain, its backends and the result cache."""

from __future__ import annotations

import datetime as dt
import re

from pydantic import Field, field_validator, model_validator

from authsvc.settings.fields import Duration, Section, https_url

# Asymmetric algorithms only: `none` and the HMAC family can never be allowed for an issuer
# whose keys are public (HS256 "signed" with the public key is the classic forgery).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# The API server gives up on the webhook after 30 s; a backend must answer well before that.
MAX_BACKEND_TIMEOUT = dt.timedelta(seconds=25)
_EXTRA_KEY = re.compile(r"^[a-z0-9.-]+/[a-z0-9._/-]+$")


class TokenFileSettings(Section):
    # kube-apiserver --token-auth-file format, relative to the home; unset: the backend is off.
    path: str | None = None


class IssuerSettings(Section):
    """An external JWT/OIDC issuer whose tokens the webhook accepts."""

    # Must equal the tokens' `iss` claim exactly.
    url: str
    # Accepted `aud` values (OIDC client IDs); a token must carry at least one of them.
    audiences: tuple[str, ...] = Field(min_length=1)
    # Where the keys come from: a JWKS URL, a static JWKS file (relative to the home), or,
    # when neither is set, OIDC discovery at <url>/.well-known/openid-configuration.
    jwks_url: str | None = None
    jwks_file: str | None = None
    # CA bundle (relative to the home) for the issuer's HTTPS; default: the system's trust store.
    ca_file: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    username_claim: str = "sub"
    username_prefix: str = ""
    groups_claim: str | None = "groups"
    groups_prefix: str = ""
    uid_claim: str | None = None
    # extra key (a domain-prefixed path, e.g. example.org/team) -> claim name
    extra_claims: dict[str, str] = {}
    # claim -> the value it must have
    required_claims: dict[str, str] = {}
    # False (kube-apiserver's OIDC behaviour): `audiences` are client IDs checked here, and the
    # API server's own audiences apply. True: the token's `aud` must also match the TokenReview's
    # spec.audiences (tokens minted for the API server itself, e.g. another cluster's SA tokens).
    audience_aware: bool = False
    # Also the user's groups from the directory (ldap section, which must be enabled), looked
    # up by the username_claim value (before username_prefix), after the token's groups and
    # without groups_prefix; privileged ones (system:*, kubeadm:*) are never added. A user the
    # directory does not know keeps the token's groups; a directory that cannot answer fails
    # the review closed.
    groups_from_ldap: bool = False
    leeway: Duration = dt.timedelta(seconds=30)
    timeout: Duration = dt.timedelta(seconds=5)
    # How long a fetched key set is used before it is fetched again.
    jwks_cache_ttl: Duration = dt.timedelta(hours=1)
    # Least time between two fetches forced by an unknown `kid` or a failed fetch: a stream of
    # tokens with made-up kids must not turn into a stream of requests to the issuer.
    jwks_refresh_cooldown: Duration = dt.timedelta(seconds=30)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return https_url(value, "issuer url")

    @field_validator("jwks_url")
    @classmethod
    def _check_jwks_url(cls, value: str | None) -> str | None:
        return None if value is None else https_url(value, "jwks_url")

    @field_validator("algorithms")
    @classmethod
    def _check_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        refused = [a for a in value if a not in ASYMMETRIC_ALGORITHMS]
        if refused or not value:
            allowed = ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
            raise ValueError(f"algorithms {refused or '[]'} not allowed: use asymmetric ones ({allowed})")
        return value

    @field_validator("extra_claims")
    @classmethod
    def _check_extra_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not _EXTRA_KEY.match(k)]
        if bad:
            raise ValueError(f"extra keys {bad} must be lower-case domain-prefixed paths, e.g. example.org/team")
        return value

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, value: dt.timedelta) -> dt.timedelta:
        if value > MAX_BACKEND_TIMEOUT:
            raise ValueError(f"timeout {value} is too long: the API server gives up after 30s (max 25s)")
        return value

    @field_validator("leeway")
    @classmethod
    def _check_leeway(cls, value: dt.timedelta) -> dt.timedelta:
        if value > dt.timedelta(minutes=5):
            raise ValueError("leeway must be at most 5m")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> IssuerSettings:
        if self.jwks_url and self.jwks_file:
            raise ValueError(f"issuer {self.url}: set jwks_url or jwks_file, not both")
        return self


class AuthnSettings(Section):
    # Backends walked in this order; names from authsvc.authn.REGISTRY. A backend that is not
    # configured (no token file, no issuers) is left out of the chain.
    chain: tuple[str, ...] = ("tokenfile", "bootstrap", "issuers", "authsvc")
    cache_ttl: Duration = dt.timedelta(seconds=30)
    negative_cache_ttl: Duration = dt.timedelta(seconds=5)
    # Entries kept at most; 0 turns the cache off.
    cache_size: int = Field(10_000, ge=0)
    tokenfile: TokenFileSettings = TokenFileSettings()
    issuers: tuple[IssuerSettings, ...] = ()

    @field_validator("issuers")
    @classmethod
    def _unique_issuers(cls, value: tuple[IssuerSettings, ...]) -> tuple[IssuerSettings, ...]:
        urls = [i.url for i in value]
        duplicates = sorted({u for u in urls if urls.count(u) > 1})
        if duplicates:
            raise ValueError(f"issuer urls must be unique: {duplicates}")
        return value
