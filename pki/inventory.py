"""The inventory of issued certificates: who got what, when, and whether it is revoked.

The `certificates` table is a SQLAlchemy Core `Table` and every query here is Core: the
commands that issue or list certificates do not load SQLAlchemy's ORM (docs/operations.md,
section 6)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Row,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from pki.db import METADATA, UTCDateTime
from pki.errors import NotFoundError, StoreError
from pki.names import SubjectAltNames, subject_user
from pki.profiles import ROOT_CA
from pki.revocation import REVOCATION_REASONS as REVOCATION_REASONS  # re-exported: its old home


class CertStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"


CERTIFICATES = Table(
    "certificates",
    METADATA,
    Column("serial", String(64), primary_key=True),
    Column("fingerprint_sha256", String(64), nullable=False, unique=True),
    Column("subject", Text, nullable=False),
    Column("common_name", String(255), nullable=False, index=True),
    Column("groups_json", Text, nullable=False, default="[]"),
    Column("sans_json", Text, nullable=False, default="[]"),
    Column("profile", String(32), nullable=False),
    Column("issuer", Text, nullable=False),
    Column("ca_name", String(64), nullable=False, default="ca"),
    Column("name", String(255), nullable=True, index=True),
    Column("requester", String(255), nullable=False, default=""),
    Column("not_before", UTCDateTime, nullable=False),
    Column("not_after", UTCDateTime, nullable=False, index=True),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False, default=CertStatus.VALID.value, index=True),
    Column("auto_renew", Boolean, nullable=False, default=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revocation_reason", String(32), nullable=True),
    # Who revoked it (`cli:<user>`) and in their words why, beside the RFC 5280 reason code.
    Column("revoked_by", String(255), nullable=True),
    Column("revocation_comment", Text, nullable=True),
    Index("ix_certificates_ca_status", "ca_name", "status"),
)
_C = CERTIFICATES.c

_INSERT_CERTIFICATES = insert(CERTIFICATES)
_SUPERSEDE = (
    update(CERTIFICATES)
    .where(_C.serial == bindparam("old_serial"))
    .where(_C.status == CertStatus.VALID.value)
    .values(status=CertStatus.SUPERSEDED.value)
)


@dataclass(frozen=True, slots=True)
class SignedNames:
    """Subject, SANs and issuer (RFC 4514) of a certificate, as recorded in the inventory."""

    subject: x509.Name
    sans: SubjectAltNames
    issuer: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> SignedNames:
        return cls(cert.subject, SubjectAltNames.from_certificate_like(cert.extensions), cert.issuer.rfc4514_string())

    @classmethod
    def renewed(cls, old: x509.Certificate, issuer: str) -> SignedNames:
        """The names of a renewal of `old` signed by `issuer` (RFC 4514): the subject and SANs stay."""
        return cls(old.subject, SubjectAltNames.from_certificate_like(old.extensions), issuer)


@dataclass(frozen=True, slots=True)
class CertRecord:
    serial: str
    fingerprint_sha256: str
    subject: str
    common_name: str
    groups: tuple[str, ...]
    sans: tuple[str, ...]
    profile: str
    issuer: str
    ca_name: str
    name: str | None
    requester: str
    not_before: dt.datetime
    not_after: dt.datetime
    issued_at: dt.datetime
    status: CertStatus
    auto_renew: bool
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    revoked_by: str | None = None
    revocation_comment: str | None = None

    @classmethod
    def for_certificate(
        cls,
        cert: x509.Certificate,
        *,
        profile: str,
        now: dt.datetime,
        requester: str = "",
        name: str | None = None,
        ca_name: str = "ca",
        auto_renew: bool = False,
        signed: SignedNames | None = None,
    ) -> CertRecord:
        """The record of a freshly issued certificate (pure: nothing is stored).

        `signed` carries the names the issuer has just put into `cert`, so that they are not
        parsed back out of it (that parse costs more than the signature of an ECDSA leaf).
        """
        names = signed or SignedNames.of(cert)
        cn, groups = subject_user(names.subject)
        return cls(
            serial=serial_hex(cert.serial_number),
            fingerprint_sha256=certificate_fingerprint(cert),
            subject=names.subject.rfc4514_string(),
            common_name=cn,
            groups=groups,
            sans=tuple(names.sans.as_strings()),
            profile=profile,
            issuer=names.issuer,
            ca_name=ca_name,
            name=name,
            requester=requester,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            issued_at=now,
            status=CertStatus.VALID,
            auto_renew=auto_renew,
            revoked_at=None,
            revocation_reason=None,
        )

    @classmethod
    def from_row(cls, row: Row[Any]) -> CertRecord:
        """The record of a `certificates` row (every column selected)."""
        return cls(
            serial=row.serial,
            fingerprint_sha256=row.fingerprint_sha256,
            subject=row.subject,
            common_name=row.common_name,
            groups=tuple(json.loads(row.groups_json)),
            sans=tuple(json.loads(row.sans_json)),
            profile=row.profile,
            issuer=row.issuer,
            ca_name=row.ca_name,
            name=row.name,
            requester=row.requester,
            not_before=row.not_before,
            not_after=row.not_after,
            issued_at=row.issued_at,
            status=CertStatus(row.status),
            auto_renew=row.auto_renew,
            revoked_at=row.revoked_at,
            revocation_reason=row.revocation_reason,
            revoked_by=row.revoked_by,
            revocation_comment=row.revocation_comment,
        )

    def row_values(self) -> dict[str, object]:
        """The record as column values of the `certificates` table."""
        return {
            "serial": self.serial,
            "fingerprint_sha256": self.fingerprint_sha256,
            "subject": self.subject,
            "common_name": self.common_name,
            "groups_json": json.dumps(list(self.groups)),
            "sans_json": json.dumps(list(self.sans)),
            "profile": self.profile,
            "issuer": self.issuer,
            "ca_name": self.ca_name,
            "name": self.name,
            "requester": self.requester,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "issued_at": self.issued_at,
            "status": self.status.value,
            "auto_renew": self.auto_renew,
            "revoked_at": self.revoked_at,
            "revocation_reason": self.revocation_reason,
            "revoked_by": self.revoked_by,
            "revocation_comment": self.revocation_comment,
        }

    def as_dict(self) -> dict[str, object]:
        return {
            "serial": self.serial,
            "name": self.name,
            "commonName": self.common_name,
            "groups": list(self.groups),
            "sans": list(self.sans),
            "profile": self.profile,
            "ca": self.ca_name,
            "issuer": self.issuer,
            "notBefore": self.not_before.isoformat(),
            "notAfter": self.not_after.isoformat(),
            "status": self.status.value,
            "requester": self.requester,
            "fingerprintSHA256": self.fingerprint_sha256,
            "revokedAt": self.revoked_at.isoformat() if self.revoked_at else None,
            "revocationReason": self.revocation_reason,
            "revokedBy": self.revoked_by,
            "revocationComment": self.revocation_comment,
        }


def insert_records(connection: Connection, records: Sequence[CertRecord]) -> None:
    """INSERT `records` in the caller's transaction: one executemany of a statement built once."""
    connection.execute(_INSERT_CERTIFICATES, [r.row_values() for r in records])


