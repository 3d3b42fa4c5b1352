"""kubeadm's `certs check-expiration` and `certs renew` on a home's tree.

What is renewable: kubeadm's leaves, the kubeconfigs that embed a certificate, and every other
inventory row with `auto_renew` (authsvc's serving and webhook client certificates). A renewal
re-signs the certificate with its own key and every attribute kept (kubeadm's behaviour, except
that kubeadm re-keys); a certificate that has drifted from the settings (authsvc/drift/) is
reissued to match them instead. All renewals are computed before anything is written; the
replaced files are kept under backups/<time>/.

What is not renewable is said, never skipped in silence: a kubeconfig whose client certificate
is a file of its own (the kubelet's, which the kubelet rotates itself), a file that is missing.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from authsvc.errors import HomeError, UsageError
from authsvc.home.opened import Home
from authsvc.kubeconfig.documents import current_entries, load_kubeconfig, write_kubeconfig
from pki.ca import CertificateAuthority
from pki.errors import StoreError
from pki.inventory import CertRecord, CertStatus
from pki.kubeadm.certlist import CA_SPECS, CERT_SPECS, KUBECONFIG_SPECS, CertSpec, find_spec
from pki.kubeadm.expiration import ExpirationEntry, ExpirationReport, build_report, renew_certificate
from pki.store import CERT_MODE, PendingFile, atomic_write_many, backup_files, certs_to_pem, load_certificates

if TYPE_CHECKING:  # the drift checks are renewal's: `check-expiration` does not load them
    from authsvc.drift.detect import Drift
    from authsvc.drift.reissue import Reissue

RESTART_HINT = (
    "restart kube-apiserver, kube-controller-manager, kube-scheduler and etcd so that they use the new certificates"
)


@dataclass(frozen=True, slots=True)
class RenewTarget:
    """A renewable certificate: a kubeadm leaf, a kubeconfig's embedded one, or an auto_renew row."""

    name: str  # kubeadm's name ("etcd-server", "admin.conf") or the inventory name
    record_name: str  # inventory name ("etcd/server", "admin.conf", "authsvc/serving")
    ca: str  # base name of the signing CA
    path: Path
    profile: str
    lifetime: dt.timedelta | None  # None: keep the certificate's own
    in_kubeconfig: bool = False


class NotManaged(HomeError):
    """A kubeconfig whose client certificate this home does not hold (it names a file instead)."""


def renew_targets(home: Home) -> list[RenewTarget]:
    validity = home.settings.cluster.certificate_validity_period
    targets = [
        RenewTarget(s.name, s.base_name, s.ca, home.layout.cert_path(s.base_name), s.profile.name, validity)
        for s in CERT_SPECS
    ]
    targets += [
        RenewTarget(
            k.file_name, k.file_name, k.ca, home.layout.path(k.file_name), "client", validity, in_kubeconfig=True
        )
        for k in KUBECONFIG_SPECS
    ]
    known = {t.record_name for t in targets}
    for record in home.stores.inventory.certificates(status=CertStatus.VALID):
        if _other_renewable(home, record, known):
            assert record.name is not None
            known.add(record.name)
            targets.append(
                RenewTarget(
                    record.name, record.name, record.ca_name, home.layout.cert_path(record.name), record.profile, None
                )
            )
    return targets


def _other_renewable(home: Home, record: CertRecord, known: set[str]) -> bool:
    return bool(
        record.auto_renew and record.name and record.name not in known and home.layout.cert_path(record.name).is_file()
    )


def read_target_certificate(target: RenewTarget) -> x509.Certificate | None:
    """The certificate in the target's file (or embedded in its kubeconfig); None when the file is
    missing; NotManaged when the kubeconfig's client certificate is a file of its own."""
    if not target.path.is_file():
        return None
    if not target.in_kubeconfig:
        return load_certificates(target.path)[0]
    try:
        _, user = current_entries(load_kubeconfig(target.path), target.path)
    except StoreError as e:
        raise HomeError(str(e)) from None
    data = user.get("client-certificate-data")
    if not isinstance(data, str):
        elsewhere = user.get("client-certificate")
        where = f"is {elsewhere}, which its user rotates itself" if isinstance(elsewhere, str) else "is not embedded"
        raise NotManaged(f"{target.path.name}: its client certificate {where}: not managed here")
    return x509.load_pem_x509_certificate(base64.b64decode(data))


def expiration_report(home: Home) -> ExpirationReport:
    """kubeadm's check-expiration data for the home, at the home's clock."""
    present_cas = {s.base_name: s for s in CA_SPECS if home.layout.cert_path(s.base_name).is_file()}
    entries = []
    for target in renew_targets(home):
        try:
            cert = read_target_certificate(target)
        except HomeError:
            continue  # a kubeconfig pointing at certificate files (a kubelet rotating its own): not ours
        if cert is None and target.ca not in present_cas:
            continue  # e.g. external etcd: neither the leaf nor its CA is here
        ca = present_cas.get(target.ca)
        external = not home.layout.key_path(target.ca).is_file()
        expires = cert.not_valid_after_utc if cert else None
        entries.append(ExpirationEntry(target.name, expires, ca.name if ca else target.ca, external))
    authorities = [
        ExpirationEntry(
            s.name,
            load_certificates(home.layout.cert_path(s.base_name))[0].not_valid_after_utc,
            "",
            not home.layout.key_path(s.base_name).is_file(),
        )
        for s in present_cas.values()
    ]
    return build_report(entries, authorities, home.clock())


