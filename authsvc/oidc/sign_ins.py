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

from sqlalchemy import Engine, select, update

from authsvc.db.tables import OIDC_FAMILIES

_FAMILIES = OIDC_FAMILIES


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

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "id": self.family_id,
            "client": self.client_id,
            "source": self.source,
            "status": self.status(now),
            "signedInAt": _iso(self.signed_in_at),
            "expiresAt": _iso(self.expires_at),
            "revokedAt": _iso(self.revoked_at),
            "revocationReason": self.revoked_reason or None,
        }


_COLUMNS = {
    "family_id": "family_id",
    "client_id": "client_id",
    "username": "username",
    "source": "source",
    "signed_in_at": "created_at",
    "expires_at": "expires_at",
    "revoked_at": "revoked_at",
    "revoked_reason": "revoked_reason",
}


def sign_ins(engine: Engine, username: str, *, now: dt.datetime, include_ended: bool = False) -> list[SignIn]:
    """`username`'s sign-ins, oldest first: the live ones, or with `include_ended` every one the
    database still keeps (ended ones are purged an hour after they expire)."""
    query = select(_FAMILIES).where(_FAMILIES.c.username == username).order_by(_FAMILIES.c.created_at)
    if not include_ended:
        query = query.where(_FAMILIES.c.revoked_at.is_(None), _FAMILIES.c.expires_at > now)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [SignIn(**{field: r[column] for field, column in _COLUMNS.items()}) for r in rows]


def signed_in_users(engine: Engine, *, now: dt.datetime) -> set[str]:
    """The names with a live sign-in (for `access list` of everyone)."""
    query = select(_FAMILIES.c.username).where(_FAMILIES.c.revoked_at.is_(None), _FAMILIES.c.expires_at > now)
    with engine.connect() as conn:
        return set(conn.scalars(query.distinct()).all())


def end_sign_ins(engine: Engine, family_ids: Sequence[str], *, now: dt.datetime, reason: str) -> list[str]:
    """Revoke these families (those not revoked already, in one transaction); the ids ended now."""
    if not family_ids:
        return []
    statement = (
        update(_FAMILIES)
        .where(_FAMILIES.c.family_id.in_(family_ids), _FAMILIES.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .returning(_FAMILIES.c.family_id)
    )
    with engine.begin() as conn:
        return sorted(conn.scalars(statement).all())


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None
