"""TokenService: issues, verifies and revokes the tokens authsvc signs, and publishes its keys.

Keys are parsed once: the published public keys live in a snapshot refreshed from the
inventory every `cache_refresh` (replicas share the database), the active private key is
loaded from `pki/sa.key` once per key. The denylist of revoked ids rides in the same
snapshot, so the hot path of `verify` touches no file and no database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jwt
from sqlalchemy.exc import SQLAlchemyError

from pki.clock import Clock
from pki.durations import format_duration
from pki.errors import (
    KeyMaterialError,
    KeyUnavailable,
    MalformedToken,
    PKIError,
    PolicyError,
    RevokedToken,
    StoreError,
    WrongIssuer,
)
from pki.keys import PrivateKey, check_key_strength, public_key_pem
from pki.policy import SubjectGate, check_groups, check_user
from pki.tokens import rotation
from pki.tokens.claims import (
    KIND_ID_TOKEN,
    KIND_LEGACY,
    KIND_SERVICE_ACCOUNT,
    KIND_USER,
    LEGACY_ISSUER,
    IDTokenRequest,
    PodBinding,
    TokenIdentity,
    bound_sa_claims,
    id_token_claims,
    identity_from_claims,
    legacy_sa_claims,
    user_claims,
)
from pki.tokens.config import TokenConfig
from pki.tokens.jwks import discovery_document, jwks_document, public_keys_pem
from pki.tokens.keyfiles import SigningKeyFiles
from pki.tokens.kid import algorithm_for, kid_for, new_signing_key
from pki.tokens.ledger import TokenLedger
from pki.tokens.signing_keys import (
    PUBLISHED_STATES,
    KeyState,
    SigningKeyRecord,
    SigningKeyStore,
    TokenRecord,
    token_row,
)
from pki.tokens.verify import Expectations, VerificationKey, verify_signed

_JWS = jwt.PyJWS()
# What jwt.encode serializes claims with; one encoder (json.dumps with separators builds one per
# call), without the cycle check: claim builders make plain trees.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)
# Secret-name suffix alphabet of kube's generated names (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Order of keys in JWKS and sa.pub: the signing key first.
_STATE_ORDER = {KeyState.ACTIVE: 0, KeyState.NEXT: 1, KeyState.RETIRING: 2}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    subject: str
    claims: dict[str, Any]

    @property
    def expires_at(self) -> dt.datetime:
        # Derived when asked: most callers want only the token, and signing is a hot path.
        return dt.datetime.fromtimestamp(self.claims["exp"], dt.UTC)


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    claims: dict[str, Any]
    kid: str
    subject: str
    jti: str
    expires_at: dt.datetime
    # The token's audiences that were accepted.
    audiences: tuple[str, ...] = ()
    # identity_from_claims(claims), when `verify` has worked it out already (it checks the kind).
    known_identity: TokenIdentity | None = None

    def identity(self) -> TokenIdentity:
        """Who the token names (user name, uid, groups, extra) as kube-apiserver reports it."""
        return self.known_identity if self.known_identity is not None else identity_from_claims(self.claims)


@dataclass(frozen=True, slots=True)
class _Signer:
    """The active private key, loaded once from pki/sa.key."""

    kid: str
    algorithm: str
    key: PrivateKey


@dataclass(frozen=True, slots=True)
class _Snapshot:
    keys: dict[str, VerificationKey]
    active_kid: str | None
    revoked: frozenset[str]
    loaded_at: float
    jwks_json: bytes = field(default=b"")


def issuer_of_kind(config: TokenConfig) -> dict[str, str]:
    """The one `iss` each kind of token carries. authsvc signs each kind under its own issuer only,
    so a token under another kind's issuer (an SA-shaped token under the user issuer, which a JWT
    authenticator for user tokens would take as a service account) is refused, not reinterpreted."""
    return {KIND_SERVICE_ACCOUNT: config.issuer, KIND_LEGACY: LEGACY_ISSUER, KIND_USER: config.user_token_issuer}


# Version 7 UUID (RFC 9562): 48 bits of Unix milliseconds, version nibble 0111, 12 random
# bits, variant 10, 62 random bits.
_UUID7_VERSION = 0x7 << 76
_UUID7_VARIANT = 0b10 << 62
_RAND_B_MASK = (1 << 62) - 1


def new_jti(now: dt.datetime) -> str:
    """A time-ordered (version 7) UUID as text, its time `now`: 74 random bits keep ids unique
    and unguessable (the token is signed anyway). Time order matters for the inventory: each
    issued token's record goes into issued_tokens, whose primary key is the jti; random (v4)
    keys insert all over that index and cost 3-4x more per row once it outgrows the cache
    (5 µs a row empty, 15 µs at 80,000 rows; v7: ~4 µs throughout)."""
    random = int.from_bytes(os.urandom(10))
    millis = int(now.timestamp() * 1000) & 0xFFFF_FFFF_FFFF
    value = (millis << 80) | _UUID7_VERSION | ((random >> 62) & 0xFFF) << 64 | _UUID7_VARIANT | random & _RAND_B_MASK
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class TokenService:
    """Issues and verifies tokens for its issuers (service accounts, users); safe to share between threads."""

    def __init__(
        self,
        store: SigningKeyStore,
        files: SigningKeyFiles,
        config: TokenConfig,
        clock: Clock,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        ledger: TokenLedger | None = None,
        gate: SubjectGate | None = None,
        on_issued: Callable[[IssuedToken, str], None] | None = None,
    ) -> None:
        """`gate` is asked about a token's user name (a service account's full name) before it is
        signed (PolicyError refuses); `on_issued(token, kind)` hears of every token signed."""
        self.store, self.files, self.config, self.clock = store, files, config, clock
        self.gate, self.on_issued = gate, on_issued
        self._monotonic = monotonic
        self._ledger = ledger or TokenLedger(store)
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._parsed: dict[str, VerificationKey] = {}
        self._signer: _Signer | None = None
        self._issuer_of_kind = issuer_of_kind(config)
        self._refresh_seconds = config.cache_refresh.total_seconds()
        self._expect = self._expectations((*config.service_account_audiences, config.user_audience))

    @property
    def accepted_issuers(self) -> frozenset[str]:
        """Every `iss` a token authsvc signs may carry (which one depends on the token's kind)."""
        return frozenset(self._issuer_of_kind.values())

    # ---- issuing -------------------------------------------------------------------------

    def issue_user_token(
        self,
        username: str,
        groups: Sequence[str] = (),
        *,
        ttl: dt.timedelta | None = None,
        uid: str = "",
        extra: Mapping[str, Sequence[str]] | None = None,
        source: str = "cli",
        audience: str | None = None,
    ) -> IssuedToken:
        """A user token; the signing policy's user and group rules apply (PolicyError)."""
        self.check_policy(username, groups)
        now = self.clock()
        claims = user_claims(
            issuer=self.config.user_token_issuer,
            username=username,
            groups=groups,
            audience=audience or self.config.user_audience,
            now=now,
            ttl=self._lifetime(ttl, self.config.user_ttl),
            jti=new_jti(now),
            source=source,
            uid=uid,
            extra=extra,
        )
        return self._sign(claims, KIND_USER, source)

    def issue_id_token(
        self,
        username: str,
        groups: Sequence[str],
        request: IDTokenRequest,
        *,
        ttl: dt.timedelta | None = None,
        uid: str = "",
        source: str,
    ) -> IssuedToken:
        """An OpenID Connect ID token under the user issuer, for `request.client_id`; the signing
        policy applies as to user tokens (PolicyError). Recorded like every token: its key stays
        published until it expires."""
        self.check_policy(username, groups)
        now = self.clock()
        claims = id_token_claims(
            issuer=self.config.user_token_issuer,
            username=username,
            groups=groups,
            request=request,
            now=now,
            ttl=self._lifetime(ttl, self.config.user_ttl),
            jti=new_jti(now),
            source=source,
            uid=uid,
        )
        return self._sign(claims, KIND_ID_TOKEN, source)

    def check_policy(self, username: str, groups: Sequence[str]) -> None:
        """PolicyError when the signing policy refuses the user name or one of the groups, or
        the gate (a ban: `authsvc access revoke`) refuses the user."""
        if self.config.policy is not None:
            check_user(self.config.policy, username)
            check_groups(self.config.policy, tuple(groups))
        if self.gate is not None:
            self.gate(username)

    @property
    def signing_algorithm(self) -> str:
        """The algorithm of the active key (what new tokens are signed with)."""
        return self._current_signer().algorithm

    def issue_service_account_token(
        self,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        audiences: Sequence[str] = (),
        ttl: dt.timedelta | None = None,
        pod: tuple[str, str] | None = None,
        legacy: bool = False,
        secret_name: str | None = None,
    ) -> IssuedToken:
        """A bound token (kube's TokenRequest shape), or with `legacy` the secret-based shape."""
        if self.gate is not None:
            self.gate(f"system:serviceaccount:{namespace}:{name}")
        now = self.clock()
        lifetime, jti = self._lifetime(ttl, self.config.sa_ttl), new_jti(now)
        if legacy:
            if audiences or pod:
                raise PolicyError("legacy tokens carry no audience and no pod binding: drop --audience/--bound-pod")
            secret = secret_name or f"{name}-token-{''.join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))}"
            claims = legacy_sa_claims(
                namespace=namespace, name=name, uid=uid or "", secret_name=secret, now=now, ttl=lifetime, jti=jti
            )
            return self._sign(claims, KIND_LEGACY, "")
        claims = bound_sa_claims(
            issuer=self.config.issuer,
            namespace=namespace,
            name=name,
            uid=uid or "",
            audiences=tuple(audiences) or self.config.service_account_audiences,
            now=now,
            ttl=lifetime,
            jti=jti,
            pod=PodBinding(*pod) if pod else None,
        )
        return self._sign(claims, KIND_SERVICE_ACCOUNT, "")

    def _lifetime(self, ttl: dt.timedelta | None, default: dt.timedelta) -> dt.timedelta:
        lifetime = ttl or default
        if lifetime > self.config.max_ttl:
            raise PolicyError(
                f"token lifetime {format_duration(lifetime)} exceeds the maximum "
                f"{format_duration(self.config.max_ttl)} (tokens.max_ttl)"
            )
        return lifetime

    def _sign(self, claims: dict[str, Any], kind: str, source: str) -> IssuedToken:
        signer = self._current_signer()
        # PyJWS signs the claims as serialized here, exactly as jwt.encode would serialize them; not
        # jwt.encode itself, which first copies the dict and re-checks what the claim builders made.
        payload = _COMPACT_JSON.encode(claims).encode()
        token = _JWS.encode(payload, signer.key, signer.algorithm, {"kid": signer.kid})
        jti, subject = claims["jti"], claims["sub"]
        audience = claims.get("aud", ())
        audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        self._ledger.add(token_row(jti, signer.kid, kind, subject, source, audiences, claims["iat"], claims["exp"]))
        issued = IssuedToken(token, jti, subject, claims)
        if self.on_issued is not None:
            self.on_issued(issued, kind)
        return issued

    def _current_signer(self) -> _Signer:
        snapshot = self._fresh_snapshot()
        if snapshot.active_kid is None:
            raise KeyUnavailable("there is no active signing key: run `authsvc init` (creates pki/sa.key)")
        signer = self._signer
        if signer is None or signer.kid != snapshot.active_kid:
            with self._lock:
                key = self.files.load_active(snapshot.active_kid)
                signer = self._signer = _Signer(snapshot.active_kid, algorithm_for(key.public_key()), key)
        return signer

    def flush(self) -> None:
        """Write buffered records of issued tokens to the inventory now."""
        self._ledger.flush()

    # ---- verifying -----------------------------------------------------------------------

    def verify(self, token: str, *, audiences: Sequence[str] | None = None) -> VerifiedToken:
        """Raise TokenRejected (a definite no) or KeyUnavailable (cannot decide)."""
        snapshot = self._fresh_snapshot()
        expect = self._expect if audiences is None else self._expectations(tuple(audiences))
        result = verify_signed(token, snapshot.keys, expect, self.clock())
        claims = result.claims
        jti = claims.get("jti", "")
        if not isinstance(jti, str):
            raise MalformedToken("token claim 'jti' is not a string")
        if jti and jti in snapshot.revoked:
            raise RevokedToken(f"token {jti} has been revoked")
        # A shape authsvc does not sign is refused here, not later; so is a shape under another kind's issuer.
        identity = identity_from_claims(claims)
        self._check_issuer(identity.kind, claims["iss"])
        expires = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
        return VerifiedToken(claims, result.key.kid, claims["sub"], jti, expires, result.audiences, identity)

    def _check_issuer(self, kind: str, issuer: str) -> None:
        expected = self._issuer_of_kind[kind]
        if issuer != expected:
            raise WrongIssuer(f"a {kind} token must be issued by {expected!r}, not {issuer!r}")

    def _expectations(self, audiences: tuple[str, ...]) -> Expectations:
        return Expectations(
            issuers=self.accepted_issuers,
            audiences=frozenset(audiences),
            implicit_audiences=self.config.service_account_audiences,
            leeway=self.config.leeway,
        )

    def revoke(self, jti: str, *, reason: str = "", revoked_by: str | None = None) -> bool:
        """Deny `jti` from now on, here at once and in other replicas within `cache_refresh`;
        False when it was revoked already (nothing changes)."""
        if not jti or len(jti) > 255:
            raise StoreError(f"invalid token id {jti[:64]!r}: expected the token's jti claim")
        self.flush()
        issued = self.store.tokens(jti=jti)
        expires = issued[0].expires_at if issued else None
        added = self.store.revoke(jti, reason=reason, now=self.clock(), expires_at=expires, revoked_by=revoked_by)
        with self._lock:
            if self._snapshot is not None:
                self._snapshot = replace(self._snapshot, revoked=self._snapshot.revoked | {jti})
        return added

    def is_revoked(self, jti: str) -> bool:
        return jti in self._fresh_snapshot().revoked

    # ---- publishing ----------------------------------------------------------------------

    def published_keys(self) -> list[VerificationKey]:
        return list(self._fresh_snapshot().keys.values())

    def jwks(self) -> dict[str, Any]:
        return jwks_document(self.published_keys())

    def jwks_json(self) -> bytes:
        """The JWKS rendered once per snapshot (what the HTTP endpoint serves)."""
        return self._fresh_snapshot().jwks_json

    def discovery(self, jwks_uri: str) -> dict[str, Any]:
        """The service-account issuer's discovery document."""
        return discovery_document(self.config.issuer, jwks_uri, self.published_keys())

    def user_discovery(self, jwks_uri: str) -> dict[str, Any]:
        """The user issuer's (same keys, its own `issuer`): what a JWT authenticator for user tokens fetches."""
        return discovery_document(self.config.user_token_issuer, jwks_uri, self.published_keys())

    def public_keys_pem(self) -> bytes:
        return public_keys_pem(self.published_keys())

    # ---- keys and rotation ---------------------------------------------------------------

    def key_records(self) -> list[SigningKeyRecord]:
        """Every signing key the inventory knows, retired ones included."""
        return self.store.keys()

    def tokens(self, *, include_expired: bool = False, subject: str | None = None) -> list[TokenRecord]:
        """Issued tokens (unexpired ones unless `include_expired`; of one `sub` when `subject` is given)."""
        self.flush()
        return self.store.tokens(valid_at=None if include_expired else self.clock(), subject=subject)

    def rotate(self, phase: str, *, force: bool = False) -> rotation.RotationResult:
        return rotation.rotate(self, rotation.Phase(phase), force=force)

    def ensure_active_key(self) -> SigningKeyRecord:
        """The active key; adopts an existing pki/sa.key, or creates one when there is none."""
        records = self.store.keys()
        active = [r for r in records if r.state is KeyState.ACTIVE]
        if active:
            return active[0]
        if records:
            raise KeyMaterialError("no signing key is active: run `authsvc keys rotate --phase activate`")
        record = self._adopt_existing()
        if record is None:
            if self.files.public_bundle.exists():
                raise KeyMaterialError(
                    f"{self.files.public_bundle} exists without {self.files.active_key}: restore it or remove both"
                )
            key = new_signing_key(self.config.algorithm)
            self.files.write_active(key)
            record = self.key_record(key, KeyState.ACTIVE, "generated")
            self.store.add_key(record)
            self.files.write_bundle(record.public_pem)
        self.invalidate()
        return record

    def key_record(self, key: PrivateKey, state: KeyState, origin: str) -> SigningKeyRecord:
        public, now = key.public_key(), self.clock()
        return SigningKeyRecord(
            kid=kid_for(public),
            algorithm=algorithm_for(public),
            public_pem=public_key_pem(public),
            state=state,
            origin=origin,
            created_at=now,
            activated_at=now if state is KeyState.ACTIVE else None,
        )

    def _adopt_existing(self) -> SigningKeyRecord | None:
        """A kubeadm tree's (or an older home's) sa.key becomes the active key."""
        if not self.files.active_key.exists():
            return None
        key = self.files.load(self.files.active_key)
        check_key_strength(key.public_key())
        record = self.key_record(key, KeyState.ACTIVE, "adopted")
        with contextlib.suppress(StoreError):  # another replica adopted it first
            self.store.add_key(record)
        if not self.files.public_bundle.exists():
            self.files.write_bundle(record.public_pem)
        return record

    def invalidate(self) -> None:
        """Forget cached keys and revocations (after a rotation in this process)."""
        with self._lock:
            self._snapshot = None

    def ready(self) -> bool:
        try:
            self._fresh_snapshot()
        except KeyUnavailable:
            return False
        return True

    # ---- the snapshot --------------------------------------------------------------------

    def _fresh_snapshot(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and self._monotonic() - snapshot.loaded_at < self._refresh_seconds:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None or self._monotonic() - snapshot.loaded_at >= self._refresh_seconds:
                snapshot = self._load_snapshot()
                self._snapshot = snapshot
            return snapshot

    def _load_snapshot(self) -> _Snapshot:
        try:
            records = self.store.keys(PUBLISHED_STATES)
            if not records and not self.store.keys():
                adopted = self._adopt_existing()
                records = [adopted] if adopted else []
            revoked = self.store.revoked_jtis(self.clock() - self.config.leeway)
        except (SQLAlchemyError, PKIError) as e:
            raise KeyUnavailable(f"cannot load the token signing keys: {type(e).__name__}: {e}") from e
        ordered = sorted(records, key=lambda r: (_STATE_ORDER.get(r.state, 9), r.created_at))
        keys = {r.kid: self._parsed_key(r) for r in ordered}
        active = next((r.kid for r in ordered if r.state is KeyState.ACTIVE), None)
        jwks = json.dumps(jwks_document(keys.values()), separators=(",", ":")).encode()
        return _Snapshot(keys, active, revoked, self._monotonic(), jwks)

    def _parsed_key(self, record: SigningKeyRecord) -> VerificationKey:
        parsed = self._parsed.get(record.kid)
        if parsed is None:
            parsed = self._parsed[record.kid] = VerificationKey.from_record(record)
        return parsed if parsed.state is record.state else replace(parsed, state=record.state)
