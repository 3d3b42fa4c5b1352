"""What the lean signing path must keep: tokens exactly as jwt.encode makes them, jti a canonical
random UUID, and every issued token recorded in the inventory as signed (batched, any order)."""

from __future__ import annotations

import datetime as dt
import uuid

import jwt

from authsvc.home.opened import Home
from pki.keys import load_private_key_pem
from pki.tokens import SigningKeyStore, TokenService
from pki.tokens.ledger import TokenLedger
from pki.tokens.service import new_jti


def test_a_token_is_what_jwt_encode_makes_of_its_claims(token_home: Home) -> None:
    """RS256 signatures are deterministic: the whole token must be PyJWT's own encoding."""
    service = token_home.stores.token_service
    key = load_private_key_pem(token_home.layout.key_path("sa").read_bytes())
    kid = service.key_records()[0].kid
    for issued in (
        service.issue_service_account_token("ci", "deployer", uid="u-1", pod=("runner-0", "p-1")),
        service.issue_service_account_token("ci", "deployer", uid="u-1", legacy=True),
        service.issue_user_token("alice", ["dev"], uid="1001", extra={"team": ["é"]}),
    ):
        assert issued.token == jwt.encode(issued.claims, key, algorithm="RS256", headers={"kid": kid})
        assert issued.expires_at == dt.datetime.fromtimestamp(issued.claims["exp"], dt.UTC)


def test_jti_is_a_canonical_time_ordered_uuid() -> None:
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    times = [start + dt.timedelta(milliseconds=n // 10) for n in range(5000)]  # ten per millisecond
    jtis = [new_jti(t) for t in times]
    assert len(set(jtis)) == len(jtis)
    for jti, when in zip(jtis, times, strict=True):
        parsed = uuid.UUID(jti)
        assert (str(parsed), parsed.version, parsed.variant) == (jti, 7, uuid.RFC_4122)
        assert parsed.int >> 80 == int(when.timestamp() * 1000)  # RFC 9562: Unix milliseconds first
    # Later tokens sort after earlier ones (the inventory index grows at its end) ...
    assert [j for n, j in enumerate(jtis) if n % 10 == 0] == sorted(j for n, j in enumerate(jtis) if n % 10 == 0)
    # ... and all 74 random bits vary: every hex digit of rand_a and rand_b is seen.
    for position in (15, 16, 17, 20, 25, 35):
        assert len({jti[position] for jti in jtis}) == 16


def test_every_issued_token_reaches_the_inventory_as_signed(token_home: Home) -> None:
    store = SigningKeyStore(token_home.stores.engine)
    config = token_home.stores.token_service.config
    ledger = TokenLedger(store, batch=7, delay=3600)  # batches of 7, written as they fill (no timer)
    service = TokenService(store, token_home.stores.signing_key_files, config, token_home.clock, ledger=ledger)
    before = {t.jti for t in store.tokens()}
    issued = [service.issue_user_token(f"user{i}", ["dev"], source="ldap") for i in range(10)]
    issued += [service.issue_service_account_token("ci", f"sa{i}", uid=f"u-{i}", audiences=["vault"]) for i in range(9)]
    issued += [service.issue_service_account_token("ci", "old", uid="u-x", legacy=True)]
    written = {t.jti for t in store.tokens()} - before
    assert len(written) == 1 + 7 + 7 and written <= {t.jti for t in issued}  # 1 at once, then full batches
    kid = service.key_records()[0].kid
    recorded = {t.jti: t for t in service.tokens() if t.jti not in before}  # flushes the rest
    assert set(recorded) == {t.jti for t in issued}
    for token in issued:
        record, claims = recorded[token.jti], token.claims
        assert (record.kid, record.subject) == (kid, claims["sub"])
        assert (record.iat, record.exp) == (claims["iat"], claims["exp"])
        assert record.audiences == tuple(claims.get("aud", ()))
        assert record.expires_at == token.expires_at
    kinds = {(r.kind, r.source) for r in recorded.values()}
    assert kinds == {("user", "ldap"), ("serviceaccount", ""), ("legacy-serviceaccount", "")}
