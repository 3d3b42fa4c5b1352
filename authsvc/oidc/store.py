"""The provider's state in the inventory database: authorization codes and refresh-token families.

Replicas share the database, so a code redeemed on one is spent on all, and a refresh token
rotated on one is stale on all. Values are stored as SHA-256 digests (a database dump holds no
usable code or token). Every "use once" is one conditional UPDATE whose row count says who won,
so two replicas (or two threads) presenting the same code or refresh token at once cannot both
succeed, on SQLite as on PostgreSQL.

    code presented       UPDATE .. SET used_at WHERE unused AND unexpired AND same client,
                         RETURNING the code's row; the family starts in the same transaction
                         a code presented again (used_at set) revokes the family its tokens began
    refresh presented    UPDATE .. SET used_at WHERE unused AND its family is live for that client
                         a rotated one presented again revokes its whole family (RFC 9700 4.14.2)
    access presented     a live family's unexpired access token (/userinfo); a revoked family's
                         access tokens stop at once

Raises BackendUnavailable when the database cannot answer (the endpoints answer 503: fail closed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, RowMapping, bindparam, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from authsvc.db.tables import OIDC_CODES, OIDC_FAMILIES, OIDC_ISSUES
from authsvc.errors import BackendUnavailable
from authsvc.oidc.models import RefreshGrant, SignedInUser, StoredCode
from authsvc.oidc.sign_ins import end_sign_ins
from pki.clock import Clock
from pki.db import UTCDateTime

log = logging.getLogger(__name__)

_CODES, _FAMILIES, _ISSUES = OIDC_CODES, OIDC_FAMILIES, OIDC_ISSUES
# The statements of the sign-in path, built once (building one costs more than running it).
_INSERT_CODE, _INSERT_FAMILY, _INSERT_ISSUE = insert(_CODES), insert(_FAMILIES), insert(_ISSUES)
_NOW = bindparam("p_now", type_=UTCDateTime())
# Spend a code: one statement whose returned row says whether this caller won.
_REDEEM = (
    update(_CODES)
    .where(_CODES.c.code_sha256 == bindparam("p_key"), _CODES.c.client_id == bindparam("p_client"))
    .where(_CODES.c.used_at.is_(None), _CODES.c.expires_at > _NOW)
    .values(used_at=_NOW, family_id=bindparam("p_family"))
    .returning(*_CODES.c)
)
_CODE_BY_KEY = select(_CODES.c.used_at, _CODES.c.family_id, _CODES.c.client_id).where(
    _CODES.c.code_sha256 == bindparam("p_key")
)
_LIVE_FAMILY = (
    _FAMILIES.c.client_id == bindparam("p_client"),
    _FAMILIES.c.revoked_at.is_(None),
    _FAMILIES.c.expires_at > _NOW,
)
_UNUSED_REFRESH = (_ISSUES.c.refresh_sha256 == bindparam("p_key"), _ISSUES.c.used_at.is_(None))
_FIND_REFRESH = (
    select(_FAMILIES)
    .join(_ISSUES, _FAMILIES.c.family_id == _ISSUES.c.family_id)
    .where(*_UNUSED_REFRESH)
    .where(*_LIVE_FAMILY)
)
# Spend a refresh token of a live family of the client.
_ROTATE = (
    update(_ISSUES)
    .where(*_UNUSED_REFRESH, _ISSUES.c.family_id.in_(select(_FAMILIES.c.family_id).where(*_LIVE_FAMILY)))
    .values(used_at=_NOW)
)
_REFRESH_AND_FAMILY = (
    select(_ISSUES.c.used_at.label("token_used_at"), _FAMILIES)
    .join(_FAMILIES, _FAMILIES.c.family_id == _ISSUES.c.family_id)
    .where(_ISSUES.c.refresh_sha256 == bindparam("p_key"))
)
_FIND_ACCESS = (
    select(_FAMILIES)
    .join(_ISSUES, _FAMILIES.c.family_id == _ISSUES.c.family_id)
    .where(_ISSUES.c.access_sha256 == bindparam("p_key"), _ISSUES.c.access_expires_at > _NOW)
    .where(_FAMILIES.c.revoked_at.is_(None), _FAMILIES.c.expires_at > _NOW)
)
_UPDATE_GROUPS = (
    update(_FAMILIES).where(_FAMILIES.c.family_id == bindparam("p_family")).values(groups_json=bindparam("p_groups"))
)
# Expired codes and families are deleted at most this often per process.
PURGE_INTERVAL_SECONDS = 60.0
# A spent code is kept this long after it expired, to recognise a late replay.
KEEP_EXPIRED = dt.timedelta(hours=1)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def new_family_id() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class CodeRequest:
    """What an authorization code is bound to (RFC 6749 4.1.2; RFC 7636 4.4)."""

    client_id: str
    redirect_uri: str
    scope: str
    nonce: str = ""
    code_challenge: str = ""
    code_challenge_method: str = ""


class OIDCStore:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        code_ttl: dt.timedelta,
        refresh_ttl: dt.timedelta,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.code_ttl = code_ttl
        self.refresh_ttl = refresh_ttl
        self._monotonic = monotonic
        self._last_purge = -PURGE_INTERVAL_SECONDS

    # -- codes --------------------------------------------------------------------------------

    def save_code(self, code: str, request: CodeRequest, user: SignedInUser) -> None:
        now = self.clock()
        row = dict(
            code_sha256=digest(code),
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            scope=request.scope,
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            username=user.username,
            uid=user.uid,
            groups_json=json.dumps(list(user.groups)),
            source=user.source,
            auth_time=user.auth_time,
            expires_at=now + self.code_ttl,
        )
        with self._transaction("save an authorization code") as conn:
            conn.execute(_INSERT_CODE, row)
            self._purge(conn, now)

    def redeem_code(self, code: str, client_id: str) -> StoredCode | None:
        """The code's request and user if it is unused, unexpired and the client's, spending it and
        starting its token family (in the same transaction); None otherwise. A code presented a
        second time revokes what its first use began."""
        now, key, family_id = self.clock(), digest(code), new_family_id()
        with self._transaction("redeem an authorization code") as conn:
            params = {"p_key": key, "p_client": client_id, "p_now": now, "p_family": family_id}
            claimed = conn.execute(_REDEEM, params).mappings().one_or_none()
            if claimed is not None:
                stored = _stored_code(claimed, family_id)
                conn.execute(_INSERT_FAMILY, self._family_row(stored, now))
                return stored
            row = conn.execute(_CODE_BY_KEY, {"p_key": key}).mappings().one_or_none()
        if row is not None and row["used_at"] is not None and row["family_id"] and row["client_id"] == client_id:
            log.warning("authorization code presented again by client %s: revoking what it began", client_id)
            self.revoke_family(row["family_id"], "authorization code used twice")
        return None

    # -- families and refresh tokens ----------------------------------------------------------

    def record_issue(
        self,
        code_or_grant: StoredCode | RefreshGrant,
        access_token: str,
        access_expires_at: dt.datetime,
        refresh_token: str | None,
    ) -> None:
        """Record what /token handed out in the family (started when the code was redeemed)."""
        now = self.clock()
        user = code_or_grant.user
        with self._transaction("record issued tokens") as conn:
            if isinstance(code_or_grant, RefreshGrant):  # the groups of the refresh, as the directory has them now
                groups = json.dumps(list(user.groups))
                conn.execute(_UPDATE_GROUPS, {"p_family": code_or_grant.family_id, "p_groups": groups})
            conn.execute(
                _INSERT_ISSUE,
                dict(
                    family_id=code_or_grant.family_id,
                    refresh_sha256=digest(refresh_token) if refresh_token else None,
                    access_sha256=digest(access_token),
                    access_expires_at=access_expires_at,
                    issued_at=now,
                    used_at=None,
                ),
            )

    def _family_row(self, code: StoredCode, now: dt.datetime) -> dict[str, object]:
        user = code.user
        return dict(
            family_id=code.family_id,
            client_id=code.client_id,
            username=user.username,
            uid=user.uid,
            groups_json=json.dumps(list(user.groups)),
            source=user.source,
            scope=code.scope,
            auth_time=user.auth_time,
            created_at=now,
            expires_at=now + self.refresh_ttl,
            revoked_at=None,
            revoked_reason="",
        )

    def find_refresh_token(self, refresh_token: str, client_id: str) -> RefreshGrant | None:
        """The grant behind an unused refresh token of a live family of this client, without
        spending it (the user is checked again before it is spent); None otherwise."""
        params = {"p_key": digest(refresh_token), "p_client": client_id, "p_now": self.clock()}
        with self._transaction("read a refresh token") as conn:
            found = conn.execute(_FIND_REFRESH, params).mappings().one_or_none()
        return None if found is None else _grant(found)

    def rotate_refresh_token(self, refresh_token: str, client_id: str) -> RefreshGrant | None:
        """The grant behind an unused refresh token of a live family of this client, spending the
        token; None otherwise. A spent token presented again revokes its family."""
        params = {"p_key": digest(refresh_token), "p_client": client_id, "p_now": self.clock()}
        with self._transaction("rotate a refresh token") as conn:
            claimed = conn.execute(_ROTATE, params).rowcount
            found = conn.execute(_REFRESH_AND_FAMILY, params).mappings().one_or_none()
        if found is None or found["client_id"] != client_id:
            return None
        if claimed == 1:
            return _grant(found)
        if found["token_used_at"] is not None and found["revoked_at"] is None:
            log.warning(
                "refresh token of user %s (client %s) presented after rotation: revoking its family",
                found["username"],
                client_id,
            )
            self.revoke_family(found["family_id"], "refresh token reused after rotation")
        return None

    def revoke_family(self, family_id: str, reason: str) -> None:
        """End a family: its refresh and access tokens stop working at once, on every replica."""
        try:
            end_sign_ins(self.engine, [family_id], now=self.clock(), reason=reason)
        except SQLAlchemyError as e:
            raise BackendUnavailable(f"cannot revoke a token family in the database: {type(e).__name__}") from e

    def find_access_token(self, access_token: str) -> tuple[str, str, SignedInUser] | None:
        """(client id, scope, user) of an unexpired access token of a live family; None otherwise."""
        params = {"p_key": digest(access_token), "p_now": self.clock()}
        with self._transaction("read an access token") as conn:
            found = conn.execute(_FIND_ACCESS, params).mappings().one_or_none()
        return None if found is None else (found["client_id"], found["scope"], _user(found))

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise BackendUnavailable(f"cannot {what} in the database: {type(e).__name__}") from e

    def _purge(self, conn: Connection, now: dt.datetime) -> None:
        """Delete codes and families long expired (not on every call: at most once a minute)."""
        if self._monotonic() - self._last_purge < PURGE_INTERVAL_SECONDS:
            return
        self._last_purge = self._monotonic()
        cutoff = now - KEEP_EXPIRED
        conn.execute(delete(_CODES).where(_CODES.c.expires_at < cutoff))
        old = select(_FAMILIES.c.family_id).where(_FAMILIES.c.expires_at < cutoff)
        # The issues first, explicitly: not every database may cascade (an SQLite connection
        # enforces foreign keys only when told to).
        conn.execute(delete(_ISSUES).where(_ISSUES.c.family_id.in_(old)))
        conn.execute(delete(_FAMILIES).where(_FAMILIES.c.expires_at < cutoff))


def _user(row: RowMapping) -> SignedInUser:
    groups = tuple(str(g) for g in json.loads(row["groups_json"]))
    return SignedInUser(row["username"], row["uid"], groups, row["source"], row["auth_time"])


def _stored_code(row: RowMapping, family_id: str) -> StoredCode:
    return StoredCode(
        client_id=row["client_id"],
        redirect_uri=row["redirect_uri"],
        scope=row["scope"],
        nonce=row["nonce"],
        code_challenge=row["code_challenge"],
        code_challenge_method=row["code_challenge_method"],
        user=_user(row),
        family_id=family_id,
    )


def _grant(family: RowMapping) -> RefreshGrant:
    return RefreshGrant(family["family_id"], family["client_id"], family["scope"], _user(family))