@dataclass(frozen=True, slots=True)
class Renewal:
    target: RenewTarget
    old: x509.Certificate
    new: x509.Certificate
    reissue: Reissue | None = None  # drifted from the settings: reissued to match them


@dataclass
class RenewResult:
    renewals: list[Renewal] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why), for `all`


def select_targets(home: Home, names: Sequence[str]) -> tuple[list[RenewTarget], list[tuple[str, str]]]:
    """`all` (every target whose file exists) or the named ones (kubeadm name, base name or file),
    and for `all` what is left out and why."""
    targets = renew_targets(home)
    if list(names) == ["all"]:
        chosen = [t for t in targets if t.path.is_file()]
        missing = _kubeconfigs_missing(targets)
        skipped = [(t.name, f"{t.path} does not exist: not managed by this home") for t in missing]
        return chosen, skipped
    chosen = []
    for name in names:
        spec = find_spec(name)
        wanted = (spec.name if isinstance(spec, CertSpec) else spec.file_name) if spec else name
        match = next((t for t in targets if wanted in (t.name, t.record_name)), None)
        if match is None:
            raise UsageError(f"unknown certificate {name!r}: use `authsvc certs check-expiration` to list them, or all")
        if not match.path.is_file():
            raise HomeError(f"{match.path} does not exist: nothing to renew for {name}")
        chosen.append(match)
    return chosen, []


def _kubeconfigs_missing(targets: Sequence[RenewTarget]) -> list[RenewTarget]:
    """kubeadm's kubeconfigs that are not in the home (their leaves' absence is an external CA's)."""
    return [t for t in targets if t.in_kubeconfig and not t.path.is_file()]


def renew(home: Home, names: Sequence[str]) -> RenewResult:
    """Renew the chosen certificates (a drifted one reissued to match); all computed before any is written."""
    from authsvc.drift.reissue import replaced_paths

    now = home.clock()
    cas: dict[str, CertificateAuthority] = {}
    drifted = drift_by_name(home)
    targets, skipped = select_targets(home, names)
    result = RenewResult(skipped=skipped)
    for target in targets:
        try:
            old = read_target_certificate(target)
        except NotManaged as e:
            if list(names) != ["all"]:
                raise
            result.skipped.append((target.name, str(e).split(": ", 1)[1]))
            continue
        assert old is not None  # select_targets keeps existing files only
        if target.ca not in cas:
            cas[target.ca] = home.stores.load_ca(target.ca)
        result.renewals.append(_renewal(target, old, cas[target.ca], drifted.get(target.record_name, []), now))
    if result.renewals:
        paths = [p for r in result.renewals for p in (replaced_paths(r.reissue) if r.reissue else [r.target.path])]
        backup_files(paths, home.layout.backups_dir, now, relative_to=home.root)
        for renewal in result.renewals:
            _write_renewal(renewal)
        _record_renewals(home, result.renewals, now)
    return result


def drift_by_name(home: Home) -> dict[str, list[Drift]]:
    """The drifts of the home's leaves and kubeconfigs, by inventory name."""
    from authsvc.drift.detect import detect_drift

    found: dict[str, list[Drift]] = {}
    for drift in detect_drift(home, include_cas=False):
        found.setdefault(drift.expected.record_name, []).append(drift)
    return found


def _renewal(
    target: RenewTarget, old: x509.Certificate, ca: CertificateAuthority, drifts: list[Drift], now: dt.datetime
) -> Renewal:
    if drifts:
        from authsvc.drift.reissue import build_reissue

        reissue = build_reissue(drifts[0].expected, old, drifts, ca, now=now)
        return Renewal(target, old, reissue.new, reissue)
    return Renewal(target, old, renew_certificate(old, ca, now=now, lifetime=target.lifetime))


def _write_renewal(renewal: Renewal) -> None:
    if renewal.reissue is not None:
        from authsvc.drift.reissue import reissued_files

        atomic_write_many(reissued_files(renewal.reissue))
        return
    target, new_pem = renewal.target, renewal.new.public_bytes(Encoding.PEM)
    if not target.in_kubeconfig:
        rest = load_certificates(target.path)[1:]  # a chain after the leaf stays as it was
        atomic_write_many([PendingFile(target.path, new_pem + certs_to_pem(rest), CERT_MODE)])
        return
    config = load_kubeconfig(target.path)
    _, user = current_entries(config, target.path)
    user["client-certificate-data"] = base64.b64encode(new_pem).decode()
    write_kubeconfig(target.path, config)


def _record_renewals(home: Home, renewals: Sequence[Renewal], now: dt.datetime) -> None:
    home.stores.inventory.add(
        [
            CertRecord.for_certificate(
                r.new,
                profile=r.target.profile,
                now=now,
                requester="renew",
                name=r.target.record_name,
                ca_name=r.target.ca,
                auto_renew=True,
            )
            for r in renewals
        ]
    )
    home.stores.inventory.mark_superseded([format(r.old.serial_number, "x") for r in renewals])
