"""kubeadm's certificate tree as frozen data, and the pure functions that build it.

Matched release: kubeadm v1.33, read from kubeadm's own source (kubernetes/kubernetes):
cmd/kubeadm/app/phases/certs/certlist.go (the certificate list; v1beta4's
CertificateValidityPeriod/CACertificateValidityPeriod, so >= v1.31), cmd/kubeadm/app/constants/
constants.go (names, CNs, groups, lifetimes), cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go
(getKubeConfigSpecsBase) and cmd/kubeadm/app/util/pkiutil/pki_helpers.go (GetAPIServerAltNames,
GetEtcdAltNames, GetEtcdPeerAltNames, NewSignedCert, NewSelfSignedCACert). The facts that pin
the release:
- v1.29: admin.conf is in `kubeadm:cluster-admins`, super-admin.conf in `system:masters`;
  apiserver-kubelet-client uses `kubeadm:cluster-admins`; etcd/healthcheck-client and
  apiserver-etcd-client carry no O (kubernetes PRs 121837, 119859, 120521).
- v1.31: ClusterConfiguration v1beta4 (encryptionAlgorithm, validity periods).
- v1.33: ControlPlaneKubeletLocalMode is beta and on by default (KEP-4471): `kubeadm init`
  points kubelet.conf at the node's own API server, not at the control-plane endpoint.

What kubeadm builds, and this module too: CA certificates with CN as their only DNS SAN,
KeyUsage digitalSignature+keyEncipherment+keyCertSign, CA:TRUE without pathlen, 10 years;
leaves with KeyUsage digitalSignature+keyEncipherment (RSA), 1 year, backdated 5 minutes;
DNS SANs sorted and de-duplicated, IP SANs de-duplicated in order. One deliberate
difference: authsvc's CAs also carry cRLSign, because authsvc signs CRLs with them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509

from pki.ca import CertificateAuthority
from pki.errors import InvalidValue
from pki.keys import KeyType, PrivateKey, PublicKey, generate_private_key
from pki.names import (
    NODE_PREFIX,
    NODES_GROUP,
    SubjectAltNames,
    check_dns_name,
    check_name,
    check_node_name,
    is_ip_address,
    user_subject,
)
from pki.profiles import CLIENT, PEER, SERVER, Profile

KUBEADM_RELEASE = "v1.33"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CERTIFICATE_VALIDITY = dt.timedelta(days=365)  # constants.CertificateValidityPeriod
CA_CERTIFICATE_VALIDITY = dt.timedelta(days=3650)  # constants.CACertificateValidityPeriod
API_SERVER_PORT = 6443  # --apiserver-bind-port default
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_DNS_DOMAIN = "cluster.local"

MASTERS_GROUP = "system:masters"  # constants.SystemPrivilegedGroup
CLUSTER_ADMINS_GROUP = "kubeadm:cluster-admins"  # constants.ClusterAdminsGroupAndClusterRoleBinding

# ClusterConfiguration.encryptionAlgorithm (v1beta4) -> our key types. RSA-2048 is kubeadm's default.
ENCRYPTION_ALGORITHMS: Mapping[str, KeyType] = {
    "RSA-2048": KeyType.RSA_2048,
    "RSA-3072": KeyType.RSA_3072,
    "RSA-4096": KeyType.RSA_4096,
    "ECDSA-P256": KeyType.EC_P256,
    "ECDSA-P384": KeyType.EC_P384,  # accepted by kubeadm from v1.34
}
DEFAULT_ENCRYPTION_ALGORITHM = "RSA-2048"

# kubeadm's CAs: CA:TRUE with no path length (Go's BasicConstraintsValid + IsCA, MaxPathLen unset).
KUBEADM_CA = Profile("kubeadm-ca", (), CA_CERTIFICATE_VALIDITY, is_ca=True, path_length=None)


class SanRule(StrEnum):
    """Which of pkiutil's AltNames functions computes a certificate's SANs."""

    NONE = "none"
    APISERVER = "apiserver"  # GetAPIServerAltNames
    ETCD = "etcd"  # GetEtcdAltNames / GetEtcdPeerAltNames (same defaults)


class Endpoint(StrEnum):
    """Which API server URL a kubeconfig points at."""

    CONTROL_PLANE = "control-plane"  # GetControlPlaneEndpoint
    LOCAL = "local"  # GetLocalAPIEndpoint: https://<advertise address>:<bind port>


@dataclass(frozen=True, slots=True)
class CASpec:
    name: str  # kubeadm's name in `certs check-expiration` ("etcd-ca")
    base_name: str  # file base name under pki/ ("etcd/ca")
    common_name: str


@dataclass(frozen=True, slots=True)
class CertSpec:
    name: str  # kubeadm's name ("etcd-server"), also accepted by `certs renew`
    base_name: str  # file base name and inventory name ("etcd/server")
    ca: str  # base name of the signing CA
    common_name: str | None  # None: the node name (setCommonNameToNodeName)
    organizations: tuple[str, ...]
    profile: Profile  # fixes the ExtKeyUsages
    sans: SanRule = SanRule.NONE


@dataclass(frozen=True, slots=True)
class KubeconfigSpec:
    file_name: str  # also kubeadm's name and the inventory name ("admin.conf")
    client_name: str | None  # None: system:node:<node name>
    organizations: tuple[str, ...]
    endpoint: Endpoint
    ca: str = "ca"


CA_SPECS: tuple[CASpec, ...] = (
    CASpec("ca", "ca", "kubernetes"),
    CASpec("front-proxy-ca", "front-proxy-ca", "front-proxy-ca"),
    CASpec("etcd-ca", "etcd/ca", "etcd-ca"),
)

# In the order of certlist.go's GetDefaultCertList.
CERT_SPECS: tuple[CertSpec, ...] = (
    CertSpec("apiserver", "apiserver", "ca", "kube-apiserver", (), SERVER, SanRule.APISERVER),
    CertSpec(
        "apiserver-kubelet-client",
        "apiserver-kubelet-client",
        "ca",
        "kube-apiserver-kubelet-client",
        (CLUSTER_ADMINS_GROUP,),
        CLIENT,
    ),
    CertSpec("front-proxy-client", "front-proxy-client", "front-proxy-ca", "front-proxy-client", (), CLIENT),
    # etcd 3.2+ wants clientAuth on its serving certificate too (certlist.go's TODO).
    CertSpec("etcd-server", "etcd/server", "etcd/ca", None, (), PEER, SanRule.ETCD),
    CertSpec("etcd-peer", "etcd/peer", "etcd/ca", None, (), PEER, SanRule.ETCD),
    CertSpec(
        "etcd-healthcheck-client", "etcd/healthcheck-client", "etcd/ca", "kube-etcd-healthcheck-client", (), CLIENT
    ),
    CertSpec("apiserver-etcd-client", "apiserver-etcd-client", "etcd/ca", "kube-apiserver-etcd-client", (), CLIENT),
)

KUBECONFIG_SPECS: tuple[KubeconfigSpec, ...] = (
    KubeconfigSpec("admin.conf", "kubernetes-admin", (CLUSTER_ADMINS_GROUP,), Endpoint.CONTROL_PLANE),
    KubeconfigSpec("super-admin.conf", "kubernetes-super-admin", (MASTERS_GROUP,), Endpoint.CONTROL_PLANE),
    KubeconfigSpec("kubelet.conf", None, (NODES_GROUP,), Endpoint.LOCAL),
    KubeconfigSpec("controller-manager.conf", "system:kube-controller-manager", (), Endpoint.LOCAL),
    KubeconfigSpec("scheduler.conf", "system:kube-scheduler", (), Endpoint.LOCAL),
)


def key_type_for(encryption_algorithm: str) -> KeyType:
    try:
        return ENCRYPTION_ALGORITHMS[encryption_algorithm]
    except KeyError:
        known = ", ".join(ENCRYPTION_ALGORITHMS)
        raise InvalidValue(f"unknown encryption algorithm {encryption_algorithm!r} (one of: {known})") from None


def ca_spec(base_name: str) -> CASpec:
    for spec in CA_SPECS:
        if base_name in (spec.base_name, spec.name):
            return spec
    raise InvalidValue(f"{base_name!r} is not one of kubeadm's CAs ({', '.join(s.base_name for s in CA_SPECS)})")


def find_spec(name: str) -> CertSpec | KubeconfigSpec | None:
    """A leaf or kubeconfig by kubeadm's name ("etcd-server"), base name ("etcd/server") or file."""
    for spec in CERT_SPECS:
        if name in (spec.name, spec.base_name):
            return spec
    for kspec in KUBECONFIG_SPECS:
        if name in (kspec.file_name, kspec.file_name.removesuffix(".conf")):
            return kspec
    return None


