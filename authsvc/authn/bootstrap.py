"""Bootstrap tokens (`<id>.<secret>`, kubeadm's format) kept in the inventory database.

A token `abcdef.0123456789abcdef` authenticates as `system:bootstrap:abcdef` in the group
`system:bootstrappers` plus its extra groups (each `system:bootstrappers:...`, as
kube-apiserver's bootstrap authenticator requires), until it expires, if its usages include
`authentication` (kubeadm's other usage, `signing`, lets it sign the cluster-info ConfigMap).
Only the SHA-256 of the secret is stored; it is compared in constant time. When authsvc is
connected to a cluster, the token is also a `bootstrap-token-<id>` Secret there
(authsvc/cluster/bootstrap_tokens.py), which API servers with --enable-bootstrap-token-auth
and kubeadm read; this store is what the webhook answers from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, delete, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from authsvc.authn.base import AuthenticatorBase, ChainContext, TokenKind
from authsvc.authn.chain import BOOTSTRAP_TOKEN
from authsvc.db.tables import BOOTSTRAP_TOKENS
from authsvc.errors import BackendUnavailable, InvalidInput
from authsvc.identity import UserInfo
from pki.clock import Clock
from pki.errors import NotFoundError

log = logging.getLogger(__name__)

NAME = "bootstrap"
USER_PREFIX = "system:bootstrap:"
BOOTSTRAPPERS = "system:bootstrappers"
EXTRA_GROUP = re.compile(r"system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]")
TOKEN_ID = re.compile(r"[a-z0-9]{6}")
TOKEN_SECRET = re.compile(r"[a-z0-9]{16}")
# kubeadm's usages (k8s.io/cluster-bootstrap/token/api: KnownTokenUsages) and its default.
USAGE_AUTHENTICATION = "authentication"
USAGE_SIGNING = "signing"
KNOWN_USAGES = (USAGE_AUTHENTICATION, USAGE_SIGNING)
DEFAULT_USAGES = (USAGE_AUTHENTICATION, USAGE_SIGNING)
_ALPHABET = string.ascii_lowercase + string.digits
_TOKENS = BOOTSTRAP_TOKENS.c


@dataclass(frozen=True, slots=True)
class BootstrapToken:
    token_id: str
    groups: tuple[str, ...]
    description: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    usages: tuple[str, ...] = DEFAULT_USAGES

    @classmethod
    def from_row(cls, row: Row[Any]) -> BootstrapToken:
        usages = tuple(json.loads(row.usages_json))
        return cls(
            row.token_id, tuple(json.loads(row.groups_json)), row.description, row.created_at, row.expires_at, usages
        )

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "id": self.token_id,
            "user": USER_PREFIX + self.token_id,
            "groups": [BOOTSTRAPPERS, *self.groups],
            "description": self.description,
            "created": self.created_at.isoformat(timespec="seconds"),
            "expires": self.expires_at.isoformat(timespec="seconds") if self.expires_at else None,
            "usages": list(self.usages),
            "status": "expired" if self.expired(now) else "valid",
        }


def check_extra_groups(groups: Sequence[str]) -> tuple[str, ...]:
    bad = [g for g in groups if not EXTRA_GROUP.fullmatch(g)]
    if bad:
        raise InvalidInput(f"extra groups {bad} must look like system:bootstrappers:<name> ([a-z0-9:-], as kubeadm's)")
    return tuple(dict.fromkeys(groups))


def check_usages(usages: Sequence[str]) -> tuple[str, ...]:
    """kubeadm's usages, in its order; at least one (a token good for nothing is a mistake)."""
    unknown = [u for u in usages if u not in KNOWN_USAGES]
    if unknown:
        raise InvalidInput(f"unknown bootstrap token usages {unknown}: valid are {', '.join(KNOWN_USAGES)}")
    if not usages:
        raise InvalidInput(f"a bootstrap token needs at least one usage ({', '.join(KNOWN_USAGES)})")
    return tuple(u for u in KNOWN_USAGES if u in usages)


