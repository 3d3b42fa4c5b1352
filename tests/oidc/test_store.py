"""The provider's store on its own: spent and expired state is deleted an hour after it expired,
at most once a minute per process (injected clock and monotonic time)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Table, func, select

from authsvc.db.tables import OIDC_CODES, OIDC_FAMILIES, OIDC_ISSUES
from authsvc.oidc.models import SignedInUser
from authsvc.oidc.store import CodeRequest, OIDCStore
from pki.clock import FixedClock
from tests.oidc.fixtures import MakeOIDCHome


def _count(store: OIDCStore, table: Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_expired_codes_and_families_are_purged(make_oidc: MakeOIDCHome, clock: FixedClock) -> None:
    home = make_oidc()
    ticks = [0.0]
    store = OIDCStore(
        home.stores.engine,
        clock,
        code_ttl=dt.timedelta(seconds=60),
        refresh_ttl=dt.timedelta(hours=12),
        monotonic=lambda: ticks[0],
    )
    user = SignedInUser("alice", "uid", ("dev",), "users", clock())
    request = CodeRequest("kubectl", "http://127.0.0.1:1/callback", "openid")
    store.save_code("first", request, user)
    code = store.redeem_code("first", "kubectl")
    assert code is not None
    store.record_issue(code, "access", clock() + dt.timedelta(minutes=15), "refresh")
    store.save_code("unused", request, user)
    assert (_count(store, OIDC_CODES), _count(store, OIDC_FAMILIES), _count(store, OIDC_ISSUES)) == (2, 1, 1)

    clock.advance(dt.timedelta(hours=2))  # the codes are long expired, the family is not
    ticks[0] += 61
    store.save_code("later", request, user)
    assert (_count(store, OIDC_CODES), _count(store, OIDC_FAMILIES)) == (1, 1)

    clock.advance(dt.timedelta(hours=12))  # now the family too
    store.save_code("much-later", request, user)  # within the minute: no purge yet
    assert _count(store, OIDC_FAMILIES) == 1
    ticks[0] += 61
    store.save_code("again", request, user)
    assert (_count(store, OIDC_FAMILIES), _count(store, OIDC_ISSUES)) == (0, 0)
    assert store.redeem_code("first", "kubectl") is None  # gone: nothing to revoke, nothing to give
