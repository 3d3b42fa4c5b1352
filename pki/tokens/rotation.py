"""Phased rotation of the token signing key: prepare → activate → retire, in that order.

- prepare: a new key is generated (pki/sa-next.key) and published (JWKS, sa.pub); nothing
  signs with it yet, so every relying party can learn it first.
- activate: at least `publish_before_activate` after prepare (the JWKS cache lifetime), the
  prepared key becomes pki/sa.key and signs; the old key is retiring, still published.
- retire: once the last token the old key signed has expired (and at least
  `retire_min_wait` after activate, for tokens signed elsewhere with the same key), the old
  key leaves JWKS and sa.pub; tokens it signed no longer verify.

Each phase checks the state first and refuses with the reason and what must come first.
The checks are pure functions of the key records and `now`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from pki.errors import RotationError
from pki.tokens.kid import kid_for, new_signing_key
from pki.tokens.signing_keys import PUBLISHED_STATES, KeyState, SigningKeyRecord

if TYPE_CHECKING:
    from pki.tokens.service import TokenService


class Phase(StrEnum):
    PREPARE = "prepare"
    ACTIVATE = "activate"
    RETIRE = "retire"


@dataclass(frozen=True, slots=True)
class RotationResult:
    phase: Phase
    kid: str
    message: str


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _one(keys: Sequence[SigningKeyRecord], state: KeyState) -> SigningKeyRecord | None:
    return next((k for k in keys if k.state is state), None)


def check_prepare(keys: Sequence[SigningKeyRecord]) -> None:
    prepared, retiring = _one(keys, KeyState.NEXT), _one(keys, KeyState.RETIRING)
    if prepared is not None:
        raise RotationError(f"key {prepared.kid} is already prepared: activate it first (--phase activate)")
    if retiring is not None:
        raise RotationError(f"key {retiring.kid} is still retiring: retire it first (--phase retire)")
    if _one(keys, KeyState.ACTIVE) is None:
        raise RotationError("there is no active key to rotate away from: run `authsvc init` first")


def activate_after(prepared: SigningKeyRecord, wait: dt.timedelta) -> dt.datetime:
    return prepared.created_at + wait


def check_activate(
    keys: Sequence[SigningKeyRecord], now: dt.datetime, wait: dt.timedelta, *, force: bool = False
) -> SigningKeyRecord:
    prepared = _one(keys, KeyState.NEXT)
    if prepared is None:
        retiring = _one(keys, KeyState.RETIRING)
        if retiring is not None:
            raise RotationError(f"nothing to activate: key {retiring.kid} is retiring; retire it, then prepare")
        raise RotationError("nothing to activate: prepare a key first (--phase prepare)")
    earliest = activate_after(prepared, wait)
    if now < earliest and not force:
        raise RotationError(
            f"key {prepared.kid} was published at {_iso(prepared.created_at)}; relying parties may cache the "
            f"old JWKS until {_iso(earliest)}: activate after that (or --force)"
        )
    return prepared


def retire_after(
    retiring: SigningKeyRecord, latest_expiry: dt.datetime | None, min_wait: dt.timedelta, leeway: dt.timedelta
) -> tuple[dt.datetime, str]:
    """When `retiring` may go, and why then: the last token it signed must have expired
    (plus leeway), and it must have been retiring for at least `min_wait`."""
    since = retiring.retiring_at or retiring.created_at
    earliest, why = since + min_wait, f"tokens.retire_min_wait after it stopped signing at {_iso(since)}"
    if latest_expiry is not None and latest_expiry + leeway > earliest:
        earliest, why = latest_expiry + leeway, f"the last token it signed expires at {_iso(latest_expiry)}"
    return earliest, why


def check_retire(
    keys: Sequence[SigningKeyRecord], now: dt.datetime, earliest: tuple[dt.datetime, str] | None
) -> SigningKeyRecord:
    retiring = _one(keys, KeyState.RETIRING)
    if retiring is None:
        raise RotationError("nothing to retire: no key is retiring (prepare and activate a new key first)")
    if earliest is not None and now < earliest[0]:
        raise RotationError(
            f"key {retiring.kid} may still verify tokens until {_iso(earliest[0])} ({earliest[1]}): retire after that"
        )
    return retiring


def rotate(service: TokenService, phase: Phase, *, force: bool = False) -> RotationResult:
    service.flush()  # tokens signed in this process count for retire
    if phase is Phase.PREPARE:
        return _prepare(service)
    if phase is Phase.ACTIVATE:
        return _activate(service, force=force)
    return _retire(service)


def _published(service: TokenService) -> list[SigningKeyRecord]:
    return service.store.keys(PUBLISHED_STATES)


def _republish(service: TokenService) -> None:
    service.invalidate()
    service.files.write_bundle(service.public_keys_pem())


def _prepare(service: TokenService) -> RotationResult:
    check_prepare(_published(service))
    key = new_signing_key(service.config.algorithm)
    service.files.write_next(key)
    record = service.key_record(key, KeyState.NEXT, "generated")
    service.store.add_key(record)
    _republish(service)
    wait = activate_after(record, service.config.publish_before_activate)
    return RotationResult(
        Phase.PREPARE,
        record.kid,
        f"prepared key {record.kid}: published in JWKS and {service.files.public_bundle.name}; restart "
        f"kube-apiserver to load it, then activate after {_iso(wait)}",
    )


def _activate(service: TokenService, *, force: bool) -> RotationResult:
    now = service.clock()
    keys = _published(service)
    prepared = check_activate(keys, now, service.config.publish_before_activate, force=force)
    next_file = service.files.next_key
    if not next_file.exists() or kid_for(service.files.load(next_file).public_key()) != prepared.kid:
        raise RotationError(f"{next_file} does not hold the prepared key {prepared.kid}: restore it from a backup")
    active = _one(keys, KeyState.ACTIVE)
    changes = [(prepared.kid, KeyState.NEXT, KeyState.ACTIVE)]
    if active is not None:
        changes.insert(0, (active.kid, KeyState.ACTIVE, KeyState.RETIRING))
    service.store.transition(changes, now)
    service.files.promote_next(now)
    _republish(service)
    old = f"; key {active.kid} is retiring" if active else ""
    return RotationResult(Phase.ACTIVATE, prepared.kid, f"activated key {prepared.kid} (now pki/sa.key){old}")


def _retire(service: TokenService) -> RotationResult:
    now, config = service.clock(), service.config
    keys = _published(service)
    retiring = _one(keys, KeyState.RETIRING)
    earliest = None
    if retiring is not None:
        latest = service.store.latest_expiry(retiring.kid)
        earliest = retire_after(retiring, latest, config.retire_min_wait, config.leeway)
    retired = check_retire(keys, now, earliest)
    service.store.transition([(retired.kid, KeyState.RETIRING, KeyState.RETIRED)], now)
    pruned = service.store.prune(now - config.leeway)
    _republish(service)
    return RotationResult(
        Phase.RETIRE,
        retired.kid,
        f"retired key {retired.kid}: removed from JWKS and {service.files.public_bundle.name} "
        f"(forgot {pruned} expired token records)",
    )


def key_schedule(service: TokenService) -> list[dict[str, object]]:
    """`keys list`: every key with its state and when its next phase may run."""
    config, rows = service.config, []
    for record in service.key_records():
        row: dict[str, object] = record.as_dict()
        row["nextPhaseAfter"] = None
        if record.state is KeyState.NEXT:
            row["nextPhaseAfter"] = _iso(activate_after(record, config.publish_before_activate))
        elif record.state is KeyState.RETIRING:
            latest = service.store.latest_expiry(record.kid)
            row["nextPhaseAfter"] = _iso(retire_after(record, latest, config.retire_min_wait, config.leeway)[0])
        rows.append(row)
    return rows