def check_token_id(token_id: str) -> str:
    if not TOKEN_ID.fullmatch(token_id):
        raise InvalidInput(f"bootstrap token id {token_id!r} must be 6 characters [a-z0-9]")
    return token_id


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh (id, secret) from the system's CSPRNG."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(6)), "".join(secrets.choice(_ALPHABET) for _ in range(16))


class BootstrapTokenStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        *,
        now: dt.datetime,
        ttl: dt.timedelta | None,
        groups: Sequence[str] = (),
        description: str = "",
        usages: Sequence[str] = DEFAULT_USAGES,
    ) -> tuple[str, BootstrapToken]:
        """Store a new token; return the token text (shown once, never stored) and its record."""
        token_id, secret = new_token()
        record = BootstrapToken(
            token_id, check_extra_groups(groups), description, now, now + ttl if ttl else None, check_usages(usages)
        )
        self.add(record, secret)
        return f"{token_id}.{secret}", record

    def add(self, record: BootstrapToken, secret: str) -> None:
        """Store `record` with the hash of `secret` (a token made elsewhere, e.g. before its Secret)."""
        if not TOKEN_ID.fullmatch(record.token_id) or not TOKEN_SECRET.fullmatch(secret):
            raise InvalidInput("a bootstrap token is <6 of [a-z0-9]>.<16 of [a-z0-9]>")
        row = insert(BOOTSTRAP_TOKENS).values(
            token_id=record.token_id,
            secret_sha256=secret_hash(secret),
            groups_json=json.dumps(list(check_extra_groups(record.groups))),
            description=record.description,
            created_at=record.created_at,
            expires_at=record.expires_at,
            usages_json=json.dumps(list(check_usages(record.usages))),
        )
        with self.engine.begin() as connection:
            connection.execute(row)

    def tokens(self) -> list[BootstrapToken]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(BOOTSTRAP_TOKENS).order_by(_TOKENS.created_at)).all()
        return [BootstrapToken.from_row(r) for r in rows]

    def lookup(self, token_id: str) -> tuple[str, BootstrapToken] | None:
        """(secret hash, token) for `token_id`, or None."""
        with self.engine.connect() as connection:
            row = connection.execute(select(BOOTSTRAP_TOKENS).where(_TOKENS.token_id == token_id)).first()
        return None if row is None else (row.secret_sha256, BootstrapToken.from_row(row))

    def delete(self, token_id: str) -> None:
        check_token_id(token_id)
        with self.engine.begin() as connection:
            gone = connection.execute(delete(BOOTSTRAP_TOKENS).where(_TOKENS.token_id == token_id)).rowcount
            if not gone:
                raise NotFoundError(f"no bootstrap token with id {token_id!r} (see `authsvc token bootstrap list`)")

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))


class BootstrapAuthenticator(AuthenticatorBase):
    name = NAME
    token_kinds = frozenset({TokenKind.BOOTSTRAP})

    def __init__(self, store: BootstrapTokenStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def authenticate(self, token: str) -> UserInfo | None:
        match = BOOTSTRAP_TOKEN.fullmatch(token)
        if match is None:
            return None
        token_id, secret = match.groups()
        try:
            found = self.store.lookup(token_id)
        except SQLAlchemyError as e:
            raise BackendUnavailable(f"bootstrap token store: {type(e).__name__}") from None
        if found is None:
            return None
        stored_hash, record = found
        if not hmac.compare_digest(stored_hash, secret_hash(secret)) or record.expired(self.clock()):
            return None
        if USAGE_AUTHENTICATION not in record.usages:
            return None  # a signing-only token, as kube-apiserver's bootstrap authenticator refuses it
        return UserInfo(USER_PREFIX + token_id, groups=(BOOTSTRAPPERS, *record.groups), backend=NAME)

    def ready(self) -> bool:
        try:
            self.store.ping()
        except SQLAlchemyError as e:
            log.warning("bootstrap token store not reachable: %s", type(e).__name__)
            return False
        return True


def build(context: ChainContext) -> BootstrapAuthenticator:
    return BootstrapAuthenticator(BootstrapTokenStore(context.stores.engine), context.clock)
