"""Two simulated years of daily `authsvc rotate` on one home, with a CA rollover in the middle.

After every run: every automatic certificate verifies against its CA's bundle (cryptography's
verifier, at the simulated time), and every token issued on any day verifies until its own exp
(the signature against pki/sa.pub, as kube-apiserver checks it, and through the TokenService).
Through the rollover, a person's certificate from the old CA and one from the new CA both
verify during the overlap; after finish, only the new one would.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pytest
from cryptography import x509
from cryptography.x509.verification import VerificationError

from authsvc.home.opened import Home
from authsvc.rotation.ca_rollover import ca_rotate
from authsvc.rotation.executor import rotate
from pki.errors import RotationError
from pki.profiles import CLIENT
from pki.rotation.rollover import Phase
from tests.rotate.support import DAY, T0, trust_bundle, verify, verify_all_automatic, verify_with_sa_pub

DAYS = 730
PREPARE_DAY, SWITCH_DAY, FINISH_DAY = 300, 302, 304  # alice's 2-day certificate: day 301 to 303


def person_cert(home: Home, user: str) -> x509.Certificate:
    """A person's client certificate from the CA that signs now: two days, not renewed by rotate."""
    return (
        home.stores.issuer("ca").create(user, profile=CLIENT, groups=["dev"], ttl=2 * DAY, requester="test").certificate
    )


def test_two_years_of_daily_rotation_keep_everything_valid(rhome: Home) -> None:
    home, clock = rhome, rhome.clock
    assert hasattr(clock, "advance")
    tokens: list[tuple[str, dt.datetime]] = []
    done: Counter[str] = Counter()
    people: dict[str, x509.Certificate] = {}
    started = time.process_time()  # CPU time: other tests share the machine's two cores
    for day in range(DAYS):
        now = clock()
        people.update(_rollover_step(home, day, people))
        issued = home.stores.token_service.issue_service_account_token("ci", f"deployer-{day % 7}", uid="u-1")
        tokens.append((issued.token, issued.expires_at))
        report = rotate(home)
        assert report.exit_code == 0, (day, [r.as_dict() for r in report.results if r.status != "done"])
        done.update(r.action.kind for r in report.results if r.status == "done")
        assert verify_all_automatic(home, now) >= 14
        live = [t for t, exp in tokens if exp > now]
        home.stores.token_service.invalidate()
        for token in live:
            assert home.stores.token_service.verify(token).jti
            verify_with_sa_pub(home, token, now)
        tokens = [(t, exp) for t, exp in tokens if exp > now]
        clock.advance(DAY)  # type: ignore[attr-defined]
    elapsed = time.process_time() - started
    # Each of the 14 automatic certificates renewed by rotate at least once (the 6 outside the cluster CA
    # twice; the 8 the switch re-issued on day 302 once more since); a key rotation (3 phases) every 90 days.
    assert done["renew"] >= 14 + 6 and done["signing-key"] >= 3 * 7, done
    assert elapsed < 60, f"two simulated years took {elapsed:.0f}s of CPU"


def _rollover_step(home: Home, day: int, people: dict[str, x509.Certificate]) -> dict[str, x509.Certificate]:
    """The CA rollover of the cluster CA, with a person's certificate from each side of the switch."""
    now = home.clock()
    if day == PREPARE_DAY:
        ca_rotate(home, Phase.PREPARE, "ca")
        assert len(trust_bundle(home, "ca")) == 2
    if day == PREPARE_DAY + 1:
        return {"old": person_cert(home, "alice")}  # prepared, not switched: the old CA signs
    if day == SWITCH_DAY:
        ca_rotate(home, Phase.SWITCH, "ca")
        new = person_cert(home, "bob")
        bundle = trust_bundle(home, "ca")
        for cert in (people["old"], new):  # the overlap: both sides verify against [new, old]
            verify(cert, bundle, now)
        with pytest.raises(VerificationError):
            verify(people["old"], bundle[:1], now)  # the twin: not against the new CA alone
        with pytest.raises(RotationError, match=r"alice.*Finish after"):
            ca_rotate(home, Phase.FINISH, "ca")  # alice's certificate from the old CA is still valid
        return {"new": new}
    if day == FINISH_DAY:
        ca_rotate(home, Phase.FINISH, "ca")
        assert len(trust_bundle(home, "ca")) == 1
        verify(people["new"], trust_bundle(home, "ca"), now - DAY)
    return {}


def test_the_simulation_starts_where_init_left_the_home(rhome: Home) -> None:
    """The failing twin of the run above: the same check finds an expired tree a year later
    when nothing rotates."""
    assert verify_all_automatic(rhome, T0) >= 14
    with pytest.raises(AssertionError, match="does not verify"):
        verify_all_automatic(rhome, T0 + 366 * DAY)
