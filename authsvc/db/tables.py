"""The tables authsvc adds to pki's (the certificate inventory and the signing keys), on pki's
declarative Base (`authsvc.db.schema.import_models` registers all of them: schema checks, Alembic).

Each table's queries live with its feature: bootstrap tokens (authsvc/authn/bootstrap.py),
issued kubeconfig credentials (authsvc/kubeconfig/issuer.py), failed logins
(authsvc/login/ratelimit.py), rotation runs (authsvc/rotation/runs.py), access bans
(authsvc/access/bans.py). A new table goes here,
with a migration (scripts/new-migration.sh).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pki.db import Base, UTCDateTime


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
