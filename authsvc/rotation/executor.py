"""`authsvc rotate`: run the plan of pki/rotation/plan.py on a home, under a lock, crash-safely.

Every change is written beside the file it replaces and renamed over it (pki.store), after a
copy of the old file went to backups/<time>/. The inventory is written after the files, so a
run that dies anywhere leaves files that are newer than the inventory at worst; the next run
sees a file whose serial is not the row's, records what the file holds, and carries on from
there. Renewals are done in chunks (one directory sync and one transaction per chunk) and the
rows to renew are streamed, so 10,000 renewals take about the memory of one chunk.

Each action is independent: one that fails is reported (exit 1) and the others still run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine, delete

from authsvc.home.opened import Home
from authsvc.rotation.facts import (
    CA_PROFILES,
    CertTarget,
    cert_target,
    gather_facts,
    rotation_policy,
)
from authsvc.rotation.files import Backups, read_certificate, sync_kubeconfig, write_embedded
from authsvc.rotation.lock import rotation_lock
from authsvc.rotation.report import rotation_event, write_textfile
from authsvc.rotation.runs import RunRecord, next_expiry, record_run
from pki.ca import CertificateAuthority
from pki.errors import NotFoundError
from pki.inventory import CERTIFICATES, CertRecord, SignedNames, insert_records, serial_hex, supersede
from pki.issued_by import issued_by
from pki.kubeadm.expiration import renew_certificate
from pki.rotation.plan import (
    Action,
    AdvanceSigningKey,
    CertFact,
    NeedsHuman,
    PruneBackups,
    PruneInventory,
    RefreshCRL,
    ReissueCertificate,
    RenewCertificate,
    RepairSigningKeys,
    RotationPolicy,
    SyncKubeconfig,
    is_due,
    iso,
    plan_rotation,
)
from pki.store import CERT_MODE, PendingFile, atomic_write_many, read_bytes, remove_backup_runs
from pki.tokens.signing_keys import KeyState, SigningKeyStore

CHUNK = 256  # renewals written per directory sync and per transaction
MAX_LISTED = 1000  # results kept for the report; beyond that only counted (memory stays flat)
Hook = Callable[[Action], None]


@dataclass(frozen=True, slots=True)
class ActionResult:
    action: Action
    status: str  # planned | done | failed | needs-human
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.action.kind,
            "target": self.action.target,
            "status": self.status,
            "reason": self.action.reason,
            "detail": self.detail,
        }


@dataclass
class RotationReport:
    started_at: dt.datetime
    dry_run: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    results: list[ActionResult] = field(default_factory=list)
    finished_at: dt.datetime | None = None
    next_expiry: dt.datetime | None = None

    def add(self, result: ActionResult) -> None:
        if result.status != "needs-human":
            self.counts["planned"] += 1
        if result.status != "planned":
            self.counts[result.status.replace("-", "_")] += 1
        if len(self.results) < MAX_LISTED:
            self.results.append(result)

    @property
    def exit_code(self) -> int:
        """0 all well, 1 something failed, 3 a human must act."""
        return 1 if self.counts["failed"] else 3 if self.counts["needs_human"] else 0

    def summary(self) -> dict[str, int]:
        return {name: self.counts[name] for name in ("planned", "done", "failed", "needs_human")}

    def as_dict(self) -> dict[str, Any]:
        listed = len(self.results)
        total = self.counts["planned"] + self.counts["needs_human"]
        return {
            "dryRun": self.dry_run,
            "startedAt": self.started_at.isoformat(),
            "summary": self.summary(),
            "exitCode": self.exit_code,
            "nextExpiry": self.next_expiry.isoformat() if self.next_expiry else None,
            "actions": [r.as_dict() for r in self.results],
            "actionsNotListed": total - listed,
        }


def rotate(
    home: Home,
    *,
    dry_run: bool = False,
    renew_before: dt.timedelta | None = None,
    hook: Hook | None = None,
    chunk: int = CHUNK,
) -> RotationReport:
    """One run: plan, then (unless `dry_run`) do it under the lock. `hook` runs after each action
    (tests inject crashes there). Raises LockBusy when another run holds the lock too long."""
    policy = rotation_policy(home.settings, renew_before)
    if dry_run:
        now = home.clock()
        report = RotationReport(now, dry_run=True)
        for action in plan_rotation(gather_facts(home, now, policy), policy):
            report.add(ActionResult(action, "needs-human" if isinstance(action, NeedsHuman) else "planned"))
        return report
    settings = home.settings.rotation
    with rotation_lock(home.root, home.stores.engine, home.secrets.database_url, settings.lock_timeout):
        now = home.clock()
        report = RotationReport(now)
        executor = Executor(home, now, policy, report, hook=hook, chunk=chunk)
        try:
            for action in plan_rotation(gather_facts(home, now, policy), policy):
                executor.submit(action)
            executor.flush()
        finally:
            executor.audit.flush()
        report.finished_at, report.next_expiry = home.clock(), next_expiry(home.stores.engine)
        run = RunRecord(now, report.finished_at, report.exit_code, report.summary(), report.next_expiry)
        record_run(home.stores.engine, run, keep=settings.history)
        if settings.textfile:
            write_textfile(home.root / settings.textfile, home.stores.engine)
    return report


@dataclass(frozen=True, slots=True)
class _Renewal:
    action: RenewCertificate
    target: CertTarget
    new: x509.Certificate
    replaces: tuple[str, ...]  # serials this renewal supersedes
    old: bytes  # the file as it was (empty for a kubeconfig: its backup reads it)
    tail: bytes  # certificates after the leaf in its file (a chain), kept as they are
    # Subject and SANs are the old certificate's (a renewal keeps them), read from its already
    # parsed extensions: parsing the new certificate's again costs as much as signing it.
    names: SignedNames


class Executor:
    """Runs actions one by one (renewals a chunk at a time), recording a result for each."""

    def __init__(
        self, home: Home, now: dt.datetime, policy: RotationPolicy, report: RotationReport, *,
        hook: Hook | None = None, chunk: int = CHUNK,
    ) -> None:  # fmt: skip
        self.home, self.now, self.policy, self.report = home, now, policy, report
        self.hook, self.chunk = hook, chunk
        self.audit = home.stores.audit
        self.backups = Backups(home, now)
        self._pending: list[RenewCertificate] = []
        self._cas: dict[str, CertificateAuthority] = {}

    def submit(self, action: Action) -> None:
        if isinstance(action, RenewCertificate):
            self._pending.append(action)
            if len(self._pending) >= self.chunk:
                self.flush()
            return
        self.flush()
        if isinstance(action, NeedsHuman):
            self._result(action, "needs-human")
            return
        try:
            detail = self._run(action)
        except Exception as e:  # one failed action must not stop the others
            self._result(action, "failed", _one_line(e))
        else:
            self._result(action, "done", detail)

    def _run(self, action: Action) -> str:
        if isinstance(action, ReissueCertificate):
            return self._reissue(action)
        if isinstance(action, AdvanceSigningKey | RepairSigningKeys):
            return self._signing_key(action)
        if isinstance(action, SyncKubeconfig):
            return sync_kubeconfig(self.home, Path(action.path), self.backups)
        if isinstance(action, RefreshCRL):
            return self._crl(action)
        if isinstance(action, PruneInventory):
            return self._prune(action)
        if isinstance(action, PruneBackups):
            removed = remove_backup_runs(self.home.layout.backups_dir, action.runs)
            return f"deleted {removed} backup runs taken before {iso(action.before)}"
        raise TypeError(f"no executor for {type(action).__name__}")

    def _result(self, action: Action, status: str, detail: str = "", **extra: Any) -> None:
        self.report.add(ActionResult(action, status, detail))
        if status in ("done", "failed"):
            self.audit.record(self.now, rotation_event(action.kind, action.target, status, detail, **extra))
        if self.hook is not None:
            self.hook(action)

    # --- renewals ----------------------------------------------------------------------------

    def ca(self, name: str) -> CertificateAuthority:
        if name not in self._cas:
            self._cas[name] = self.home.stores.load_ca(name)
        return self._cas[name]

    def flush(self) -> None:
        """Renew the pending chunk: backups, then every file, then one inventory transaction."""
        chunk, self._pending = self._pending, []
        ready: list[_Renewal] = []
        for action in chunk:
            try:
                renewal = self._prepare(action)
            except Exception as e:
                self._result(action, "failed", _one_line(e))
                continue
            if renewal is not None:
                ready.append(renewal)
        if not ready:
            return
        try:
            self.backups.keep((r.target.path for r in ready), known={r.target.path: r.old for r in ready})
            self._write(ready)
            record_renewals(
                self.home.stores.engine,
                [self._record(r.new, r.action, r.names) for r in ready],
                [s for r in ready for s in r.replaces],
            )
        except Exception as e:
            for renewal in ready:
                self._result(renewal.action, "failed", _one_line(e))
            return
        for r in ready:
            expires = f"{r.new.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
            self._result(
                r.action, "done", f"serial {r.new.serial_number:x}, expires {expires}",
                serial=format(r.new.serial_number, "x"), replaces=list(r.replaces),
            )  # fmt: skip

    def _prepare(self, action: RenewCertificate) -> _Renewal | None:
        """The renewal of what the file holds now (which a crashed run may have renewed already)."""
        target = cert_target(self.home, action.name)
        old, tail = b"", b""
        if target.in_kubeconfig:
            current = read_certificate(target)
        else:  # read once: the backup, the certificate, and a chain after it that stays as it was
            old = read_bytes(target.path, what="certificate")
            certs = x509.load_pem_x509_certificates(old)
            current, tail = certs[0], b"".join(c.public_bytes(Encoding.PEM) for c in certs[1:])
        serial = serial_hex(current.serial_number)
        replaces = (serial,) if serial == action.serial else (action.serial, serial)
        ca = self.ca(action.ca)
        if serial != action.serial:
            self._adopt(action, current)
            if not self._needs_renewal(action, current, ca):
                record_renewals(self.home.stores.engine, [], [action.serial])
                self._result(action, "done", f"the inventory caught up with {target.path.name} (serial {serial})")
                return None
        new = renew_certificate(current, ca, now=self.now, lifetime=target.lifetime)
        return _Renewal(action, target, new, replaces, old, tail, SignedNames.renewed(current, ca.subject_text))

    def _needs_renewal(self, action: RenewCertificate, cert: x509.Certificate, ca: CertificateAuthority) -> bool:
        if action.reissue:
            return not issued_by(cert, ca.certificate)
        fact = CertFact(action.name, action.ca, "", cert.not_valid_before_utc, cert.not_valid_after_utc)
        return is_due(fact, self.now, self.policy.renew_before)

    def _adopt(self, action: RenewCertificate, cert: x509.Certificate) -> None:
        """Record a certificate a crashed run wrote to the file but not to the inventory."""
        try:
            self.home.stores.inventory.get(serial_hex(cert.serial_number))
        except NotFoundError:
            self.home.stores.inventory.add([self._record(cert, action)])

    def _record(self, cert: x509.Certificate, action: RenewCertificate, names: SignedNames | None = None) -> CertRecord:
        return CertRecord.for_certificate(
            cert, profile=action.profile, now=self.now, requester="rotate", name=action.name, ca_name=action.ca,
            auto_renew=True, signed=names,
        )  # fmt: skip

    def _write(self, renewals: list[_Renewal]) -> None:
        files = []
        for r in renewals:
            pem = r.new.public_bytes(Encoding.PEM)
            if r.target.in_kubeconfig:
                write_embedded(self.home, r.target.path, r.action.ca, pem)
            else:
                files.append(PendingFile(r.target.path, pem + r.tail, CERT_MODE))
        atomic_write_many(files)

    # --- the other actions ---------------------------------------------------------------------

    def _reissue(self, action: ReissueCertificate) -> str:
        """Reissue a drifted certificate to match the settings (what `certs renew` does for one)."""
        from authsvc.certs.renewal import drift_by_name
        from authsvc.drift.detect import read_certificate as read_expected
        from authsvc.drift.reissue import build_reissue, reissued_files, replaced_paths

        drifts = drift_by_name(self.home).get(action.name)
        old = read_expected(drifts[0].expected) if drifts else None
        if not drifts or old is None:
            return "already matches the configuration"
        reissue = build_reissue(drifts[0].expected, old, drifts, self.ca(action.ca), now=self.now)
        self.backups.keep(replaced_paths(reissue))
        atomic_write_many(reissued_files(reissue))
        profile = drifts[0].expected.profile.name
        record = CertRecord.for_certificate(
            reissue.new, profile=profile, now=self.now, requester="rotate", name=action.name, ca_name=action.ca,
            auto_renew=True,
        )  # fmt: skip
        record_renewals(self.home.stores.engine, [record], [serial_hex(old.serial_number)])
        done = f"serial {reissue.new.serial_number:x}, expires {reissue.new.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
        return f"reissued to match the configuration ({reissue.changed}): {done}"

    def _signing_key(self, action: AdvanceSigningKey | RepairSigningKeys) -> str:
        service = self.home.stores.token_service
        files = service.files
        self.backups.keep([files.active_key, files.next_key, files.public_bundle])
        if isinstance(action, AdvanceSigningKey):
            return service.rotate(action.phase).message
        if action.what == "promote":
            (active,) = SigningKeyStore(self.home.stores.engine).keys([KeyState.ACTIVE])
            files.load_active(active.kid)
            return f"pki/sa.key now holds the active key {active.kid}"
        service.invalidate()
        files.write_bundle(service.public_keys_pem())
        return f"rewrote {files.public_bundle.name} with {len(service.published_keys())} published keys"

    def _crl(self, action: RefreshCRL) -> str:
        from authsvc.certs.crl import current_crl, write_crl

        self.backups.keep([self.home.root / "pki" / f"{action.ca}.crl"])
        write_crl(self.home, action.ca)
        next_update = current_crl(self.home, action.ca).next_update_utc
        return f"pki/{action.ca}.crl re-signed, next update {next_update:%Y-%m-%dT%H:%M:%SZ}"

    def _prune(self, action: PruneInventory) -> str:
        query = delete(CERTIFICATES).where(
            CERTIFICATES.c.not_after < action.before, CERTIFICATES.c.profile.not_in(CA_PROFILES)
        )
        with self.home.stores.engine.begin() as connection:
            certificates = connection.execute(query).rowcount
        tokens = SigningKeyStore(self.home.stores.engine).prune(action.before)
        return f"forgot {certificates} certificate and {tokens} token records"


def record_renewals(engine: Engine, records: Sequence[CertRecord], superseded: Sequence[str]) -> None:
    """The new rows and the old ones marked superseded, in one transaction (a chunk at a time)."""
    with engine.begin() as connection:
        if records:
            insert_records(connection, records)
        supersede(connection, superseded)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
