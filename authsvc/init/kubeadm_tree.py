"""kubeadm's tree in a home: the `authsvc init` steps, check-expiration, renew and import.

The tree itself (names, subjects, SANs, usages, lifetimes) is data in pki/kubeadm/certlist.py; this
module decides where the files go (kubeadm's layout: <home>/pki/..., kubeconfigs in <home>),
records every certificate in the inventory (name = kubeadm base name or kubeconfig file,
auto_renew) and keeps a backup of whatever a renewal replaces.

Leaf keys are written unencrypted even when pki.key_passphrase_* is set: kube-apiserver, etcd
and the kubelet read them and cannot decrypt. CA keys follow the passphrase setting.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from authsvc.errors import HomeError, UsageError
from authsvc.home.opened import Home
from authsvc.kubeconfig.documents import ClusterEntry, UserEntry, build_kubeconfig, load_kubeconfig, write_kubeconfig
from pki.ca import CertificateAuthority
from pki.errors import NotFoundError
from pki.inventory import CertRecord, CertStatus
from pki.keys import KeyType, private_key_to_pem
from pki.kubeadm.certlist import (
    CA_SPECS,
    CERT_SPECS,
    KUBEADM_CA,
    KUBECONFIG_SPECS,
    CertSpec,
    ClusterParams,
    IssuedPair,
    KubeconfigSpec,
    build_tree,
    ca_alt_names,
    ca_spec,
    find_spec,
    key_type_for,
    kubeconfig_server,
    kubeconfig_user,
    leaf_alt_names,
    leaf_subject,
)
from pki.kubeadm.expiration import ExpirationEntry, ExpirationReport, build_report, renew_certificate
from pki.kubeadm.import_tree import KubeadmTree
from pki.profiles import ROOT_CA
from pki.store import CERT_MODE, KEY_MODE, PendingFile, atomic_write_many, backup_files, certs_to_pem, load_certificates

if TYPE_CHECKING:
    from authsvc.init.steps import InitContext, InitStep
    from authsvc.settings import Settings

PHASES = ("certs", "kubeconfig")
RESTART_HINT = (
    "restart kube-apiserver, kube-controller-manager, kube-scheduler and etcd so that they use the new certificates"
)


def cluster_params(settings: Settings) -> ClusterParams:
    return settings.cluster.params()


def tree_key_type(settings: Settings) -> KeyType:
    return key_type_for(settings.cluster.encryption_algorithm)


# --- init steps ------------------------------------------------------------------------------


def ensure_kubeadm_ca(ctx: InitContext, base_name: str) -> CertificateAuthority | None:
    """One of kubeadm's CAs (kubeadm's CN, CN as DNS SAN, no pathlen), created unless it exists."""
    from authsvc.init.steps import ensure_ca  # setup imports this module for INIT_STEPS

    spec = ca_spec(base_name)
    return ensure_ca(
        ctx,
        spec.base_name,
        spec.common_name,
        key_type=tree_key_type(ctx.home.settings),
        profile=KUBEADM_CA,
        sans=ca_alt_names(spec),
    )


def kubeadm_cas_step(ctx: InitContext) -> None:
    """front-proxy-ca and etcd/ca (the cluster CA is cluster_ca_step's)."""
    for spec in CA_SPECS:
        if spec.base_name != "ca":
            ensure_kubeadm_ca(ctx, spec.base_name)


def kubeadm_certs_step(ctx: InitContext) -> None:
    _issue_missing(ctx, CERT_SPECS)


def kubeadm_kubeconfigs_step(ctx: InitContext) -> None:
    _issue_missing(ctx, KUBECONFIG_SPECS)


def steps_for_phase(phase: str | None, steps: Sequence[InitStep], *, first_pki_step: InitStep) -> list[InitStep]:
    """`--phase certs`: every step but the kubeconfigs; `--phase kubeconfig`: set-up steps and the kubeconfigs."""
    if phase is None:
        return list(steps)
    if phase == "certs":
        return [s for s in steps if s is not kubeadm_kubeconfigs_step]
    if phase == "kubeconfig":
        return [*steps[: steps.index(first_pki_step)], kubeadm_kubeconfigs_step]
    raise UsageError(f"unknown phase {phase!r} (one of: {', '.join(PHASES)})")


def _target_path(home: Home, spec: CertSpec | KubeconfigSpec) -> Path:
    return home.layout.cert_path(spec.base_name) if isinstance(spec, CertSpec) else home.layout.path(spec.file_name)


def _describe(spec: CertSpec | KubeconfigSpec, params: ClusterParams) -> str:
    if isinstance(spec, KubeconfigSpec):
        return f"write kubeconfig {spec.file_name} (server {kubeconfig_server(spec, params)})"
    sans = ", ".join(leaf_alt_names(spec, params).as_strings())
    return f"create {spec.base_name} ({leaf_subject(spec, params).rfc4514_string()}{'; ' + sans if sans else ''})"


def _issue_missing(ctx: InitContext, specs: Sequence[CertSpec | KubeconfigSpec]) -> None:
    home, params = ctx.home, cluster_params(ctx.home.settings)
    cas: dict[str, CertificateAuthority] = {}
    for spec in specs:
        path = _target_path(home, spec)
        if _already_there(path, spec):
            continue
        if not ctx.plan(_describe(spec, params)):
            continue
        if spec.ca not in cas:
            cas[spec.ca] = home.stores.load_ca(spec.ca)
        validity = home.settings.cluster.certificate_validity_period
        (pair,) = build_tree(
            params, cas, now=ctx.now, lifetime=validity, key_type=tree_key_type(home.settings), specs=[spec]
        )
        ctx.written += _write_pair(home, spec, pair, params, cas[spec.ca])
        home.stores.inventory.record(
            pair.certificate,
            profile=pair.profile.name,
            now=ctx.now,
            requester="init",
            name=pair.name,
            ca_name=pair.ca,
            auto_renew=True,
        )


def _already_there(path: Path, spec: CertSpec | KubeconfigSpec) -> bool:
    """True when the files exist; HomeError when only half of a pair does (never overwrite either)."""
    if not isinstance(spec, CertSpec):
        return path.exists()
    key = path.with_suffix(".key")
    if path.exists() != key.exists():
        raise HomeError(f"{path} or {key} exists without the other: restore it or remove both")
    return path.exists()


def _write_pair(
    home: Home, spec: CertSpec | KubeconfigSpec, pair: IssuedPair, params: ClusterParams, ca: CertificateAuthority
) -> list[Path]:
    key_pem = private_key_to_pem(pair.key)  # clear: the components reading it cannot decrypt
    cert_pem = pair.certificate.public_bytes(Encoding.PEM)
    if isinstance(spec, CertSpec):
        path = home.layout.cert_path(spec.base_name)
        return atomic_write_many(
            [PendingFile(path.with_suffix(".key"), key_pem, KEY_MODE), PendingFile(path, cert_pem, CERT_MODE)]
        )
    user, _ = kubeconfig_user(spec, params)
    cluster = ClusterEntry(params.cluster_name, kubeconfig_server(spec, params), certs_to_pem([ca.certificate]))
    config = build_kubeconfig(cluster, UserEntry(user, client_cert_pem=cert_pem, client_key_pem=key_pem))
    return [write_kubeconfig(home.layout.path(spec.file_name), config)]


# --- what expires when, and renewing it ------------------------------------------------------


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
    """The certificate in the target's file (or embedded in its kubeconfig); None when the file is missing."""
    if not target.path.is_file():
        return None
    if not target.in_kubeconfig:
        return load_certificates(target.path)[0]
    user = _current_user(load_kubeconfig(target.path), target.path)
    data = user.get("client-certificate-data")
    if not isinstance(data, str):
        raise HomeError(f"{target.path}: the current user has no embedded client certificate (client-certificate-data)")
    return x509.load_pem_x509_certificate(base64.b64decode(data))


def _current_user(config: dict[str, Any], path: Path) -> dict[str, Any]:
    context_name = config.get("current-context")
    contexts = {c["name"]: c.get("context") or {} for c in config.get("contexts") or []}
    user_name = contexts.get(context_name, {}).get("user")
    for entry in config.get("users") or []:
        if entry["name"] == user_name and isinstance(entry.get("user"), dict):
            return entry["user"]  # type: ignore[no-any-return]
    raise HomeError(f"{path}: current-context {context_name!r} names no user of the file")


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


def select_targets(home: Home, names: Sequence[str]) -> list[RenewTarget]:
    """`all` (every target whose file exists) or the named ones (kubeadm name, base name or file)."""
    targets = renew_targets(home)
    if list(names) == ["all"]:
        return [t for t in targets if t.path.is_file()]
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
    return chosen


def renew(home: Home, names: Sequence[str]) -> list[Renewal]:
    """Re-sign the chosen certificates (same key and attributes); all are checked before any is written."""
    now = home.clock()
    cas: dict[str, CertificateAuthority] = {}
    renewals = []
    for target in select_targets(home, names):
        old = read_target_certificate(target)
        assert old is not None  # select_targets keeps existing files only
        if target.ca not in cas:
            cas[target.ca] = home.stores.load_ca(target.ca)
        renewals.append(Renewal(target, old, renew_certificate(old, cas[target.ca], now=now, lifetime=target.lifetime)))
    if renewals:
        backup_files([r.target.path for r in renewals], home.layout.backups_dir, now, relative_to=home.root)
        for renewal in renewals:
            _write_renewal(renewal)
        _record_renewals(home, renewals, now)
    return renewals


def _write_renewal(renewal: Renewal) -> None:
    target, new_pem = renewal.target, renewal.new.public_bytes(Encoding.PEM)
    if not target.in_kubeconfig:
        rest = load_certificates(target.path)[1:]  # a chain after the leaf stays as it was
        atomic_write_many([PendingFile(target.path, new_pem + certs_to_pem(rest), CERT_MODE)])
        return
    config = load_kubeconfig(target.path)
    _current_user(config, target.path)["client-certificate-data"] = base64.b64encode(new_pem).decode()
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


# --- adopting an existing tree ---------------------------------------------------------------


def import_tree(home: Home, tree: KubeadmTree, *, force: bool = False) -> list[Path]:
    """Copy a validated kubeadm tree into the home's pki/ and record it; the source is only read.

    A file that exists in the home with other content is a HomeError unless `force`, which
    keeps the replaced files under backups/<time>/.
    """
    now, pki_dir = home.clock(), home.layout.path("pki")
    differing = [
        f for f in tree.files if (pki_dir / f.relative).exists() and (pki_dir / f.relative).read_bytes() != f.data
    ]
    if differing and not force:
        more = f" (and {len(differing) - 1} more)" if len(differing) > 1 else ""
        raise HomeError(
            f"{pki_dir / differing[0].relative} already exists with other content{more}: import into a new home, "
            "or use --force (the replaced files are kept under backups/)"
        )
    if differing:
        backup_files([pki_dir / f.relative for f in differing], home.layout.backups_dir, now, relative_to=home.root)
    written = atomic_write_many(
        [PendingFile(pki_dir / f.relative, _import_data(home, tree, f.relative, f.data), f.mode) for f in tree.files]
    )
    _record_import(home, tree, now)
    return written


def _import_data(home: Home, tree: KubeadmTree, relative: str, data: bytes) -> bytes:
    """CA keys are encrypted when a key passphrase is configured (only authsvc reads them)."""
    passphrase = home.secrets.key_passphrase
    key = next((c.key for c in tree.cas if f"{c.name}.key" == relative), None)
    return private_key_to_pem(key, passphrase) if key is not None and passphrase else data


def _record_import(home: Home, tree: KubeadmTree, now: dt.datetime) -> None:
    new_records = []
    for cert in tree.certificates:
        try:
            home.stores.inventory.get(format(cert.certificate.serial_number, "x"))
            continue  # imported before
        except NotFoundError:
            pass
        replaced = [r.serial for r in home.stores.inventory.certificates(status=CertStatus.VALID, name=cert.name)]
        home.stores.inventory.mark_superseded(replaced)
        is_ca = cert.name == cert.ca
        new_records.append(
            CertRecord.for_certificate(
                cert.certificate,
                profile=ROOT_CA.name if is_ca else cert.profile,
                now=now,
                requester="import",
                name=cert.name,
                ca_name=cert.ca,
                auto_renew=not is_ca,
            )
        )
    if new_records:
        home.stores.inventory.add(new_records)
