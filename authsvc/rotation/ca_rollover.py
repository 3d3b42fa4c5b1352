"""`authsvc ca rotate --phase prepare|switch|finish`: a CA rollover on a home (phases: pki/rotation/rollover.py).

For CA `ca` (kubeadm's names: `etcd/ca` → pki/etcd/ca-next.key, ...):

    pki/<ca>.crt               the trust bundle: [old] → prepare [old, new] → switch [new, old] → finish [new]
    pki/<ca>.key               the key that signs: the old one until switch, the new one after
    pki/<ca>-next.crt|key      the new CA between prepare and switch
    pki/<ca>-previous.crt|key  the old CA between switch and finish (finish moves it to backups/)
    rollover/<ca>.json         where the rollover stands, written atomically before and after each phase

The bundle is what everything that trusts the CA reads (kube-apiserver's --client-ca-file,
etcd's --trusted-ca-file, granian's --ssl-ca for the webhook client CA), and the kubeconfigs
rotate keeps (kubeadm's, the webhook's) get it as certificate-authority-data. Every step
checks what is already done, so running an interrupted phase again finishes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from sqlalchemy import select

from authsvc.errors import UsageError
from authsvc.home.keys_at_rest import ca_key_encrypted
from authsvc.home.opened import Home
from authsvc.kubeconfig.documents import current_entries, decoded
from authsvc.rotation.executor import Executor, RotationReport
from authsvc.rotation.facts import (
    CA_PROFILES,
    FACT_COLUMNS,
    ca_names,
    cert_target,
    kubeconfig_targets,
    read_kubeconfig,
    read_rollover,
    rollover_path,
    rotation_policy,
    stream_facts,
)
from authsvc.rotation.files import Backups, read_certificate, sync_kubeconfig
from authsvc.rotation.lock import rotation_lock
from pki.errors import CAError, NotFoundError, RotationError
from pki.inventory import CERTIFICATES, CertStatus, serial_hex
from pki.issued_by import issued_by
from pki.keys import PrivateKey, generate_private_key, key_type_of, keys_match
from pki.kubeadm.certlist import ca_spec
from pki.profiles import ROOT_CA
from pki.rotation.plan import RenewCertificate
from pki.rotation.rollover import (
    DONE,
    RUNNING,
    Dependent,
    Phase,
    RolloverState,
    State,
    bundle,
    check_finish,
    check_phase,
    check_switch_time,
    fingerprint,
    is_self_signed,
    successor_ca,
)
from pki.store import (
    CERT_MODE,
    KEY_MODE,
    PendingFile,
    atomic_write,
    atomic_write_many,
    certs_to_pem,
    load_certificates,
)

NEXT_STEP = {
    State.PREPARED: "copy the new pki/{ca}.crt wherever it is trusted, reload those servers, then --phase switch",
    State.SWITCHED: "restart the servers that use the re-issued certificates; --phase finish once nothing "
    "valid depends on the old CA",
    State.FINISHED: "done: the old CA is gone from the bundle (its key is kept under backups/)",
}


@dataclass
class PhaseResult:
    ca: str
    phase: Phase
    state: RolloverState
    resumed: bool
    messages: list[str] = field(default_factory=list)

    @property
    def next_step(self) -> str:
        return NEXT_STEP.get(self.state.state, "").format(ca=self.ca)


def canonical_ca(home: Home, name: str) -> str:
    """A CA of the home by file base name ("etcd/ca") or kubeadm's name ("etcd-ca")."""
    known = ca_names(home)
    if name in known:
        return name
    try:
        base = ca_spec(name).base_name
    except ValueError:
        base = name
    if base not in known:
        raise UsageError(f"unknown CA {name!r}: one of {', '.join(known)} (authsvc ca list)")
    return base


def ca_rotate(home: Home, phase: Phase, ca: str = "ca", *, force: bool = False) -> PhaseResult:
    """Run one phase under the rotation lock; RotationError when it is out of order (says why)."""
    name = canonical_ca(home, ca)
    with rotation_lock(home.root, home.stores.engine, home.secrets.database_url, home.settings.rotation.lock_timeout):
        rollover = Rollover(home, name)
        current = read_rollover(home, name)
        resumed = check_phase(phase, current)
        if phase is Phase.PREPARE:
            state = rollover.prepare(current if resumed else None)
        elif phase is Phase.SWITCH:
            assert current is not None
            if not (resumed or force):
                check_switch_time(current, rollover.now, home.settings.rotation.ca_publish_before_switch)
            state = rollover.switch(current)
        else:
            assert current is not None
            state = rollover.finish(current, check=not resumed)
    return PhaseResult(name, phase, state, resumed, rollover.messages)


