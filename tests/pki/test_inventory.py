"""The inventory: every issued certificate recorded once, revocation with a reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from pki.ca import CertificateAuthority
from pki.db import create_schema, make_engine
from pki.errors import NotFoundError, StoreError
from pki.inventory import CertRecord, CertStatus, Inventory
from pki.keys import KeyType, PrivateKey
from pki.names import SubjectAltNames, user_subject
from pki.profiles import CLIENT, SERVER


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    engine = make_engine(f"sqlite:///{tmp_path / 'inv.db'}")
    create_schema(engine)
    return Inventory(engine)


def test_record_holds_what_the_certificate_says(
    inventory: Inventory,
    root_ca: CertificateAuthority,
    session_keys: Callable[[KeyType], PrivateKey],
    now: dt.datetime,
) -> None:
    cert = root_ca.issue(
        subject=user_subject("web", ("ops",)),
        public_key=session_keys(KeyType.EC_P256).public_key(),
        profile=SERVER,
        now=now,
        sans=SubjectAltNames.parse(["DNS:web.svc", "IP:127.0.0.1"]),
    )
    record = inventory.record(cert, profile="server", now=now, requester="test", name="web")
    assert inventory.get(record.serial) == record
    assert record == CertRecord.for_certificate(cert, profile="server", now=now, requester="test", name="web")
    assert (record.common_name, record.groups, record.sans) == ("web", ("ops",), ("DNS:web.svc", "IP:127.0.0.1"))
    assert record.issuer == root_ca.subject_text and record.not_after == cert.not_valid_after_utc
    assert record.fingerprint_sha256 == cert.fingerprint(hashes.SHA256()).hex()
    with pytest.raises(StoreError, match="already in the inventory"):
        inventory.record(cert, profile="server", now=now)
    assert inventory.count() == 1


def test_revocation_and_lookups(
    inventory: Inventory,
    root_ca: CertificateAuthority,
    session_keys: Callable[[KeyType], PrivateKey],
    now: dt.datetime,
) -> None:
    key = session_keys(KeyType.EC_P256).public_key()
    records = [
        inventory.record(
            root_ca.issue(subject=user_subject(u), public_key=key, profile=CLIENT, now=now),
            profile="client",
            now=now,
        )
        for u in ("a", "b", "c")
    ]
    colon_serial = ":".join(records[0].serial[i : i + 2] for i in range(0, len(records[0].serial), 2)).upper()
    revoked = inventory.revoke(colon_serial, reason="keyCompromise", now=now)
    assert revoked.status is CertStatus.REVOKED and revoked.revocation_reason == "keyCompromise"
    with pytest.raises(StoreError, match="unknown revocation reason 'bored'"):
        inventory.revoke(records[1].serial, reason="bored", now=now)
    with pytest.raises(NotFoundError):
        inventory.revoke("abc", reason="unspecified", now=now)
    inventory.mark_superseded([records[1].serial, records[0].serial])
    assert [r.serial for r in inventory.revoked_for("ca")] == [records[0].serial]
    assert inventory.count(status=CertStatus.SUPERSEDED) == 1
    assert inventory.count(status=CertStatus.VALID) == 1
