"""kubeadm's tree in a home: the `authsvc init` steps that make it.

The tree itself (names, subjects, SANs, usages, lifetimes) is data in pki/kubeadm/certlist.py; this
module decides where the files go (kubeadm's layout: <home>/pki/..., kubeconfigs in <home>) and
records every certificate in the inventory (name = kubeadm base name or kubeconfig file,
auto_renew). Renewing them is authsvc/certs/renewal.py; adopting a tree, authsvc/adopt/.

Leaf keys are written unencrypted even when pki.key_passphrase_* is set: kube-apiserver, etcd
and the kubelet read them and cannot decrypt. CA keys follow the passphrase setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.serialization import Encoding

from authsvc.errors import HomeError, UsageError
from authsvc.home.opened import Home
from authsvc.kubeconfig.documents import ClusterEntry, UserEntry, build_kubeconfig, write_kubeconfig
from pki.ca import CertificateAuthority
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
    key_type_for,
    kubeconfig_server,
    kubeconfig_user,
    leaf_alt_names,
    leaf_subject,
)
from pki.store import CERT_MODE, KEY_MODE, PendingFile, atomic_write_many, certs_to_pem

if TYPE_CHECKING:
    from authsvc.init.steps import InitContext, InitStep
    from authsvc.settings import Settings

PHASES = ("certs", "kubeconfig")


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
