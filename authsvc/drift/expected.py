"""What each certificate authsvc manages in a home should look like, from the settings alone.

Only what a setting shapes is compared: a kubeadm leaf's SANs (the `cluster:` section), the
node name in etcd's and kubelet.conf's subjects, lifetimes (`cluster.certificate_validity_period`,
`pki.server_ttl`, `pki.ca_ttl`) and key types (`cluster.encryption_algorithm`, `pki.key_type`,
`pki.ca_key_type`). What no setting shapes is kept as the file has it: admin.conf's group (which
kubeadm changed in 1.29), the SANs of etcd's certificates beyond kubeadm's defaults (kubeadm's
`etcd.local.serverCertSANs`, which authsvc has no setting for), kubeconfigs' server URLs.

Pure: paths and settings in, values out; no file is read here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from authsvc.init.webhook_pki import APISERVER_WEBHOOK_CLIENT, SERVING_NAME, WEBHOOK_CLIENT_CA
from pki.keys import KeyType
from pki.kubeadm.certlist import (
    CA_SPECS,
    CERT_SPECS,
    KUBECONFIG_SPECS,
    SanRule,
    key_type_for,
    kubeconfig_user,
    leaf_alt_names,
)
from pki.names import SubjectAltNames
from pki.profiles import CLIENT, SERVER, Profile

if TYPE_CHECKING:
    from authsvc.home.layout import HomeLayout
    from authsvc.settings import Settings

T = TypeVar("T")

APISERVER_SAN_SETTINGS = (
    "cluster.node_name, cluster.advertise_address, cluster.control_plane_endpoint, "
    "cluster.apiserver_cert_extra_sans, cluster.service_cidr, cluster.dns_domain"
)
ETCD_SAN_SETTINGS = "cluster.node_name, cluster.advertise_address"


@dataclass(frozen=True, slots=True)
class Shaped(Generic[T]):
    """A value the settings give a certificate, and which settings (for messages)."""

    value: T
    setting: str


@dataclass(frozen=True, slots=True)
class Expected:
    """A managed certificate as the settings say it should be."""

    name: str  # what `certs renew` takes and reports: kubeadm's name ("etcd-server") or the inventory's
    record_name: str  # the inventory name ("etcd/server", "admin.conf", "authsvc/serving")
    ca: str
    path: Path
    profile: Profile
    lifetime: Shaped[dt.timedelta]
    key_type: Shaped[KeyType]
    common_name: Shaped[str] | None = None  # None: no setting shapes the subject
    sans: Shaped[SubjectAltNames] | None = None  # None: no setting shapes the SANs
    keep_other_sans: bool = False  # SANs in the file beyond the expected ones are kept (etcd's)
    in_kubeconfig: bool = False
    is_ca: bool = False  # reported only: a CA changes through `authsvc ca rotate`, not a renewal


def expected_certificates(layout: HomeLayout, settings: Settings) -> list[Expected]:
    """Every certificate of the home that the settings shape (whether its file exists or not)."""
    found = _kubeadm_leaves(layout, settings) + _kubeconfigs(layout, settings) + _webhook(layout, settings)
    return found + _cas(layout, settings)


def _tree_key_type(settings: Settings) -> Shaped[KeyType]:
    return Shaped(key_type_for(settings.cluster.encryption_algorithm), "cluster.encryption_algorithm")


def _tree_lifetime(settings: Settings) -> Shaped[dt.timedelta]:
    return Shaped(settings.cluster.certificate_validity_period, "cluster.certificate_validity_period")


def _kubeadm_leaves(layout: HomeLayout, settings: Settings) -> list[Expected]:
    params = settings.cluster.params()
    leaves = []
    for spec in CERT_SPECS:
        common_name = None if spec.common_name else Shaped(settings.cluster.node_name, "cluster.node_name")
        sans = None
        if spec.sans is not SanRule.NONE:
            which = APISERVER_SAN_SETTINGS if spec.sans is SanRule.APISERVER else ETCD_SAN_SETTINGS
            sans = Shaped(leaf_alt_names(spec, params), which)
        leaves.append(
            Expected(
                spec.name,
                spec.base_name,
                spec.ca,
                layout.cert_path(spec.base_name),
                spec.profile,
                _tree_lifetime(settings),
                _tree_key_type(settings),
                common_name,
                sans,
                keep_other_sans=spec.sans is SanRule.ETCD,
            )
        )
    return leaves


def _kubeconfigs(layout: HomeLayout, settings: Settings) -> list[Expected]:
    params = settings.cluster.params()
    configs = []
    for spec in KUBECONFIG_SPECS:
        # Only kubelet.conf's user is shaped by a setting (system:node:<cluster.node_name>).
        user, _ = kubeconfig_user(spec, params)
        common_name = None if spec.client_name else Shaped(user, "cluster.node_name")
        configs.append(
            Expected(
                spec.file_name,
                spec.file_name,
                spec.ca,
                layout.path(spec.file_name),
                CLIENT,  # as init issues them (build_kubeconfig_cert)
                _tree_lifetime(settings),
                _tree_key_type(settings),
                common_name,
                in_kubeconfig=True,
            )
        )
    return configs


def _webhook(layout: HomeLayout, settings: Settings) -> list[Expected]:
    """authsvc's serving certificate and the API server's webhook client certificate, when the
    settings point at the ones `authsvc init` made (an operator's own certificates are theirs)."""
    server, pki = settings.server, settings.pki
    lifetime = Shaped(pki.server_ttl, "pki.server_ttl")
    key_type = Shaped(KeyType(pki.key_type), "pki.key_type")
    found = []
    if layout.path(server.tls_cert) == layout.cert_path(SERVING_NAME):
        sans = Shaped(SubjectAltNames.parse(server.serving_sans), "server.serving_sans")
        found.append(
            Expected(
                SERVING_NAME, SERVING_NAME, "ca", layout.cert_path(SERVING_NAME), SERVER, lifetime, key_type, sans=sans
            )
        )
    if layout.path(server.client_ca) == layout.cert_path(WEBHOOK_CLIENT_CA):
        path = layout.cert_path(APISERVER_WEBHOOK_CLIENT)
        name = APISERVER_WEBHOOK_CLIENT
        found.append(Expected(name, name, WEBHOOK_CLIENT_CA, path, CLIENT, lifetime, key_type))
    return found


def _cas(layout: HomeLayout, settings: Settings) -> list[Expected]:
    lifetime = Shaped(settings.pki.ca_ttl, "pki.ca_ttl")
    cas = [
        Expected(spec.name, spec.base_name, spec.base_name, layout.cert_path(spec.base_name), CLIENT, lifetime,
                 _tree_key_type(settings), is_ca=True)
        for spec in CA_SPECS
    ]  # fmt: skip
    if layout.path(settings.server.client_ca) == layout.cert_path(WEBHOOK_CLIENT_CA):
        key_type = Shaped(KeyType(settings.pki.ca_key_type), "pki.ca_key_type")
        path = layout.cert_path(WEBHOOK_CLIENT_CA)
        name = WEBHOOK_CLIENT_CA
        cas.append(Expected(name, name, name, path, CLIENT, lifetime, key_type, is_ca=True))
    return cas
