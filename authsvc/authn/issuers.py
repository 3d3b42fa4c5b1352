"""External JWT/OIDC issuers: tokens signed by an identity provider the operator trusts.

Per issuer (settings `authn.issuers`): the exact `iss`, accepted audiences, an algorithm
allow-list (asymmetric only), keys from a JWKS URL, a static JWKS file or OIDC discovery,
claim mappings (username, groups, uid, extra, with prefixes) and required claim values.

Keys are PyJWT's (`PyJWKSet`, fetched with `PyJWKClient`): nothing here parses a JWT or a JWK
by hand. A fetched key set is kept for `jwks_cache_ttl`; a token with an unknown `kid` forces
a new fetch at most once per `jwks_refresh_cooldown`, and so does a failed fetch, so a flood
of made-up kids cannot become a flood of requests to the issuer. Fail closed: when the keys
cannot be had, the backend raises BackendUnavailable (an error answer, never a "yes").
Token times (exp, nbf, iat) are checked against the injected clock with the issuer's leeway.
With `groups_from_ldap`, the user's directory groups are added to the token's (see
`IssuerVerifier._with_directory_groups`); when the directory cannot answer, BackendUnavailable.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from authsvc.authn.base import AuthenticatorBase, ChainContext, GroupLookup, TokenKind
from authsvc.authn.chain import numeric_date, unverified_claims
from authsvc.errors import BackendUnavailable, ConfigError
from authsvc.identity import UserInfo
from authsvc.settings.authn import IssuerSettings
from pki.clock import Clock
from pki.errors import MalformedToken
from pki.policy import privileged_group, privileged_user
from pki.tokens.verify import read_header

log = logging.getLogger(__name__)

NAME = "issuers"
DISCOVERY_PATH = "/.well-known/openid-configuration"
# Times are checked below against the injected clock; PyJWT checks signature, iss, aud, exp's presence.
DECODE_OPTIONS: dict[str, Any] = {
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "require": ["exp", "iss", "aud"],
    "enforce_minimum_key_length": True,
}


class KeySource(Protocol):
    def key_for(self, kid: str | None) -> PyJWK | None:
        """The verification key for `kid`, None when there is none; BackendUnavailable if unknowable."""
        ...

    def healthy(self) -> bool: ...


def signing_keys(jwk_set: PyJWKSet) -> dict[str | None, PyJWK]:
    return {k.key_id: k for k in jwk_set.keys if k.public_key_use in ("sig", None)}


def _pick(keys: dict[str | None, PyJWK], kid: str | None) -> PyJWK | None:
    if kid is None and len(keys) == 1:  # one key without a kid on either side: no ambiguity
        return next(iter(keys.values()))
    return keys.get(kid)


class StaticKeys:
    """Keys from a JWKS file, read once at start."""

    def __init__(self, path: Path) -> None:
        try:
            self._keys = signing_keys(PyJWKSet.from_json(path.read_text(encoding="utf-8")))
        except (OSError, jwt.PyJWTError, ValueError) as e:
            raise ConfigError(f"JWKS file {path} cannot be used: {e}") from None

    def key_for(self, kid: str | None) -> PyJWK | None:
        return _pick(self._keys, kid)

    def healthy(self) -> bool:
        return True


class RemoteKeys:
    """Keys fetched over HTTPS from a JWKS URL, or from the one that OIDC discovery names."""

    def __init__(self, settings: IssuerSettings, clock: Clock, ssl_context: ssl.SSLContext) -> None:
        self.settings = settings
        self.clock = clock
        self.ssl_context = ssl_context
        self._jwks_client = self._client(settings.jwks_url) if settings.jwks_url else None
        self._keys: dict[str | None, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._failure: tuple[float, str] | None = None  # (retry after, message)
        self._lock = threading.Lock()

    def key_for(self, kid: str | None) -> PyJWK | None:
        now = self.clock().timestamp()
        with self._lock:
            if now >= self._fetched_at + self.settings.jwks_cache_ttl.total_seconds():
                self._fetch(now)
            elif _pick(self._keys, kid) is None and now >= self._fetched_at + self._cooldown:
                log.info("issuer %s: unknown kid, fetching its keys again", self.settings.url)
                self._fetch(now)
            return _pick(self._keys, kid)

    def healthy(self) -> bool:
        return self._failure is None

    @property
    def _cooldown(self) -> float:
        return self.settings.jwks_refresh_cooldown.total_seconds()

    def _client(self, url: str) -> PyJWKClient:
        # PyJWKClient does the HTTP (no redirects, a timeout, our TLS context); we keep the cache.
        return PyJWKClient(
            url, cache_jwk_set=False, timeout=self.settings.timeout.total_seconds(), ssl_context=self.ssl_context
        )

    def _fetch(self, now: float) -> None:
        """Fetch the key set (the caller holds the lock); a failure is remembered for a cooldown."""
        if self._failure is not None and now < self._failure[0]:
            raise BackendUnavailable(self._failure[1])
        try:
            client = self._jwks_client or self._discover()
            keys = signing_keys(PyJWKSet.from_dict(client.fetch_data()))
        except (jwt.PyJWTError, ValueError, OSError) as e:
            message = f"keys of issuer {self.settings.url} unavailable: {e}"
            self._failure = (now + self._cooldown, message)
            raise BackendUnavailable(message) from None
        self._jwks_client, self._keys, self._fetched_at, self._failure = client, keys, now, None

    def _discover(self) -> PyJWKClient:
        document = self._client(self.settings.url.rstrip("/") + DISCOVERY_PATH).fetch_data()
        if document.get("issuer") != self.settings.url:
            raise ValueError(f"discovery names issuer {document.get('issuer')!r}, not {self.settings.url!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
            raise ValueError("discovery document has no https jwks_uri")
        return self._client(jwks_uri)


def _strings(value: Any) -> tuple[str, ...] | None:
    """A claim that may be a string or a list of strings; None when it is neither."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def times_valid(claims: dict[str, Any], now: float, leeway: float) -> bool:
    """exp (required) not passed; nbf and iat (optional) not in the future; give or take the leeway.
    Each must be a finite number (a JSON integer too large for a float is not one)."""
    expires = numeric_date(claims.get("exp"))
    if expires is None or now >= expires + leeway:
        return False
    for claim in ("nbf", "iat"):
        if claim in claims:
            when = numeric_date(claims[claim])
            if when is None or now + leeway < when:
                return False
    return True


