"""The tables authsvc adds to pki's (the certificate inventory and the signing keys), on pki's
declarative Base (pki/orm.py), whose metadata is pki.db.METADATA with the inventory's Core table
(`authsvc.db.schema.import_models` registers all of them: schema checks, Alembic).

Each table's queries live with its feature: bootstrap tokens (authsvc/authn/bootstrap.py),
issued kubeconfig credentials (authsvc/kubeconfig/issuer.py), failed logins
(authsvc/login/ratelimit.py), rotation runs (authsvc/rotation/runs.py), the OIDC provider's
authorization codes and refresh-token families (authsvc/oidc/store.py), access bans
(authsvc/access/bans.py), sign-ins of the self-service page (authsvc/self_service/sessions.py).
A new table goes here,
with a migration (scripts/new-migration.sh).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pki.db import UTCDateTime
from pki.orm import Base


class BootstrapTokenRow(Base):
    __tablename__ = "bootstrap_tokens"

    token_id: Mapped[str] = mapped_column(String(6), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    groups_json: Mapped[str] = mapped_column(Text, default="[]")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # kubeadm's usages (`authentication`, `signing`), a JSON list; tokens made before usages
    # existed had both, as kubeadm's default.
    usages_json: Mapped[str] = mapped_column(Text, default='["authentication", "signing"]')


class IssuedCredentialRow(Base):
    __tablename__ = "issued_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(255), index=True)
    groups_json: Mapped[str] = mapped_column(Text, default="[]")
    mode: Mapped[str] = mapped_column(String(16))
    cluster: Mapped[str] = mapped_column(String(255))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    serial: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    token_jti: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    requester: Mapped[str] = mapped_column(String(255), default="")


class LoginFailureRow(Base):
    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class RotationRunRow(Base):
    __tablename__ = "rotation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    exit_code: Mapped[int] = mapped_column(Integer)
    planned: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    needs_human: Mapped[int] = mapped_column(Integer, default=0)
    next_expiry: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OIDCCodeRow(Base):
    """An authorization code (RFC 6749 section 4.1.2), by the SHA-256 of its value: good once
    before `expires_at`. A used one is kept until it expires, with the family its tokens started,
    so that a second use revokes that family (section 4.1.2: SHOULD revoke)."""

    __tablename__ = "oidc_codes"

    code_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str] = mapped_column(Text, default="")
    code_challenge: Mapped[str] = mapped_column(String(128), default="")
    code_challenge_method: Mapped[str] = mapped_column(String(16), default="")
    username: Mapped[str] = mapped_column(String(255))
    uid: Mapped[str] = mapped_column(String(255), default="")
    groups_json: Mapped[str] = mapped_column(Text, default="[]")
    source: Mapped[str] = mapped_column(String(32))
    auth_time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    family_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class OIDCFamilyRow(Base):
    """One sign-in's tokens (a "family"): each refresh rotates the refresh token; presenting a
    rotated one again revokes the whole family (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2)."""

    __tablename__ = "oidc_families"

    family_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    username: Mapped[str] = mapped_column(String(255), index=True)
    uid: Mapped[str] = mapped_column(String(255), default="")
    groups_json: Mapped[str] = mapped_column(Text, default="[]")
    source: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(Text, default="")
    auth_time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str] = mapped_column(Text, default="")


class OIDCIssueRow(Base):
    """What /token handed out in a family: the access token and the refresh token (when one was
    issued), by the SHA-256 of their values; `used_at` is set when that refresh token is rotated.
    Both stop working when the family is revoked."""

    __tablename__ = "oidc_issues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    family_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("oidc_families.family_id", ondelete="CASCADE"), index=True
    )
    refresh_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    access_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    access_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AccessBanRow(Base):
    """A user whose access was revoked (`authsvc access revoke`) until `authsvc access restore`."""

    __tablename__ = "access_bans"

    # SHA-256 of the folded name (authsvc.identity.fold_username): "Alice", "alice" and its
    # fullwidth spelling are the same ban, and a long name has a fixed-size key.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(Text)
    banned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    banned_by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    # The bindings authsvc removed with the ban (grants as JSON): `access restore` writes them back.
    bindings_json: Mapped[str] = mapped_column(Text, default="[]")


class SelfServiceSessionRow(Base):
    """A sign-in on the self-service page, by the SHA-256 of its cookie's value (a database dump
    holds no usable session). Ended by logout; good until `expires_at` otherwise."""

    __tablename__ = "self_service_sessions"

    session_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), index=True)
    uid: Mapped[str] = mapped_column(String(255), default="")
    groups_json: Mapped[str] = mapped_column(Text, default="[]")
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
