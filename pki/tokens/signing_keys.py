"""The token tables of the inventory: signing keys with their rotation state, the tokens
authsvc issued, and the denylist of revoked token ids. Thin: one transaction per method.

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

from sqlalchemy import Dialect, Engine, Index, Integer, String, Text, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from pki.db import UTCDateTime
from pki.errors import StoreError
from pki.orm import Base, make_sessionmaker


class KeyState(StrEnum):
    NEXT = "next"  # published (JWKS, sa.pub), not signing yet
    ACTIVE = "active"  # signs new tokens; exactly one
    RETIRING = "retiring"  # published until the last token it signed expires
    RETIRED = "retired"  # gone from JWKS and sa.pub; tokens it signed no longer verify


PUBLISHED_STATES = (KeyState.NEXT, KeyState.ACTIVE, KeyState.RETIRING)
# The column that records when a key entered a state.
_STATE_TIMESTAMP = {KeyState.ACTIVE: "activated_at", KeyState.RETIRING: "retiring_at", KeyState.RETIRED: "retired_at"}


class SigningKeyRow(Base):
    __tablename__ = "token_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(8))
    public_pem: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    # "generated" by authsvc, or "adopted" from an existing pki/sa.key (kubeadm import).
    origin: Mapped[str] = mapped_column(String(16), default="generated")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retiring_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IssuedTokenRow(Base):
    __tablename__ = "issued_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    kid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64), default="")
    audiences_json: Mapped[str] = mapped_column(Text, default="[]")
    # The token's own `iat` and `exp` (JWT NumericDate, seconds): stored as signed, so that a
    # batch of records costs no datetime conversion per row (tokens are recorded on the hot path).
    iat: Mapped[int] = mapped_column(Integer)
    exp: Mapped[int] = mapped_column(Integer, index=True)

    # Retiring a key asks for the latest expiry among the tokens it signed.
    __table_args__ = (Index("ix_issued_tokens_kid_exp", "kid", "exp"),)


class RevokedTokenRow(Base):
    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    # The token's `exp`; None when it is not in issued_tokens (signed elsewhere): then kept for good.
    exp: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    # Who revoked it (`cli:<user>`); `reason` says why in their words.
    revoked_by: Mapped[str | None] = mapped_column(String(255), nullable=True)


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
    def from_row(cls, row: SigningKeyRow) -> SigningKeyRecord:
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
        self._sessions = make_sessionmaker(engine)
        self._insert_tokens = _compiled_insert(engine.dialect)

    def keys(self, states: Sequence[KeyState] | None = None) -> list[SigningKeyRecord]:
        query = select(SigningKeyRow).order_by(SigningKeyRow.created_at, SigningKeyRow.kid)
        if states is not None:
            query = query.where(SigningKeyRow.state.in_([s.value for s in states]))
        with self._sessions() as session:
            return [SigningKeyRecord.from_row(r) for r in session.scalars(query)]

    def add_key(self, record: SigningKeyRecord) -> None:
        row = SigningKeyRow(
            kid=record.kid,
            algorithm=record.algorithm,
            public_pem=record.public_pem.decode(),
            state=record.state.value,
            origin=record.origin,
            created_at=record.created_at,
            activated_at=record.activated_at,
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise StoreError(f"signing key {record.kid} is already in the inventory") from None

    def transition(self, changes: Sequence[tuple[str, KeyState, KeyState]], now: dt.datetime) -> None:
        """Move keys (kid, from, to) in one transaction; StoreError if one moved meanwhile."""
        with self._sessions.begin() as session:
            for kid, before, after in changes:
                row = session.get(SigningKeyRow, kid, with_for_update=True)
                if row is None or row.state != before.value:
                    found = "missing" if row is None else row.state
                    raise StoreError(f"signing key {kid} is {found}, not {before.value}: another rotation ran; retry")
                row.state = after.value
                if after in _STATE_TIMESTAMP:
                    setattr(row, _STATE_TIMESTAMP[after], now)

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
        query = select(func.max(IssuedTokenRow.exp)).where(IssuedTokenRow.kid == kid)
        with self._sessions() as session:
            value: int | None = session.scalar(query)
        return None if value is None else _utc(value)

    def tokens(
        self, *, valid_at: dt.datetime | None = None, jti: str | None = None, subject: str | None = None
    ) -> list[TokenRecord]:
        """Issued tokens with their revocation, oldest first; only unexpired ones when valid_at is
        given, only those whose `sub` is `subject` when that is."""
        query = (
            select(IssuedTokenRow, RevokedTokenRow.revoked_at, RevokedTokenRow.revoked_by, RevokedTokenRow.reason)
            .outerjoin(RevokedTokenRow, RevokedTokenRow.jti == IssuedTokenRow.jti)
            .order_by(IssuedTokenRow.iat, IssuedTokenRow.jti)
        )
        if valid_at is not None:
            query = query.where(IssuedTokenRow.exp > int(valid_at.timestamp()))
        if jti is not None:
            query = query.where(IssuedTokenRow.jti == jti)
        if subject is not None:
            query = query.where(IssuedTokenRow.subject == subject)
        with self._sessions() as session:
            return [_token_record(*columns) for columns in session.execute(query)]

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
        try:
            with self._sessions.begin() as session:
                if session.get(RevokedTokenRow, jti) is not None:
                    return False
                exp = None if expires_at is None else int(expires_at.timestamp())
                session.add(RevokedTokenRow(jti=jti, revoked_at=now, reason=reason, exp=exp, revoked_by=revoked_by))
        except IntegrityError:
            return False  # revoked concurrently by another replica
        return True

    def revoked_jtis(self, now: dt.datetime) -> frozenset[str]:
        """Revoked ids of tokens that could still verify (expired ones cannot)."""
        query = select(RevokedTokenRow.jti).where(
            (RevokedTokenRow.exp.is_(None)) | (RevokedTokenRow.exp > int(now.timestamp()))
        )
        with self._sessions() as session:
            return frozenset(session.scalars(query))

    def prune(self, before: dt.datetime) -> int:
        """Forget tokens and revocations that expired before `before`; return how many rows went."""
        cutoff = int(before.timestamp())
        with self.engine.begin() as conn:
            tokens = conn.execute(delete(IssuedTokenRow).where(IssuedTokenRow.exp < cutoff))
            revoked = conn.execute(delete(RevokedTokenRow).where(RevokedTokenRow.exp < cutoff))
        return int(tokens.rowcount or 0) + int(revoked.rowcount or 0)


def _compiled_insert(dialect: Dialect) -> tuple[str, bool]:
    """INSERT INTO issued_tokens in this database's parameter style, and whether its parameters are
    positional (then in TOKEN_ROW_COLUMNS order, as a TokenRow is) or named."""
    compiled = insert(IssuedTokenRow).compile(dialect=dialect, column_keys=list(TOKEN_ROW_COLUMNS))
    if compiled.positional and tuple(compiled.positiontup or ()) != TOKEN_ROW_COLUMNS:
        raise AssertionError(f"issued_tokens insert binds {compiled.positiontup}, not {TOKEN_ROW_COLUMNS}")
    return compiled.string, compiled.positional


def _token_record(
    row: IssuedTokenRow, revoked_at: dt.datetime | None, revoked_by: str | None, reason: str | None
) -> TokenRecord:
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
        revoked_by=revoked_by,
        revocation_reason=reason if revoked_at is not None else None,
    )


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@functools.lru_cache(maxsize=256)
def _audiences_json(audiences: tuple[str, ...]) -> str:
    """Most tokens name the same few audience lists: encode each once."""
    return json.dumps(list(audiences))
