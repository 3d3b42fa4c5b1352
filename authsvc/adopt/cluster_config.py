"""A kubeadm configuration file, read for what it says about the certificates.

kubeadm's `--config` file (or `kubectl -n kube-system get cm kubeadm-config -o
jsonpath='{.data.ClusterConfiguration}'`): YAML documents of kind ClusterConfiguration and
InitConfiguration (kubeadm.k8s.io/v1beta3 or v1beta4). Only the fields that shape the PKI are
read; the others are ignored. The values come back under the names of authsvc's `cluster:`
settings, each checked when the settings are built.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from authsvc.errors import InvalidInput
from pki.store import read_bytes

KUBEADM_GROUP = "kubeadm.k8s.io/"
# Go's time.Duration text, as kubeadm writes certificateValidityPeriod ("8760h0m0s").
_GO_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def read_cluster_config(path: Path) -> dict[str, tuple[Any, str]]:
    """`cluster:` field -> (value, where it was read), from a kubeadm configuration file."""
    try:
        documents = [d for d in yaml.safe_load_all(read_bytes(path, what="kubeadm configuration")) if d]
    except yaml.YAMLError as e:
        raise InvalidInput(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    kinds = {
        d.get("kind"): d
        for d in documents
        if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith(KUBEADM_GROUP)
    }
    if not {"ClusterConfiguration", "InitConfiguration"} & kinds.keys():
        raise InvalidInput(f"{path} holds no kubeadm ClusterConfiguration or InitConfiguration (kubeadm.k8s.io)")
    values: dict[str, tuple[Any, str]] = {}
    _cluster_configuration(kinds.get("ClusterConfiguration") or {}, path, values)
    _init_configuration(kinds.get("InitConfiguration") or {}, path, values)
    return values


def _get(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


# ClusterConfiguration field -> cluster setting
CLUSTER_FIELDS = {
    "clusterName": "name",
    "controlPlaneEndpoint": "control_plane_endpoint",
    "networking.serviceSubnet": "service_cidr",
    "networking.dnsDomain": "dns_domain",
    "apiServer.certSANs": "apiserver_cert_extra_sans",
    "encryptionAlgorithm": "encryption_algorithm",
}
INIT_FIELDS = {"nodeRegistration.name": "node_name", "localAPIEndpoint.advertiseAddress": "advertise_address"}


def _cluster_configuration(document: dict[str, Any], path: Path, values: dict[str, tuple[Any, str]]) -> None:
    for source, field in CLUSTER_FIELDS.items():
        value = _get(document, source)
        if value not in (None, "", []):
            values[field] = (value, f"{path.name}: ClusterConfiguration.{source}")
    validity = _get(document, "certificateValidityPeriod")
    if validity:
        where = f"{path.name}: ClusterConfiguration.certificateValidityPeriod"
        values["certificate_validity_period"] = (go_duration(str(validity), where), where)


def _init_configuration(document: dict[str, Any], path: Path, values: dict[str, tuple[Any, str]]) -> None:
    for source, field in INIT_FIELDS.items():
        value = _get(document, source)
        if value not in (None, ""):
            values[field] = (value, f"{path.name}: InitConfiguration.{source}")


def go_duration(text: str, where: str) -> dt.timedelta:
    """`8760h0m0s`, `8760h`, `90m` (Go's time.Duration, whole seconds) as a timedelta."""
    match = _GO_DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise InvalidInput(f"{where}: {text!r} is not a duration such as 8760h0m0s")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)
