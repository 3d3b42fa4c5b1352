"""The token tables of the inventory: signing keys with their rotation state, the tokens
authsvc issued, and the denylist of revoked token ids. Thin: one transaction per method.
SQLAlchemy Core tables on pki.db.METADATA, queried with Core: a command that signs a token does
not load the ORM (docs/operations.md, section 6).

Only public keys are stored here; private keys stay in files (`pki/sa.key`, 0600).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    Dialect,
    Engine,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from pki.db import METADATA, UTCDateTime
from pki.errors import StoreError


class KeyState(StrEnum):
    NEXT = "next"  # published (JWKS, sa.pub), not signing yet
    ACTIVE = "active"  # signs new tokens; exactly one
    RETIRING = "retiring"  # published until the last token it signed expires
    RETIRED = "retired"  # gone from JWKS and sa.pub; tokens it signed no longer verify


PUBLISHED_STATES = (KeyState.NEXT, KeyState.ACTIVE, KeyState.RETIRING)
# The column that records when a key entered a state.
_STATE_TIMESTAMP = {KeyState.ACTIVE: "activated_at", KeyState.RETIRING: "retiring_at", KeyState.RETIRED: "retired_at"}


SIGNING_KEYS = Table(
    "token_signing_keys",
    METADATA,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(8), nullable=False),
    Column("public_pem", Text, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    # "generated" by authsvc, or "adopted" from an existing pki/sa.key (kubeadm import).
    Column("origin", String(16), nullable=False, default="generated"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime, nullable=True),
    Column("retiring_at", UTCDateTime, nullable=True),
    Column("retired_at", UTCDateTime, nullable=True),
)

ISSUED_TOKENS = Table(
    "issued_tokens",
    METADATA,
    Column("jti", String(64), primary_key=True),
    Column("kid", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", Text, nullable=False),
    Column("source", String(64), nullable=False, default=""),
    Column("audiences_json", Text, nullable=False, default="[]"),
    # The token's own `iat` and `exp` (JWT NumericDate, seconds): stored as signed, so that a
    # batch of records costs no datetime conversion per row (tokens are recorded on the hot path).
    Column("iat", Integer, nullable=False),
    Column("exp", Integer, nullable=False, index=True),
    # Retiring a key asks for the latest expiry among the tokens it signed.
    Index("ix_issued_tokens_kid_exp", "kid", "exp"),
)

REVOKED_TOKENS = Table(
    "revoked_tokens",
    METADATA,
    Column("jti", String(255), primary_key=True),
    Column("revoked_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    # The token's `exp`; None when it is not in issued_tokens (signed elsewhere): then kept for good.
    Column("exp", Integer, nullable=True, index=True),
    # Who revoked it (`cli:<user>`); `reason` says why in their words.
    Column("revoked_by", String(255), nullable=True),
)
_KEYS, _TOKENS, _REVOKED = SIGNING_KEYS.c, ISSUED_TOKENS.c, REVOKED_TOKENS.c


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    kid: str
    algorithm: str
    public_pem: bytes
    state: KeyState
    origin: str
    created_at: dt.datetime
    activated_at: dt.datetime | None = None
    retiring_at: dt.datetime | None = None
    retired_at: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> SigningKeyRecord:
        return cls(
            kid=row.kid,
            algorithm=row.algorithm,
            public_pem=row.public_pem.encode(),
            state=KeyState(row.state),
            origin=row.origin,
            created_at=row.created_at,
            activated_at=row.activated_at,
            retiring_at=row.retiring_at,
            retired_at=row.retired_at,
        )

    def as_dict(self) -> dict[str, Any]:
        def when(value: dt.datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value else None

        return {
            "kid": self.kid,
            "algorithm": self.algorithm,
            "state": self.state.value,
            "origin": self.origin,
            "createdAt": when(self.created_at),
            "activatedAt": when(self.activated_at),
            "retiringAt": when(self.retiring_at),
            "retiredAt": when(self.retired_at),
        }


# An issued_tokens row as written, in column order. Signing builds one per token: a plain tuple
# costs less to make than a TokenRecord and leaves the garbage collector nothing to track.
TokenRow = tuple[str, str, str, str, str, str, int, int]
TOKEN_ROW_COLUMNS = ("jti", "kid", "kind", "subject", "source", "audiences_json", "iat", "exp")


def token_row(
    jti: str, kid: str, kind: str, subject: str, source: str, audiences: tuple[str, ...], iat: int, exp: int
) -> TokenRow:
    return (jti, kid, kind, subject, source, _audiences_json(audiences), iat, exp)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    jti: str
    kid: str
    kind: str
    subject: str
    source: str
    audiences: tuple[str, ...]
    # The token's `iat` and `exp` claims (seconds since the epoch), as signed.
    iat: int
    exp: int
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = None
    revocation_reason: str | None = None

    @property
    def issued_at(self) -> dt.datetime:
        return _utc(self.iat)

    @property
    def expires_at(self) -> dt.datetime:
        return _utc(self.exp)

    def as_dict(self) -> dict[str, Any]:
        return {
            "jti": self.jti,
            "kind": self.kind,
            "subject": self.subject,
            "source": self.source,
            "audiences": list(self.audiences),
            "kid": self.kid,
            "issuedAt": self.issued_at.isoformat(),
            "expiresAt": self.expires_at.isoformat(),
            "revokedAt": self.revoked_at.isoformat(timespec="seconds") if self.revoked_at else None,
            "revokedBy": self.revoked_by,
            "revocationReason": self.revocation_reason,
        }


class SigningKeyStore:
    """Signing keys, issued tokens and revocations in any SQLAlchemy database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert_tokens = _compiled_insert(engine.dialect)

    def keys(self, states: Sequence[KeyState] | None = None) -> list[SigningKeyRecord]:
        query = select(SIGNING_KEYS).order_by(_KEYS.created_at, _KEYS.kid)
        if states is not None:
            query = query.where(_KEYS.state.in_([s.value for s in states]))
        with self.engine.connect() as conn:
            return [SigningKeyRecord.from_row(r) for r in conn.execute(query)]

    def add_key(self, record: SigningKeyRecord) -> None:
        row = insert(SIGNING_KEYS).values(
            kid=record.kid,
            algorithm=record.algorithm,
            public_pem=record.public_pem.decode(),
            state=record.state.value,
            origin=record.origin,
            created_at=record.created_at,
            activated_at=record.activated_at,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(row)
        except IntegrityError:
            raise StoreError(f"signing key {record.kid} is already in the inventory") from None

    def transition(self, changes: Sequence[tuple[str, KeyState, KeyState]], now: dt.datetime) -> None:
        """Move keys (kid, from, to) in one transaction; StoreError if one moved meanwhile."""
        with self.engine.begin() as conn:
            for kid, before, after in changes:
                # Locked until the transaction ends (PostgreSQL; SQLite's write lock serialises).
                state = conn.execute(select(_KEYS.state).where(_KEYS.kid == kid).with_for_update()).scalar()
                if state is None or state != before.value:
                    found = "missing" if state is None else state
                    raise StoreError(f"signing key {kid} is {found}, not {before.value}: another rotation ran; retry")
                values: dict[str, Any] = {"state": after.value}
                if after in _STATE_TIMESTAMP:
                    values[_STATE_TIMESTAMP[after]] = now
                conn.execute(update(SIGNING_KEYS).where(_KEYS.kid == kid).values(**values))

    def record_tokens(self, rows: Sequence[TokenRow]) -> None:
        """One transaction for a batch of issued tokens: the driver's executemany of the INSERT that
        SQLAlchemy compiled for this database. Not `conn.execute(insert(...), dicts)`: its per-row
        parameter handling costs as much as SQLite's own insert (~5 µs a row), and every signature
        pays it; the columns are text and integers, which need no bind processing."""
        if not rows:
            return
        # As they came: jtis are time-ordered (UUIDv7, pki.tokens.service.new_jti), so a batch
        # already lands at the end of the primary-key index; sorting it would buy nothing.
        sql, positional = self._insert_tokens
        params = rows if positional else [dict(zip(TOKEN_ROW_COLUMNS, row, strict=True)) for row in rows]
        with self.engine.begin() as conn:
            conn.exec_driver_sql(sql, params)

    def latest_expiry(self, kid: str) -> dt.datetime | None:
        query = select(func.max(_TOKENS.exp)).where(_TOKENS.kid == kid)
        with self.engine.connect() as conn:
            value: int | None = conn.execute(query).scalar()
        return None if value is None else _utc(value)

    def tokens(
        self, *, valid_at: dt.datetime | None = None, jti: str | None = None, subject: str | None = None
    ) -> list[TokenRecord]:
        """Issued tokens with their revocation, oldest first; only unexpired ones when valid_at is
        given, only those whose `sub` is `subject` when that is."""
        query = (
            select(ISSUED_TOKENS, _REVOKED.revoked_at, _REVOKED.revoked_by, _REVOKED.reason)
            .outerjoin(REVOKED_TOKENS, _REVOKED.jti == _TOKENS.jti)
            .order_by(_TOKENS.iat, _TOKENS.jti)
        )
        if valid_at is not None:
            query = query.where(_TOKENS.exp > int(valid_at.timestamp()))
        if jti is not None:
            query = query.where(_TOKENS.jti == jti)
        if subject is not None:
            query = query.where(_TOKENS.subject == subject)
        with self.engine.connect() as conn:
            return [_token_record(row) for row in conn.execute(query)]

    def revoke(
        self,
        jti: str,
        *,
        reason: str,
        now: dt.datetime,
        expires_at: dt.datetime | None,
        revoked_by: str | None = None,
    ) -> bool:
        """Put `jti` on the denylist; False when it already was there (nothing changes)."""
        exp = None if expires_at is None else int(expires_at.timestamp())
        row = insert(REVOKED_TOKENS).values(jti=jti, revoked_at=now, reason=reason, exp=exp, revoked_by=revoked_by)
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(_REVOKED.jti).where(_REVOKED.jti == jti)).first() is not None:
                    return False
                conn.execute(row)
        except IntegrityError:
            return False  # revoked concurrently by another replica
        return True

    def revoked_jtis(self, now: dt.datetime) -> frozenset[str]:
        """Revoked ids of tokens that could still verify (expired ones cannot)."""
        query = select(_REVOKED.jti).where((_REVOKED.exp.is_(None)) | (_REVOKED.exp > int(now.timestamp())))
        with self.engine.connect() as conn:
            return frozenset(conn.execute(query).scalars())

    def prune(self, before: dt.datetime) -> int:
        """Forget tokens and revocations that expired before `before`; return how many rows went."""
        cutoff = int(before.timestamp())
        with self.engine.begin() as conn:
            tokens = conn.execute(delete(ISSUED_TOKENS).where(_TOKENS.exp < cutoff))
            revoked = conn.execute(delete(REVOKED_TOKENS).where(_REVOKED.exp < cutoff))
        return int(tokens.rowcount or 0) + int(revoked.rowcount or 0)


