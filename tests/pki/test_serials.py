"""Serial numbers: random, positive, at least 128 bits, never repeated."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pki.builder import SERIAL_BITS, new_serial
from pki.ca import CertificateAuthority
from pki.keys import KeyType, PrivateKey
from pki.names import user_subject
from pki.profiles import CLIENT

ISSUANCES = 10_000


def test_ten_thousand_issuances_have_distinct_serials(
    root_ca: CertificateAuthority, session_keys: Callable[[KeyType], PrivateKey], now: dt.datetime
) -> None:
    public_key = session_keys(KeyType.EC_P256).public_key()  # one leaf key: signing is what we exercise
    subject = user_subject("alice", ("dev",))
    serials = {
        root_ca.issue(subject=subject, public_key=public_key, profile=CLIENT, now=now).serial_number
        for _ in range(ISSUANCES)
    }
    assert len(serials) == ISSUANCES
    assert all(s.bit_length() == SERIAL_BITS for s in serials)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    count=st.integers(min_value=1, max_value=50),
    user=st.from_regex(r"[a-z][a-z0-9]{0,20}", fullmatch=True),
    hours=st.integers(min_value=1, max_value=24 * 365),
)
def test_every_issued_serial_is_positive_long_and_unique(
    count: int,
    user: str,
    hours: int,
    root_ca: CertificateAuthority,
    session_keys: Callable[[KeyType], PrivateKey],
    now: dt.datetime,
) -> None:
    public_key = session_keys(KeyType.EC_P256).public_key()
    certs = [
        root_ca.issue(
            subject=user_subject(user), public_key=public_key, profile=CLIENT, now=now, ttl=dt.timedelta(hours=hours)
        )
        for _ in range(count)
    ]
    serials = [c.serial_number for c in certs]
    assert len(set(serials)) == count
    assert all(0 < s < 2**159 and s.bit_length() >= 128 for s in serials)


def test_new_serial_fits_in_twenty_octets() -> None:
    # DER INTEGER of a positive 159-bit number: exactly 20 octets, no leading zero (RFC 5280 4.1.2.2).
    for _ in range(1000):
        serial = new_serial()
        assert serial.bit_length() == SERIAL_BITS and len(serial.to_bytes(20, "big", signed=True)) == 20
