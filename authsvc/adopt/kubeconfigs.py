"""kubeadm's kubeconfigs (/etc/kubernetes/admin.conf, super-admin.conf, kubelet.conf,
controller-manager.conf, scheduler.conf), read and checked before they are adopted.

A kubeconfig with its client certificate embedded is managed: the certificate must be signed by
the imported cluster CA and the embedded key must be its key, and the file must trust that CA.
A kubeconfig whose client certificate is a file (`client-certificate:`, as kubelet.conf is after
the kubelet's TLS bootstrap: /var/lib/kubelet/pki/kubelet-client-current.pem, which the kubelet
rotates itself) is kept as it is and is not managed. Nothing is written here; the first problem
is raised as an InvalidInput naming the file.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from authsvc.errors import InvalidInput
from authsvc.kubeconfig.documents import current_entries, load_kubeconfig
from pki.errors import PKIError
from pki.issued_by import issued_by
from pki.keys import keys_match, load_private_key_pem
from pki.kubeadm.certlist import KUBECONFIG_SPECS
from pki.store import read_bytes


@dataclass(frozen=True, slots=True)
class SourceKubeconfig:
    file_name: str  # "admin.conf"
    path: Path
    data: bytes  # the file as it is (copied byte for byte)
    cluster_name: str  # the current context's cluster entry name (kubeadm: ClusterConfiguration.clusterName)
    server: str
    certificate: x509.Certificate | None  # the embedded client certificate; None: not managed
    not_managed: str = ""  # why it is not managed (its client certificate is a file)


def read_kubeconfigs(directory: Path, ca: x509.Certificate) -> tuple[list[SourceKubeconfig], list[str]]:
    """The kubeadm kubeconfigs in `directory`, checked against the cluster CA, and the names of
    those that are not there."""
    found, missing = [], []
    for spec in KUBECONFIG_SPECS:
        path = directory / spec.file_name
        if path.is_file():
            found.append(read_kubeconfig(path, ca))
        else:
            missing.append(spec.file_name)
    return found, missing


def read_kubeconfig(path: Path, ca: x509.Certificate) -> SourceKubeconfig:
    data = read_bytes(path, what="kubeconfig")
    try:
        config = load_kubeconfig(path)
        cluster, user = current_entries(config, path)
    except PKIError as e:
        raise InvalidInput(str(e)) from None
    cluster_name = _current_name(config, "cluster")
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith("https://"):
        raise InvalidInput(f"{path}: the current cluster has no https:// server")
    _check_trusts(path, cluster, ca)
    cert_data = user.get("client-certificate-data")
    if not isinstance(cert_data, str):
        elsewhere = user.get("client-certificate")
        where = f"is {elsewhere}, " if isinstance(elsewhere, str) else "is not embedded, "
        why = f"its client certificate {where}which its user rotates itself"
        return SourceKubeconfig(path.name, path, data, cluster_name, server, None, why)
    certificate = _embedded_certificate(path, cert_data)
    _check_client(path, user, certificate, ca)
    return SourceKubeconfig(path.name, path, data, cluster_name, server, certificate)


def _current_name(config: dict[str, Any], key: str) -> str:
    contexts = {c["name"]: c.get("context") or {} for c in config.get("contexts") or []}
    return str(contexts.get(config.get("current-context"), {}).get(key, ""))


def _decode(path: Path, value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{path}: {what} is not base64") from None


def _check_trusts(path: Path, cluster: dict[str, Any], ca: x509.Certificate) -> None:
    """The kubeconfig must trust the imported CA (kubeadm embeds ca.crt)."""
    ca_data = cluster.get("certificate-authority-data")
    if not isinstance(ca_data, str):
        return  # a file reference (certificate-authority:): not ours to check
    try:
        trusted = x509.load_pem_x509_certificates(_decode(path, ca_data, "certificate-authority-data"))
    except ValueError:
        raise InvalidInput(f"{path}: certificate-authority-data holds no PEM certificate") from None
    if ca not in trusted:
        raise InvalidInput(f"{path} trusts another CA than the imported ca.crt ({ca.subject.rfc4514_string()})")


def _embedded_certificate(path: Path, data: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_decode(path, data, "client-certificate-data"))
    except ValueError:
        raise InvalidInput(f"{path}: client-certificate-data is not a PEM certificate") from None


def _check_client(path: Path, user: dict[str, Any], certificate: x509.Certificate, ca: x509.Certificate) -> None:
    if not issued_by(certificate, ca):
        raise InvalidInput(f"{path}: its client certificate is not signed by the imported ca.crt")
    key_data = user.get("client-key-data")
    if not isinstance(key_data, str):
        raise InvalidInput(f"{path}: its client certificate is embedded but its key is not (client-key-data)")
    key = load_private_key_pem(_decode(path, key_data, "client-key-data"), source=f"{path} client-key-data")
    if not keys_match(key, certificate.public_key()):  # type: ignore[arg-type]
        raise InvalidInput(f"{path}: client-key-data does not match its client certificate")