def map_claims(claims: dict[str, Any], settings: IssuerSettings) -> UserInfo | None:
    """The identity the claims describe under the issuer's mappings; None when they do not fit."""
    username = claims.get(settings.username_claim)
    if not isinstance(username, str) or not username:
        return None
    if settings.username_claim == "email" and claims.get("email_verified", True) is not True:
        return None
    groups = _strings(claims.get(settings.groups_claim)) if settings.groups_claim else ()
    uid = claims.get(settings.uid_claim, "") if settings.uid_claim else ""
    if groups is None or not isinstance(uid, str):
        return None
    extra: dict[str, tuple[str, ...]] = {}
    for key, claim in settings.extra_claims.items():
        values = _strings(claims.get(claim))
        if values is None:
            return None
        if values:
            extra[key] = values
    name = settings.username_prefix + username
    group_names = tuple(settings.groups_prefix + g for g in groups)
    # Identities from outside never carry the privileged names (pki.policy: system:masters,
    # system:node:..., kubeadm:cluster-admins, ...). No opt-in here: pki.policy.allowed_* is for
    # what authsvc issues; bind the IdP's own group names (groups_prefix) instead.
    if privileged_user(name) or any(privileged_group(g) for g in group_names):
        log.warning("issuer %s: refused a token naming a privileged user or group", settings.url)
        return None
    audiences = _token_audiences(claims, settings) if settings.audience_aware else ()
    return UserInfo(name, uid, group_names, extra, audiences, backend=NAME)


def _token_audiences(claims: dict[str, Any], settings: IssuerSettings) -> tuple[str, ...]:
    return tuple(a for a in _strings(claims.get("aud")) or () if a in settings.audiences)


