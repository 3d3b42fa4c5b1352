"""A person's sign-ins at the OIDC provider (token families), as the access lifecycle sees them.

Each sign-in through `/authorize` starts a family: the refresh token that rotates at every
`/token` refresh, and the access tokens `/userinfo` takes. `authsvc access list` shows the live
ones and `authsvc access revoke` ends them: the family is revoked in the shared database, so its
refresh token is refused at `/token` (and its access tokens at `/userinfo`) on every replica at
once, and it stays ended after `access restore` (a restore lifts the ban; it gives back no
credential). ID tokens already handed out are authsvc user tokens, revoked with the others.

Light on purpose (SQLAlchemy and the table only, not Authlib): `access list` imports it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, select, update

from authsvc.db.tables import OIDC_FAMILIES

_FAMILY = OIDC_FAMILIES.c


@dataclass(frozen=True, slots=True)
class SignIn:
    family_id: str
    client_id: str
    username: str
    source: str  # the login backend that vouched
    signed_in_at: dt.datetime
    expires_at: dt.datetime  # the family's refresh tokens stop at the latest then (oidc.refresh_ttl)
    revoked_at: dt.datetime | None
    revoked_reason: str

    def status(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "valid"


def sign_ins(engine: Engine, username: str, *, now: dt.datetime, include_ended: bool = False) -> list[SignIn]:
    """`username`'s sign-ins, oldest first: the live ones, or with `include_ended` every one the
    database still keeps (ended ones are purged an hour after they expire)."""
    query = select(OIDC_FAMILIES).where(_FAMILY.username == username).order_by(_FAMILY.created_at)
    if not include_ended:
        query = query.where(_FAMILY.revoked_at.is_(None), _FAMILY.expires_at > now)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_sign_in(r) for r in rows]


def _sign_in(row: Row[Any]) -> SignIn:
    return SignIn(
        row.family_id, row.client_id, row.username, row.source, row.created_at, row.expires_at, row.revoked_at,
        row.revoked_reason,
    )  # fmt: skip


def signed_in_users(engine: Engine, *, now: dt.datetime) -> set[str]:
    """The names with a live sign-in (for `access list` of everyone)."""
    query = select(_FAMILY.username).where(_FAMILY.revoked_at.is_(None), _FAMILY.expires_at > now)
    with engine.connect() as conn:
        return set(conn.scalars(query.distinct()).all())


def end_sign_ins(engine: Engine, family_ids: Sequence[str], *, now: dt.datetime, reason: str) -> list[str]:
    """Revoke these families (those not revoked already, in one transaction); the ids ended now.
    The one way a family is revoked: `access revoke`, the self-service page and the provider's
    own reuse detection (OIDCStore.revoke_family) all come here."""
    if not family_ids:
        return []
    statement = (
        update(OIDC_FAMILIES)
        .where(_FAMILY.family_id.in_(family_ids), _FAMILY.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .returning(_FAMILY.family_id)
    )
    with engine.begin() as conn:
        return sorted(conn.scalars(statement).all())
