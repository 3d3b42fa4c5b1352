"""The tables authsvc adds to pki's (the certificate inventory and the signing keys): SQLAlchemy
Core `Table`s on pki.db.METADATA, as pki's are (`authsvc.db.schema.import_models` registers all
of them: schema checks, Alembic). Core, not ORM classes: the commands that read or write them
(every minting command asks the access bans) do not load SQLAlchemy's ORM (~70 ms of a
command's start, docs/operations.md section 6).

Each table's queries live with its feature: bootstrap tokens (authsvc/authn/bootstrap.py),
issued kubeconfig credentials (authsvc/kubeconfig/issuer.py), failed logins
(authsvc/login/ratelimit.py), rotation runs (authsvc/rotation/runs.py), the OIDC provider's
authorization codes and refresh-token families (authsvc/oidc/store.py), access bans
(authsvc/access/bans.py), sign-ins of the self-service page (authsvc/self_service/sessions.py).
A new table goes here,
with a migration (scripts/new-migration.sh).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text

from pki.db import METADATA, UTCDateTime

BOOTSTRAP_TOKENS = Table(
    "bootstrap_tokens",
    METADATA,
    Column("token_id", String(6), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("groups_json", Text, nullable=False, default="[]"),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    # kubeadm's usages (`authentication`, `signing`), a JSON list; tokens made before usages
    # existed had both, as kubeadm's default.
    Column("usages_json", Text, nullable=False, default='["authentication", "signing"]'),
)

ISSUED_CREDENTIALS = Table(
    "issued_credentials",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(255), nullable=False, index=True),
    Column("groups_json", Text, nullable=False, default="[]"),
    Column("mode", String(16), nullable=False),
    Column("cluster", String(255), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False, index=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("serial", String(64), nullable=True, index=True),
    Column("token_jti", String(128), nullable=True, index=True),
    Column("requester", String(255), nullable=False, default=""),
)

LOGIN_FAILURES = Table(
    "login_failures",
    METADATA,
    Column("key", String(64), primary_key=True),
    Column("window_start", UTCDateTime, nullable=False, index=True),
    Column("failures", Integer, nullable=False, default=0),
)

ROTATION_RUNS = Table(
    "rotation_runs",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False, index=True),
    Column("exit_code", Integer, nullable=False),
    Column("planned", Integer, nullable=False, default=0),
    Column("done", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("needs_human", Integer, nullable=False, default=0),
    Column("next_expiry", UTCDateTime, nullable=True),
)

# An authorization code (RFC 6749 section 4.1.2), by the SHA-256 of its value: good once before
# `expires_at`. A used one is kept until it expires, with the family its tokens started, so that
# a second use revokes that family (section 4.1.2: SHOULD revoke).
OIDC_CODES = Table(
    "oidc_codes",
    METADATA,
    Column("code_sha256", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False, default=""),
    Column("nonce", Text, nullable=False, default=""),
    Column("code_challenge", String(128), nullable=False, default=""),
    Column("code_challenge_method", String(16), nullable=False, default=""),
    Column("username", String(255), nullable=False),
    Column("uid", String(255), nullable=False, default=""),
    Column("groups_json", Text, nullable=False, default="[]"),
    Column("source", String(32), nullable=False),
    Column("auth_time", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("used_at", UTCDateTime, nullable=True),
    Column("family_id", String(64), nullable=True),
)

# One sign-in's tokens (a "family"): each refresh rotates the refresh token; presenting a
# rotated one again revokes the whole family (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2).
OIDC_FAMILIES = Table(
    "oidc_families",
    METADATA,
    Column("family_id", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("username", String(255), nullable=False, index=True),
    Column("uid", String(255), nullable=False, default=""),
    Column("groups_json", Text, nullable=False, default="[]"),
    Column("source", String(32), nullable=False),
    Column("scope", Text, nullable=False, default=""),
    Column("auth_time", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_reason", Text, nullable=False, default=""),
)

# What /token handed out in a family: the access token and the refresh token (when one was
# issued), by the SHA-256 of their values; `used_at` is set when that refresh token is rotated.
# Both stop working when the family is revoked.
OIDC_ISSUES = Table(
    "oidc_issues",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "family_id",
        String(64),
        ForeignKey("oidc_families.family_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("refresh_sha256", String(64), nullable=True, unique=True),
    Column("access_sha256", String(64), nullable=False, unique=True),
    Column("access_expires_at", UTCDateTime, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

# A user whose access was revoked (`authsvc access revoke`) until `authsvc access restore`.
ACCESS_BANS = Table(
    "access_bans",
    METADATA,
    # SHA-256 of the folded name (authsvc.identity.fold_username): "Alice", "alice" and its
    # fullwidth spelling are the same ban, and a long name has a fixed-size key.
    Column("key", String(64), primary_key=True),
    Column("username", Text, nullable=False),
    Column("banned_at", UTCDateTime, nullable=False),
    Column("banned_by", String(255), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    # The bindings authsvc removed with the ban (grants as JSON): `access restore` writes them back.
    Column("bindings_json", Text, nullable=False, default="[]"),
)

# A sign-in on the self-service page, by the SHA-256 of its cookie's value (a database dump
# holds no usable session). Ended by logout; good until `expires_at` otherwise.
SELF_SERVICE_SESSIONS = Table(
    "self_service_sessions",
    METADATA,
    Column("session_sha256", String(64), primary_key=True),
    Column("username", String(255), nullable=False, index=True),
    Column("uid", String(255), nullable=False, default=""),
    Column("groups_json", Text, nullable=False, default="[]"),
    Column("source", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("ended_at", UTCDateTime, nullable=True),
)