def supersede(connection: Connection, serials: Sequence[str]) -> None:
    """Mark the valid certificates among `serials` superseded, in the caller's transaction: one
    executemany of one UPDATE (an IN list of bound values is rendered and compiled anew per call)."""
    if serials:
        connection.execute(_SUPERSEDE, [{"old_serial": parse_serial(s)} for s in serials])


def serial_hex(serial: int) -> str:
    """Serials are shown and stored as lower-case hex without separators (openssl prints upper case)."""
    return format(serial, "x")


def parse_serial(text: str) -> str:
    value = text.strip().lower().replace(":", "")
    value = value.removeprefix("0x")
    try:
        int(value, 16)
    except ValueError:
        raise StoreError(f"invalid serial {text!r}: expected hexadecimal") from None
    return value.lstrip("0") or "0"


def certificate_fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


class Inventory:
    """Records certificates in any SQLAlchemy database; every method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        cert: x509.Certificate,
        *,
        profile: str,
        now: dt.datetime,
        requester: str = "",
        name: str | None = None,
        ca_name: str = "ca",
        auto_renew: bool = False,
    ) -> CertRecord:
        """Record one issued certificate (one transaction); StoreError if its serial is already known."""
        record = CertRecord.for_certificate(
            cert, profile=profile, now=now, requester=requester, name=name, ca_name=ca_name, auto_renew=auto_renew
        )
        self.add([record])
        return record

    def add(self, records: Sequence[CertRecord]) -> None:
        """Store records built by `CertRecord.for_certificate` in one transaction (batch issuance).

        A Core INSERT rather than ORM objects: the unit of work costs more than the row itself,
        and issuance with an inventory record is a path we keep fast (bench/issue.py).
        """
        if not records:
            return
        try:
            with self.engine.begin() as connection:
                insert_records(connection, records)
        except IntegrityError as e:
            serials = ", ".join(r.serial for r in records[:3])
            raise StoreError(f"certificate {serials} is already in the inventory (same serial or fingerprint)") from e

    def count(self, *, status: CertStatus | None = None) -> int:
        query = select(func.count()).select_from(CERTIFICATES)
        if status is not None:
            query = query.where(_C.status == status.value)
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def get(self, serial: str) -> CertRecord:
        with self.engine.connect() as connection:
            row = _row(connection, serial)
        if row is None:
            raise NotFoundError(f"no certificate with serial {serial} in the inventory")
        return CertRecord.from_row(row)

    def certificates(
        self,
        *,
        status: CertStatus | None = None,
        ca_name: str | None = None,
        name: str | None = None,
        common_name: str | None = None,
        valid_at: dt.datetime | None = None,
    ) -> list[CertRecord]:
        """Oldest first; `common_name` (the user of a client certificate) and `valid_at` (not
        expired then) narrow the list."""
        query = select(CERTIFICATES).order_by(_C.issued_at, _C.serial)
        if common_name is not None:
            query = query.where(_C.common_name == common_name)
        if valid_at is not None:
            query = query.where(_C.not_after > valid_at)
        if status is not None:
            query = query.where(_C.status == status.value)
        if ca_name is not None:
            query = query.where(_C.ca_name == ca_name)
        if name is not None:
            query = query.where(_C.name == name)
        with self.engine.connect() as connection:
            return [CertRecord.from_row(r) for r in connection.execute(query)]

    def revoke(
        self,
        serial: str,
        *,
        reason: str,
        now: dt.datetime,
        revoked_by: str | None = None,
        comment: str | None = None,
    ) -> CertRecord:
        """Mark revoked with an RFC 5280 `reason`; `revoked_by` and `comment` say who and, in words, why."""
        if reason not in REVOCATION_REASONS:
            known = ", ".join(sorted(REVOCATION_REASONS))
            raise StoreError(f"unknown revocation reason {reason!r} (one of: {known})")
        with self.engine.begin() as connection:
            row = _row(connection, serial)
            if row is None:
                raise NotFoundError(f"no certificate with serial {serial} in the inventory")
            if row.profile == ROOT_CA.name:
                raise StoreError(f"{row.serial} is the root CA {row.name}: a CA cannot revoke itself; rotate it")
            if row.status == CertStatus.REVOKED.value:
                raise StoreError(f"certificate {row.serial} was already revoked at {row.revoked_at:%Y-%m-%dT%H:%M:%SZ}")
            record = replace(
                CertRecord.from_row(row),
                status=CertStatus.REVOKED,
                revoked_at=now,
                revocation_reason=reason,
                revoked_by=revoked_by,
                revocation_comment=comment or None,
            )
            connection.execute(
                update(CERTIFICATES)
                .where(_C.serial == record.serial)
                .values(
                    status=record.status.value,
                    revoked_at=record.revoked_at,
                    revocation_reason=record.revocation_reason,
                    revoked_by=record.revoked_by,
                    revocation_comment=record.revocation_comment,
                )
            )
            return record

    def revoked_serials(self, now: dt.datetime) -> frozenset[str]:
        """Serials of revoked certificates that have not expired (what a revocation check needs)."""
        query = select(_C.serial).where(_C.status == CertStatus.REVOKED.value, _C.not_after > now)
        with self.engine.connect() as connection:
            return frozenset(connection.scalars(query))

    def mark_superseded(self, serials: Sequence[str]) -> None:
        with self.engine.begin() as connection:
            supersede(connection, serials)

    def revoked_for(self, ca_name: str) -> list[CertRecord]:
        return self.certificates(status=CertStatus.REVOKED, ca_name=ca_name)


def _row(connection: Connection, serial: str) -> Row[Any] | None:
    """The `certificates` row of `serial` (any spelling parse_serial reads), or None."""
    return connection.execute(select(CERTIFICATES).where(_C.serial == parse_serial(serial))).first()