# --- cluster parameters and the names derived from them -------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterParams:
    """What kubeadm's InitConfiguration contributes to the certificates and kubeconfigs."""

    cluster_name: str = "kubernetes"
    node_name: str = "control-plane"
    advertise_address: str = "127.0.0.1"
    control_plane_endpoint: str | None = None
    service_cidr: str = DEFAULT_SERVICE_CIDR
    dns_domain: str = DEFAULT_DNS_DOMAIN
    apiserver_extra_sans: tuple[str, ...] = ()
    bind_port: int = API_SERVER_PORT

    def __post_init__(self) -> None:
        """Raise ValueError naming the first parameter kubeadm would refuse."""
        check_name(self.cluster_name, what="cluster name")
        if check_node_name(self.node_name) != self.node_name:
            raise InvalidValue(f"node name {self.node_name!r} must be lower case (kubeadm's node names are)")
        parse_advertise_address(self.advertise_address)
        first_service_ip(self.service_cidr)
        check_dns_name(self.dns_domain)
        if self.control_plane_endpoint:
            split_host_port(self.control_plane_endpoint)
        classify_sans(self.apiserver_extra_sans)


def parse_advertise_address(value: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise InvalidValue(f"advertise address {value!r} is not an IP address") from None


def first_service_ip(service_cidr: str) -> IPAddress:
    """The API server's ClusterIP: the first address of the (first) service CIDR (GetAPIServerVirtualIP)."""
    first = service_cidr.split(",")[0].strip()
    try:
        network = ipaddress.ip_network(first, strict=True)
    except ValueError:
        raise InvalidValue(f"service CIDR {service_cidr!r} is not a network address in CIDR form") from None
    if network.num_addresses < 10:
        # kubeadm: MinimumAddressesInServiceSubnet (the DNS service is the tenth address).
        raise InvalidValue(f"service CIDR {first} is too small (kubeadm needs at least 10 addresses)")
    return network.network_address + 1


def split_host_port(endpoint: str, default_port: int = API_SERVER_PORT) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address -> (host, port)."""
    host, port_text = endpoint, ""
    if endpoint.startswith("["):
        host, _, rest = endpoint[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif endpoint.count(":") == 1:
        host, _, port_text = endpoint.partition(":")
    port = default_port
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InvalidValue(f"control-plane endpoint {endpoint!r} has an invalid port")
        port = int(port_text)
    if is_ip_address(host):
        return host, port
    try:
        return check_node_name(host), port  # a host name: a DNS-1123 subdomain, no wildcard
    except ValueError:
        raise InvalidValue(
            f"control-plane endpoint {endpoint!r}: {host!r} is neither an IP address nor a DNS name"
        ) from None


def https_url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def control_plane_url(params: ClusterParams) -> str:
    """GetControlPlaneEndpoint: the endpoint's host and port (bind port when none), else the local one."""
    if params.control_plane_endpoint:
        return https_url(*split_host_port(params.control_plane_endpoint, params.bind_port))
    return local_api_url(params)


def local_api_url(params: ClusterParams) -> str:
    return https_url(str(parse_advertise_address(params.advertise_address)), params.bind_port)


def classify_sans(values: Iterable[str]) -> SubjectAltNames:
    """appendSANsToAltNames: an IP if it parses as one, else an RFC 1123 (wildcard) DNS name."""
    sans = SubjectAltNames.parse(values)  # a bare value is exactly that: IP if it parses, else checked DNS
    if sans.uris or sans.emails:
        raise InvalidValue("extra SANs are IP addresses or DNS names (no URI: or email: entries)")
    return sans


def kubeadm_alt_names(dns: Iterable[str], ips: Iterable[IPAddress]) -> SubjectAltNames:
    """RemoveDuplicateAltNames: DNS names sorted and unique, IPs unique in their order."""
    return SubjectAltNames(tuple(sorted(set(dns))), tuple(dict.fromkeys(ips)))


def apiserver_alt_names(params: ClusterParams) -> SubjectAltNames:
    dns = [
        params.node_name,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{params.dns_domain}",
    ]
    ips = [first_service_ip(params.service_cidr), parse_advertise_address(params.advertise_address)]
    if params.control_plane_endpoint:
        host, _ = split_host_port(params.control_plane_endpoint)
        if is_ip_address(host):
            ips.append(ipaddress.ip_address(host))
        else:
            dns.append(host)
    extra = classify_sans(params.apiserver_extra_sans)
    return kubeadm_alt_names([*dns, *extra.dns], [*ips, *extra.ips])


def etcd_alt_names(params: ClusterParams) -> SubjectAltNames:
    """GetEtcdAltNames and GetEtcdPeerAltNames share these defaults (etcd listens there)."""
    ips = [
        parse_advertise_address(params.advertise_address),
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    return kubeadm_alt_names([params.node_name, "localhost"], ips)


def apiserver_required_names(service_cidr: str, dns_domain: str) -> tuple[str, ...]:
    """The SANs every client of the `kubernetes` Service relies on (what `pki check` insists on)."""
    return (
        f"IP:{first_service_ip(service_cidr)}",
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        f"DNS:kubernetes.default.svc.{dns_domain}",
    )


# --- building ---------------------------------------------------------------------------------


def ca_alt_names(spec: CASpec) -> SubjectAltNames:
    # certutil.NewSelfSignedCACert puts the CN in DNSNames; kubeadm's CAs all carry it.
    return SubjectAltNames(dns=(spec.common_name,))


def leaf_subject(spec: CertSpec, params: ClusterParams) -> x509.Name:
    return user_subject(spec.common_name or params.node_name, spec.organizations)


def leaf_alt_names(spec: CertSpec, params: ClusterParams) -> SubjectAltNames:
    if spec.sans is SanRule.APISERVER:
        return apiserver_alt_names(params)
    if spec.sans is SanRule.ETCD:
        return etcd_alt_names(params)
    return SubjectAltNames()


def kubeconfig_user(spec: KubeconfigSpec, params: ClusterParams) -> tuple[str, tuple[str, ...]]:
    return (spec.client_name or f"{NODE_PREFIX}{params.node_name}", spec.organizations)


def kubeconfig_server(spec: KubeconfigSpec, params: ClusterParams) -> str:
    return control_plane_url(params) if spec.endpoint is Endpoint.CONTROL_PLANE else local_api_url(params)


@dataclass(frozen=True, slots=True)
class IssuedPair:
    """One leaf of the tree: which spec, its CA, its certificate and key."""

    name: str  # inventory name: base name ("etcd/server") or kubeconfig file ("admin.conf")
    ca: str
    profile: Profile
    certificate: x509.Certificate
    key: PrivateKey


def build_leaf(
    spec: CertSpec,
    params: ClusterParams,
    ca: CertificateAuthority,
    *,
    key: PrivateKey,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> x509.Certificate:
    return ca.issue(
        subject=leaf_subject(spec, params),
        public_key=key.public_key(),
        profile=spec.profile,
        now=now,
        ttl=lifetime,
        sans=leaf_alt_names(spec, params),
    )


def build_kubeconfig_cert(
    spec: KubeconfigSpec,
    params: ClusterParams,
    ca: CertificateAuthority,
    *,
    key: PublicKey,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> x509.Certificate:
    user, groups = kubeconfig_user(spec, params)
    return ca.issue(subject=user_subject(user, groups), public_key=key, profile=CLIENT, now=now, ttl=lifetime)


def build_tree(
    params: ClusterParams,
    cas: Mapping[str, CertificateAuthority],
    *,
    now: dt.datetime,
    lifetime: dt.timedelta = CERTIFICATE_VALIDITY,
    key_type: KeyType = KeyType.RSA_2048,
    new_key: Callable[[KeyType], PrivateKey] = generate_private_key,
    specs: Sequence[CertSpec | KubeconfigSpec] = (*CERT_SPECS, *KUBECONFIG_SPECS),
) -> tuple[IssuedPair, ...]:
    """Every leaf and kubeconfig client certificate of `specs` whose CA is in `cas`, signed now."""
    issued = []
    for spec in specs:
        ca = cas.get(spec.ca)
        if ca is None:
            continue
        key = new_key(key_type)
        if isinstance(spec, CertSpec):
            cert = build_leaf(spec, params, ca, key=key, now=now, lifetime=lifetime)
            issued.append(IssuedPair(spec.base_name, spec.ca, spec.profile, cert, key))
        else:
            cert = build_kubeconfig_cert(spec, params, ca, key=key.public_key(), now=now, lifetime=lifetime)
            issued.append(IssuedPair(spec.file_name, spec.ca, CLIENT, cert, key))
    return tuple(issued)
