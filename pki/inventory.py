"""The inventory of issued certificates: who got what, when, and whether it is revoked."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import Boolean, Connection, Engine, Index, String, Text, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from pki.db import Base, UTCDateTime, make_sessionmaker
from pki.errors import NotFoundError, StoreError
from pki.names import SubjectAltNames, subject_user
from pki.profiles import ROOT_CA
from pki.revocation import REVOCATION_REASONS as REVOCATION_REASONS  # re-exported: its old home


class CertStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"


class CertificateRow(Base):
    __tablename__ = "certificates"

    serial: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    common_name: Mapped[str] = mapped_column(String(255), index=True)
    groups_json: Mapped[str] = mapped_column(Text, default="[]")
    sans_json: Mapped[str] = mapped_column(Text, default="[]")
    profile: Mapped[str] = mapped_column(String(32))
    issuer: Mapped[str] = mapped_column(Text)
    ca_name: Mapped[str] = mapped_column(String(64), default="ca")
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    requester: Mapped[str] = mapped_column(String(255), default="")
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=CertStatus.VALID.value, index=True)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Who revoked it (`cli:<user>`) and in their words why, beside the RFC 5280 reason code.
    revoked_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    revocation_comment: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_certificates_ca_status", "ca_name", "status"),)


_INSERT_CERTIFICATES = insert(CertificateRow)
_SUPERSEDE = (
    update(CertificateRow)
    .where(CertificateRow.serial == bindparam("old_serial"))
    .where(CertificateRow.status == CertStatus.VALID.value)
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
    def from_row(cls, row: CertificateRow) -> CertRecord:
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
        self._sessions = make_sessionmaker(engine)

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
        query = select(func.count()).select_from(CertificateRow)
        if status is not None:
            query = query.where(CertificateRow.status == status.value)
        with self._sessions() as session:
            return int(session.scalar(query) or 0)

    def get(self, serial: str) -> CertRecord:
        with self._sessions() as session:
            row = session.get(CertificateRow, parse_serial(serial))
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
        query = select(CertificateRow).order_by(CertificateRow.issued_at, CertificateRow.serial)
        if common_name is not None:
            query = query.where(CertificateRow.common_name == common_name)
        if valid_at is not None:
            query = query.where(CertificateRow.not_after > valid_at)
        if status is not None:
            query = query.where(CertificateRow.status == status.value)
        if ca_name is not None:
            query = query.where(CertificateRow.ca_name == ca_name)
        if name is not None:
            query = query.where(CertificateRow.name == name)
        with self._sessions() as session:
            return [CertRecord.from_row(r) for r in session.scalars(query)]

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
        with self._sessions.begin() as session:
            row = session.get(CertificateRow, parse_serial(serial))
            if row is None:
                raise NotFoundError(f"no certificate with serial {serial} in the inventory")
            if row.profile == ROOT_CA.name:
                raise StoreError(f"{row.serial} is the root CA {row.name}: a CA cannot revoke itself; rotate it")
            if row.status == CertStatus.REVOKED.value:
                raise StoreError(f"certificate {row.serial} was already revoked at {row.revoked_at:%Y-%m-%dT%H:%M:%SZ}")
            row.status = CertStatus.REVOKED.value
            row.revoked_at = now
            row.revocation_reason = reason
            row.revoked_by = revoked_by
            row.revocation_comment = comment or None
            return CertRecord.from_row(row)

    def revoked_serials(self, now: dt.datetime) -> frozenset[str]:
        """Serials of revoked certificates that have not expired (what a revocation check needs)."""
        query = select(CertificateRow.serial).where(
            CertificateRow.status == CertStatus.REVOKED.value, CertificateRow.not_after > now
        )
        with self._sessions() as session:
            return frozenset(session.scalars(query))

    def mark_superseded(self, serials: Sequence[str]) -> None:
        with self.engine.begin() as connection:
            supersede(connection, serials)

    def revoked_for(self, ca_name: str) -> list[CertRecord]:
        return self.certificates(status=CertStatus.REVOKED, ca_name=ca_name)