def _compiled_insert(dialect: Dialect) -> tuple[str, bool]:
    """INSERT INTO issued_tokens in this database's parameter style, and whether its parameters are
    positional (then in TOKEN_ROW_COLUMNS order, as a TokenRow is) or named."""
    compiled = insert(ISSUED_TOKENS).compile(dialect=dialect, column_keys=list(TOKEN_ROW_COLUMNS))
    if compiled.positional and tuple(compiled.positiontup or ()) != TOKEN_ROW_COLUMNS:
        raise AssertionError(f"issued_tokens insert binds {compiled.positiontup}, not {TOKEN_ROW_COLUMNS}")
    return compiled.string, compiled.positional


def _token_record(row: Row[Any]) -> TokenRecord:
    """An issued_tokens row joined with its revocation (None columns when it is not revoked)."""
    revoked_at: dt.datetime | None = row.revoked_at
    return TokenRecord(
        jti=row.jti,
        kid=row.kid,
        kind=row.kind,
        subject=row.subject,
        source=row.source,
        audiences=tuple(json.loads(row.audiences_json)),
        iat=row.iat,
        exp=row.exp,
        revoked_at=revoked_at,
        revoked_by=row.revoked_by,
        revocation_reason=row.reason if revoked_at is not None else None,
    )


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@functools.lru_cache(maxsize=256)
def _audiences_json(audiences: tuple[str, ...]) -> str:
    """Most tokens name the same few audience lists: encode each once."""
    return json.dumps(list(audiences))