class Rollover:
    def __init__(self, home: Home, ca: str) -> None:
        self.home, self.ca, self.now = home, ca, home.clock()
        self.backups = Backups(home, self.now)
        self.messages: list[str] = []
        self.cert, self.key = home.layout.cert_path(ca), home.layout.key_path(ca)
        self.next_cert, self.next_key = home.layout.cert_path(f"{ca}-next"), home.layout.key_path(f"{ca}-next")
        self.prev_cert, self.prev_key = home.layout.cert_path(f"{ca}-previous"), home.layout.key_path(f"{ca}-previous")

    # --- the phases ------------------------------------------------------------------------

    def prepare(self, resumed: RolloverState | None) -> RolloverState:
        if resumed is None:
            old = self.home.stores.load_ca(self.ca).certificate  # checks the key matches and it is a CA
            if not is_self_signed(old):
                successor_ca(old, generate_private_key(), now=self.now)  # raises the CAError naming why
            state = RolloverState(self.ca, State.PREPARING, fingerprint(old), serial_hex(old.serial_number))
            state = self._save(state.moved(State.PREPARING, started_at=self.now))
        else:
            state = resumed
        old = self._find(state.old_fingerprint, [self.cert])
        new = self._next_ca(old)
        state = self._save(
            state.moved(State.PREPARING, new_fingerprint=fingerprint(new), new_serial=serial_hex(new.serial_number))
        )
        self._record_ca(new)
        self._publish(bundle(State.PREPARED, old, new))
        self._sync_kubeconfigs()
        return self._save(state.moved(State.PREPARED, prepared_at=self.now))

    def switch(self, state: RolloverState) -> RolloverState:
        if state.state is not State.SWITCHING:
            state = self._save(state.moved(State.SWITCHING, switch_started_at=self.now))
        assert state.new_fingerprint is not None
        old = self._find(state.old_fingerprint, [self.prev_cert, self.cert])
        new = self._find(state.new_fingerprint, [self.cert, self.next_cert])
        new_key = self._key_for(new, [self.key, self.next_key])
        if not self.prev_key.exists():
            old_key = self._key_for(old, [self.key])
            self._write_pair(self.prev_cert, self.prev_key, old, old_key)
        if not keys_match(self._load_key(self.key), new.public_key()):  # type: ignore[arg-type]
            self.backups.keep([self.key])
            atomic_write(self.key, self._key_pem(new_key), KEY_MODE)
            self.messages.append(f"pki/{self.ca}.key now holds the new CA's key")
        self._publish(bundle(State.SWITCHED, old, new))
        self._reissue()
        self._sync_kubeconfigs()
        self._refresh_crl()
        for path in (self.next_cert, self.next_key):
            path.unlink(missing_ok=True)  # the same key and certificate are pki/<ca>.key and the bundle's first
        return self._save(state.moved(State.SWITCHED, switched_at=self.now))

    def finish(self, state: RolloverState, *, check: bool) -> RolloverState:
        new_fingerprint = state.new_fingerprint
        assert new_fingerprint is not None
        if check:
            check_finish(state, self._dependents(state), self.now)
            state = self._save(state.moved(State.FINISHING))
        new = self._find(new_fingerprint, [self.cert])
        self._publish(bundle(State.FINISHED, None, new))
        self._sync_kubeconfigs()
        if self.prev_key.exists() or self.prev_cert.exists():
            self.backups.keep([self.prev_cert, self.prev_key])
            for path in (self.prev_cert, self.prev_key):
                path.unlink(missing_ok=True)
            self.messages.append(f"moved the old CA's key to {self.backups.root.relative_to(self.home.root)}/")
        self.home.stores.inventory.mark_superseded([state.old_serial])
        return self._save(state.moved(State.FINISHED, finished_at=self.now))

    # --- steps -----------------------------------------------------------------------------

    def _save(self, state: RolloverState) -> RolloverState:
        atomic_write(rollover_path(self.home, self.ca), state.to_json(), 0o600)
        return state

    def _find(self, wanted: str, files: list[Path]) -> x509.Certificate:
        for path in files:
            if path.is_file():
                for cert in load_certificates(path):
                    if fingerprint(cert) == wanted:
                        return cert
        shown = ", ".join(str(p.relative_to(self.home.root)) for p in files)
        raise CAError(
            f"CA {self.ca}: no certificate with fingerprint {wanted[:16]}... in {shown}: restore it from backups/"
        )

    def _load_key(self, path: Path) -> PrivateKey:
        return self.home.secrets.load_private_key(path, what=f"CA {self.ca} key", encrypt=self._encrypted)

    @property
    def _encrypted(self) -> bool:
        return ca_key_encrypted(self.home.settings, self.ca)

    def _key_pem(self, key: PrivateKey) -> bytes:
        return self.home.secrets.key_pem(key, encrypt=self._encrypted)

    def _key_for(self, cert: x509.Certificate, files: list[Path]) -> PrivateKey:
        for path in files:
            if path.is_file():
                key = self._load_key(path)
                if keys_match(key, cert.public_key()):  # type: ignore[arg-type]
                    return key
        raise CAError(
            f"CA {self.ca}: the key of {cert.subject.rfc4514_string()} is in none of {', '.join(map(str, files))}"
        )

    def _next_ca(self, old: x509.Certificate) -> x509.Certificate:
        """The prepared CA: pki/<ca>-next.* when an interrupted prepare left a usable pair, else a new one."""
        if self.next_cert.is_file() and self.next_key.is_file():
            cert = load_certificates(self.next_cert)[0]
            if cert.subject == old.subject and keys_match(self._load_key(self.next_key), cert.public_key()):  # type: ignore[arg-type]
                return cert
        key = generate_private_key(key_type_of(old.public_key()))  # type: ignore[arg-type]
        new = successor_ca(old, key, now=self.now)
        self._write_pair(self.next_cert, self.next_key, new, key)
        self.messages.append(
            f"made the new CA pki/{self.ca}-next.crt (expires {new.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})"
        )
        return new

    def _write_pair(self, cert_path: Path, key_path: Path, cert: x509.Certificate, key: PrivateKey) -> None:
        atomic_write_many(
            [
                PendingFile(key_path, self._key_pem(key), KEY_MODE),  # the key first
                PendingFile(cert_path, certs_to_pem([cert]), CERT_MODE),
            ]
        )

    def _record_ca(self, cert: x509.Certificate) -> None:
        try:
            self.home.stores.inventory.get(serial_hex(cert.serial_number))
        except NotFoundError:
            self.home.stores.inventory.record(
                cert, profile=ROOT_CA.name, now=self.now, requester="ca-rotate", name=self.ca, ca_name=self.ca
            )

    def _publish(self, certs: list[x509.Certificate]) -> None:
        data = certs_to_pem(certs)
        if self.cert.read_bytes() == data:
            return
        self.backups.keep([self.cert])
        atomic_write(self.cert, data, CERT_MODE)
        self.messages.append(f"pki/{self.ca}.crt now holds {len(certs)} CA certificate{'s' if len(certs) > 1 else ''}")

    def _sync_kubeconfigs(self) -> None:
        """Every kubeconfig rotate keeps: those trusting this CA get the bundle, and the webhook's
        gets its re-issued client certificate (its CA may be the one rolling over)."""
        for target in kubeconfig_targets(self.home):
            if sync_kubeconfig(self.home, target.path, self.backups) != "already current":
                self.messages.append(f"{target.path.name}: brought up to date with pki/")

    def _reissue(self) -> None:
        """Every automatic leaf of this CA, from the new CA (those already re-issued are skipped)."""
        query = (
            select(*FACT_COLUMNS)
            .where(CERTIFICATES.c.status == CertStatus.VALID.value, CERTIFICATES.c.auto_renew.is_(True))
            .where(CERTIFICATES.c.ca_name == self.ca, CERTIFICATES.c.profile.not_in(CA_PROFILES))
        )
        report = RotationReport(self.now)
        executor = Executor(self.home, self.now, rotation_policy(self.home.settings), report)
        try:
            for fact in stream_facts(self.home.stores.engine, query):
                executor.submit(RenewCertificate(fact.name, fact.ca, fact.serial, fact.not_after,
                                                 "re-issued from the new CA", fact.profile, reissue=True))  # fmt: skip
            executor.flush()
        finally:
            executor.audit.flush()
        failed = [r for r in report.results if r.status == "failed"]
        if failed:
            shown = "; ".join(f"{r.action.target}: {r.detail}" for r in failed[:3])
            raise RotationError(
                f"{len(failed)} leaves could not be re-issued ({shown}): fix that and run --phase switch again"
            )
        renewed = sum(1 for r in report.results if r.status == "done" and r.detail.startswith("serial"))
        self.messages.append(f"re-issued {renewed} automatic certificates from the new CA")

    def _refresh_crl(self) -> None:
        from authsvc.certs.crl import write_crl

        crl = self.home.root / "pki" / f"{self.ca}.crl"
        if crl.is_file():
            self.backups.keep([crl])
            write_crl(self.home, self.ca)

    def _dependents(self, state: RolloverState) -> list[Dependent]:
        """Valid certificates the old CA signed: issued before the switch, or a file still from it."""
        started = state.switch_started_at or self.now
        query = (
            select(CERTIFICATES.c.name, CERTIFICATES.c.common_name, CERTIFICATES.c.serial, CERTIFICATES.c.not_after)
            .where(CERTIFICATES.c.status == CertStatus.VALID.value, CERTIFICATES.c.ca_name == self.ca)
            .where(CERTIFICATES.c.profile.not_in(CA_PROFILES), CERTIFICATES.c.issued_at < started)
            .where(CERTIFICATES.c.not_after > self.now)
        )
        with self.home.stores.engine.connect() as connection:
            found = [Dependent(r.name or r.common_name, r.serial, r.not_after) for r in connection.execute(query)]
        old = self._find(state.old_fingerprint, [self.prev_cert, self.cert])
        return found + self._files_signed_by(old)

    def _files_signed_by(self, old: x509.Certificate) -> list[Dependent]:
        query = select(CERTIFICATES.c.name).where(
            CERTIFICATES.c.status == CertStatus.VALID.value,
            CERTIFICATES.c.auto_renew.is_(True),
            CERTIFICATES.c.ca_name == self.ca,
        )
        with self.home.stores.engine.connect() as connection:
            names = [n for n in connection.execute(query).scalars() if n]
        certs = [
            (name, read_certificate(t))
            for name, t in ((n, cert_target(self.home, n)) for n in names)
            if t.path.is_file()
        ]
        for target in kubeconfig_targets(self.home):
            if target.client_file:  # the webhook kubeconfig's copy of its client certificate
                _, user = current_entries(read_kubeconfig(target.path), target.path)
                data = decoded(user, "client-certificate-data")
                if data:
                    certs.append((str(target.path.name), x509.load_pem_x509_certificate(data)))
        return [
            Dependent(f"{name} (file)", serial_hex(cert.serial_number), cert.not_valid_after_utc)
            for name, cert in certs
            if issued_by(cert, old) and cert.not_valid_after_utc > self.now
        ]


def ca_list(home: Home) -> list[dict[str, object]]:
    """`ca list`: every CA with its expiry, whether its key is here, and where a rollover stands."""
    now, rows = home.clock(), []
    for name in ca_names(home):
        certs = load_certificates(home.layout.cert_path(name))
        state = read_rollover(home, name)
        phase = state.state if state else None
        rows.append(
            {
                "name": name,
                "subject": certs[0].subject.rfc4514_string(),
                "notAfter": certs[0].not_valid_after_utc.isoformat(),
                "daysLeft": (certs[0].not_valid_after_utc - now).days,
                "key": "yes" if home.layout.key_path(name).is_file() else "external",
                "bundle": len(certs),
                "rollover": phase.value if phase else "-",
                "next": _next_command(phase, name),
            }
        )
    return rows


def _next_command(phase: State | None, ca: str) -> str:
    running = {state: p for p, state in RUNNING.items()}
    if phase in running:
        return f"ca rotate --phase {running[phase].value} --ca {ca} (interrupted)"
    following = {DONE[Phase.PREPARE]: Phase.SWITCH, DONE[Phase.SWITCH]: Phase.FINISH}
    if phase in following:
        return f"ca rotate --phase {following[phase].value} --ca {ca}"
    return "-"
