"""CA rollover in three phases, as data and pure checks (the files are authsvc/rotation/ca_rollover.py's).

    prepare  a new CA (same subject, new key) is made; the trust bundle pki/<ca>.crt becomes
             [old, new]: everything that trusts the CA learns the new one while the old one
             still signs.
    switch   the new CA signs (pki/<ca>.key, first in the bundle: [new, old]); the automatic
             leaves are re-issued from it. Leaves of either CA verify against the bundle.
    finish   once nothing valid was signed by the old CA, the bundle is [new] and the old key
             leaves pki/ (kept in backups/).

Each phase is written down before it starts (`preparing`, `switching`, `finishing`) and when it
is done (`prepared`, `switched`, `finished`), so an interrupted phase is resumed by running it
again, and a phase asked for out of order is refused with the reason and what comes first.
The new CA keeps the old one's subject, extensions and lifetime: verifiers pick between the two
by the leaves' authority key identifier (kubeadm's CN "kubernetes" stays what it is).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from pki.builder import CLOCK_SKEW, new_serial
from pki.errors import CAError, RotationError
from pki.keys import PrivateKey, signature_hash


class Phase(StrEnum):
    PREPARE = "prepare"
    SWITCH = "switch"
    FINISH = "finish"


class State(StrEnum):
    PREPARING = "preparing"
    PREPARED = "prepared"
    SWITCHING = "switching"
    SWITCHED = "switched"
    FINISHING = "finishing"
    FINISHED = "finished"


# The state a phase leaves while it runs, and when it is done.
RUNNING = {Phase.PREPARE: State.PREPARING, Phase.SWITCH: State.SWITCHING, Phase.FINISH: State.FINISHING}
DONE = {Phase.PREPARE: State.PREPARED, Phase.SWITCH: State.SWITCHED, Phase.FINISH: State.FINISHED}
# The state each phase starts from (None: no rollover yet, or the last one finished).
STARTS_FROM: dict[Phase, State | None] = {
    Phase.PREPARE: None,
    Phase.SWITCH: State.PREPARED,
    Phase.FINISH: State.SWITCHED,
}
INTERRUPTED = frozenset(RUNNING.values())


def _iso(when: dt.datetime | None) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else "?"


@dataclass(frozen=True, slots=True)
class RolloverState:
    """Where the rollover of one CA stands (pki/<ca> names; fingerprints are SHA-256 of the DER)."""

    ca: str
    state: State
    old_fingerprint: str
    old_serial: str
    new_fingerprint: str | None = None
    new_serial: str | None = None
    started_at: dt.datetime | None = None
    prepared_at: dt.datetime | None = None
    switch_started_at: dt.datetime | None = None
    switched_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    def moved(self, state: State, **changes: Any) -> RolloverState:
        return dataclasses.replace(self, state=state, **changes)

    def to_json(self) -> bytes:
        data = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in dataclasses.asdict(self).items()}
        return json.dumps(data, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, text: bytes, *, source: str) -> RolloverState:
        try:
            data = json.loads(text)
            times = {f.name for f in dataclasses.fields(cls) if f.name.endswith("_at")}
            values: dict[str, Any] = {
                k: (dt.datetime.fromisoformat(v) if k in times and v else v) for k, v in data.items()
            }
            values["state"] = State(values["state"])
            return cls(**values)
        except (ValueError, KeyError, TypeError) as e:
            raise RotationError(f"{source} is not a rollover state file ({e}): restore it from backups/") from e


def check_phase(phase: Phase, current: RolloverState | None) -> bool:
    """Raise RotationError when `phase` may not run now; True when it resumes an interrupted run."""
    state = current.state if current is not None else None
    if state is RUNNING[phase]:
        return True
    if state in INTERRUPTED:
        assert current is not None
        running = next(p for p, s in RUNNING.items() if s is state)
        raise RotationError(
            f"the {running.value} phase of CA {current.ca}'s rollover was interrupted: "
            f"run `authsvc ca rotate --phase {running.value}` again to finish it first"
        )
    expected = STARTS_FROM[phase]
    if state is expected or (expected is None and state is State.FINISHED):
        return False
    raise RotationError(_out_of_order(phase, current))


def _out_of_order(phase: Phase, current: RolloverState | None) -> str:
    if current is None or current.state is State.FINISHED:
        return f"no rollover of this CA is in progress: start with --phase prepare, not {phase.value}"
    ca = current.ca
    if current.state is State.PREPARED:
        return (
            f"CA {ca} was prepared at {_iso(current.prepared_at)}: the next phase is --phase switch "
            "(after every API server, etcd and kubeconfig trusts the new bundle)"
        )
    return (
        f"CA {ca} switched to the new CA at {_iso(current.switched_at)}: the next phase is --phase finish "
        "(once nothing valid depends on the old CA)"
    )


def check_switch_time(current: RolloverState, now: dt.datetime, wait: dt.timedelta) -> None:
    """The new CA must have been trusted for `wait` before it signs (its bundle must reach every peer)."""
    earliest = (current.prepared_at or now) + wait
    if now < earliest:
        raise RotationError(
            f"CA {current.ca}'s new bundle was published at {_iso(current.prepared_at)}; peers may not trust it "
            f"before they reload it: switch after {_iso(earliest)} (rotation.ca_publish_before_switch), or --force "
            "once every API server, etcd and client has the new pki/" + current.ca + ".crt"
        )


@dataclass(frozen=True, slots=True)
class Dependent:
    """A valid certificate still signed by the old CA."""

    name: str
    serial: str
    not_after: dt.datetime


def check_finish(current: RolloverState, dependents: Sequence[Dependent], now: dt.datetime) -> None:
    """Refuse while anything valid was signed by the old CA, naming it and when it stops mattering."""
    live = [d for d in dependents if d.not_after > now]
    if not live:
        return
    shown = ", ".join(f"{d.name} (serial {d.serial}, expires {_iso(d.not_after)})" for d in live[:3])
    more = f" and {len(live) - 3} more" if len(live) > 3 else ""
    last = max(d.not_after for d in live)
    raise RotationError(
        f"{len(live)} valid certificate{'s' if len(live) > 1 else ''} signed by CA {current.ca}'s old key: "
        f"{shown}{more}. "
        f"Finish after {_iso(last)}, or re-issue them from the new CA (or revoke them) first"
    )


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def successor_ca(old: x509.Certificate, key: PrivateKey, *, now: dt.datetime) -> x509.Certificate:
    """A root CA for `key` with `old`'s subject, extensions and lifetime, valid from now.

    Raises CAError when `old` is not a self-signed root (an intermediate is re-issued by its parent).
    """
    if not is_self_signed(old):
        raise CAError(
            f"{old.subject.rfc4514_string()} is an intermediate CA (issued by {old.issuer.rfc4514_string()}): "
            "ca rotate rolls over roots; have its parent issue a new one"
        )
    lifetime = old.not_valid_after_utc - old.not_valid_before_utc - CLOCK_SKEW
    builder = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.subject)
        .public_key(key.public_key())
        .serial_number(new_serial())
        .not_valid_before((now - CLOCK_SKEW).replace(microsecond=0))
        .not_valid_after((now + lifetime).replace(microsecond=0))
    )
    for extension in old.extensions:
        if isinstance(extension.value, x509.AuthorityKeyIdentifier | x509.SubjectKeyIdentifier):
            continue
        builder = builder.add_extension(extension.value, critical=extension.critical)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return builder.sign(key, signature_hash(key))  # type: ignore[arg-type]


def bundle(state: State | None, old: x509.Certificate | None, new: x509.Certificate | None) -> list[x509.Certificate]:
    """What pki/<ca>.crt holds in `state`: the signing CA first (Home.load_ca pairs it with the key)."""
    if state in (State.PREPARING, State.PREPARED):
        return [c for c in (old, new) if c is not None]
    if state in (State.SWITCHING, State.SWITCHED):
        return [c for c in (new, old) if c is not None]
    return [c for c in (new or old,) if c is not None]  # finishing, finished, or no rollover