class IssuerVerifier:
    def __init__(
        self, settings: IssuerSettings, keys: KeySource, clock: Clock, group_lookup: GroupLookup | None = None
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.clock = clock
        # The directory's groups of a user (groups_from_ldap), from the login wiring's LDAP service.
        self.group_lookup = group_lookup
        self._algorithms = list(settings.algorithms)
        self._audiences = list(settings.audiences)
        self._leeway = settings.leeway.total_seconds()

    def verify(self, token: str) -> UserInfo | None:
        try:
            header = read_header(token)  # to pick the key; PyJWT parses and checks all of it below
        except MalformedToken:
            return None
        kid = header.get("kid")
        if header.get("alg") not in self._algorithms or not (kid is None or isinstance(kid, str)):
            return None  # `none`, HMAC and anything not allowed never reach a key
        key = self.keys.key_for(kid)
        if key is None:
            return None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audiences,
                issuer=self.settings.url,
                options=DECODE_OPTIONS,  # type: ignore[arg-type]
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        if not times_valid(claims, self.clock().timestamp(), self._leeway):
            return None
        if any(claims.get(claim) != value for claim, value in self.settings.required_claims.items()):
            return None
        user = map_claims(claims, self.settings)
        if user is None or not self.settings.groups_from_ldap:
            return user
        return self._with_directory_groups(user, claims[self.settings.username_claim])

    def _with_directory_groups(self, user: UserInfo, username: str) -> UserInfo:
        """`user` with the directory groups of `username` (the claim, before username_prefix)
        added after the token's: same cache, stale-if-error and failure rules as LDAP logins.
        Directory groups get no groups_prefix (they are the directory's names, as for an LDAP
        login; ldap.group_prefix applies); privileged ones are never added (as in map_claims).
        Raises BackendUnavailable when the directory cannot answer: the review fails closed."""
        if self.group_lookup is None:
            raise BackendUnavailable(f"issuer {self.settings.url}: the directory group lookup is not installed")
        directory_groups = self.group_lookup(username)
        if directory_groups is None:
            log.info("issuer %s: a user the directory does not know keeps the token's groups only", self.settings.url)
            return user
        refused = [g for g in directory_groups if privileged_group(g)]
        if refused:
            log.warning("issuer %s: %d privileged directory group(s) not added", self.settings.url, len(refused))
        added = [g for g in dict.fromkeys(directory_groups) if g not in user.groups and not privileged_group(g)]
        return dataclasses.replace(user, groups=(*user.groups, *added)) if added else user


class IssuersAuthenticator(AuthenticatorBase):
    name = NAME
    token_kinds = frozenset({TokenKind.JWT})

    def __init__(self, verifiers: Sequence[IssuerVerifier]) -> None:
        self._by_issuer = {v.settings.url: v for v in verifiers}
        self.issuers = frozenset(self._by_issuer)

    def authenticate(self, token: str) -> UserInfo | None:
        if len(self._by_issuer) == 1:  # nothing to choose: verify() checks iss anyway
            return next(iter(self._by_issuer.values())).verify(token)
        claims = unverified_claims(token) if token.count(".") == 2 else None  # routing only
        issuer = claims.get("iss") if claims is not None else None
        verifier = self._by_issuer.get(issuer) if isinstance(issuer, str) else None
        return None if verifier is None else verifier.verify(token)

    def ready(self) -> bool:
        return all(v.keys.healthy() for v in self._by_issuer.values())


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def key_source(settings: IssuerSettings, home_root: Path, clock: Clock) -> KeySource:
    if settings.jwks_file:
        return StaticKeys(home_root / settings.jwks_file)
    try:
        context = tls_context(home_root / settings.ca_file if settings.ca_file else None)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"issuer {settings.url}: ca_file {settings.ca_file} cannot be used: {e}") from None
    return RemoteKeys(settings, clock, context)


def build(context: ChainContext) -> IssuersAuthenticator | None:
    issuers = context.settings.authn.issuers
    if not issuers:
        return None
    needs_ldap = [s.url for s in issuers if s.groups_from_ldap]
    if needs_ldap and not context.settings.ldap.enabled:
        raise ConfigError(
            f"issuer {needs_ldap[0]}: groups_from_ldap needs ldap.enabled: true (configure the ldap section)"
        )
    root, clock, lookup = context.home_root, context.clock, context.group_lookup
    return IssuersAuthenticator([IssuerVerifier(s, key_source(s, root, clock), clock, lookup) for s in issuers])
