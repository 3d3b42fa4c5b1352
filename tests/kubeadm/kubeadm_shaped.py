"""/etc/kubernetes as `kubeadm init` (v1.33) leaves it, written with the openssl command line.

Independent of authsvc's own tree code: subjects, SANs (in kubeadm's order: pkiutil's
GetAPIServerAltNames and GetEtcdAltNames), kubeconfigs and PKCS#1 keys are spelled out here,
so that adopting the tree tests authsvc against kubeadm's shape, not against itself.

    etc/pki/...                     the CAs, leaves, sa.key/sa.pub (openssl: PKCS#1 keys)
    etc/admin.conf, super-admin.conf, controller-manager.conf, scheduler.conf   (embedded certificates)
    etc/kubelet.conf                client certificate /var/lib/kubelet/pki/kubelet-client-current.pem
                                    (as after the kubelet's TLS bootstrap: the kubelet rotates it)
    etc/kubeadm-config.yaml         the ClusterConfiguration + InitConfiguration the cluster was made with

The real `kubeadm` binary is not needed (`kubeadm init` would also want a container runtime).
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CA_EXT = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,keyEncipherment,keyCertSign\n"
LEAF_KU = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
CAS = {"ca": "kubernetes", "front-proxy-ca": "front-proxy-ca", "etcd/ca": "etcd-ca"}
KUBELET_CLIENT_FILE = "/var/lib/kubelet/pki/kubelet-client-current.pem"
APISERVER_KUBELET_CLIENT = "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client"


@dataclass(frozen=True)
class KubeadmShape:
    """What `kubeadm init` was given (flags or configuration)."""

    node_name: str = "cp-7"
    advertise_address: str = "127.0.0.7"
    control_plane_endpoint: str | None = "k8s.example.test:7443"
    cluster_name: str = "prod-eu"
    service_cidr: str = "10.96.0.0/12"
    dns_domain: str = "cluster.local"
    extra_sans: tuple[str, ...] = ("api.example.test", "192.0.2.50")
    bind_port: int = 6443

    @property
    def service_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr).network_address + 1)

    @property
    def endpoint_url(self) -> str:
        return f"https://{self.control_plane_endpoint}" if self.control_plane_endpoint else self.local_url

    @property
    def local_url(self) -> str:
        return f"https://{self.advertise_address}:{self.bind_port}"

    def apiserver_sans(self) -> str:
        """GetAPIServerAltNames, de-duplicated as RemoveDuplicateAltNames: DNS sorted, IPs in order."""
        dns = {self.node_name, "kubernetes", "kubernetes.default", "kubernetes.default.svc"}
        dns.add(f"kubernetes.default.svc.{self.dns_domain}")
        ips = [self.service_ip, self.advertise_address]
        names = [self.control_plane_endpoint.rsplit(":", 1)[0]] if self.control_plane_endpoint else []
        for name in [*names, *self.extra_sans]:
            if _is_ip(name):
                ips.append(name)
            else:
                dns.add(name)
        return _san_text(sorted(dns), list(dict.fromkeys(ips)))

    def etcd_sans(self) -> str:
        """GetEtcdAltNames: node name, localhost; advertise address, 127.0.0.1, ::1."""
        ips = list(dict.fromkeys([self.advertise_address, "127.0.0.1", "::1"]))
        return _san_text(sorted({self.node_name, "localhost"}), ips)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _san_text(dns: list[str], ips: list[str]) -> str:
    return ",".join([f"DNS:{d}" for d in dns] + [f"IP:{ip}" for ip in ips])


def ssl(openssl: Path, *args: str | Path, cwd: Path) -> None:
    result = subprocess.run([str(openssl), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def make_key(openssl: Path, pki: Path, base: str) -> None:
    # kubeadm writes PKCS#1 ("RSA PRIVATE KEY"); -traditional makes openssl 3 do the same.
    ssl(openssl, "genrsa", "-traditional", "-out", f"{base}.key", "2048", cwd=pki)
    (pki / f"{base}.key").chmod(0o600)


def req_config(pki: Path, ext: Path) -> Path:
    config = pki / "req.cnf"
    config.write_text("[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\n" + ext.read_text())
    return config


def make_ca(openssl: Path, pki: Path, base: str, cn: str) -> None:
    make_key(openssl, pki, base)
    ext = pki / "ca.ext"
    ext.write_text(CA_EXT + f"subjectAltName=DNS:{cn}\n")
    request = ["req", "-x509", "-new", "-key", f"{base}.key", "-subj", f"/CN={cn}", "-days", "3650", "-sha256"]
    ssl(openssl, *request, "-out", f"{base}.crt", "-extensions", "v3_ca", "-config", req_config(pki, ext), cwd=pki)
    ext.unlink()
    (pki / "req.cnf").unlink()


def make_leaf(openssl: Path, pki: Path, base: str, ca: str, subject: str, eku: str, san: str) -> None:
    make_key(openssl, pki, base)
    ext = pki / "leaf.ext"
    ext.write_text(LEAF_KU + f"extendedKeyUsage={eku}\n" + (f"subjectAltName={san}\n" if san else ""))
    ssl(openssl, "req", "-new", "-key", f"{base}.key", "-subj", subject, "-out", "leaf.csr", cwd=pki)
    signing = ["x509", "-req", "-in", "leaf.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-days", "365"]
    serial = f"0x{secrets.token_hex(8)}"
    ssl(openssl, *signing, "-set_serial", serial, "-sha256", "-extfile", ext, "-out", f"{base}.crt", cwd=pki)
    for leftover in ("leaf.csr", "leaf.ext"):
        (pki / leftover).unlink()


def leaves(shape: KubeadmShape) -> dict[str, tuple[str, str, str, str]]:
    """base name: (CA, subject, extendedKeyUsage, subjectAltName or "") as certlist.go has them."""
    etcd = shape.etcd_sans()
    return {
        "apiserver": ("ca", "/CN=kube-apiserver", "serverAuth", shape.apiserver_sans()),
        "apiserver-kubelet-client": ("ca", APISERVER_KUBELET_CLIENT, "clientAuth", ""),
        "front-proxy-client": ("front-proxy-ca", "/CN=front-proxy-client", "clientAuth", ""),
        "etcd/server": ("etcd/ca", f"/CN={shape.node_name}", "serverAuth,clientAuth", etcd),
        "etcd/peer": ("etcd/ca", f"/CN={shape.node_name}", "serverAuth,clientAuth", etcd),
        "etcd/healthcheck-client": ("etcd/ca", "/CN=kube-etcd-healthcheck-client", "clientAuth", ""),
        "apiserver-etcd-client": ("etcd/ca", "/CN=kube-apiserver-etcd-client", "clientAuth", ""),
    }


# kubeconfig file: (user, subject, which server)
KUBECONFIGS = {
    "admin.conf": ("kubernetes-admin", "/O=kubeadm:cluster-admins/CN=kubernetes-admin", "endpoint"),
    "super-admin.conf": ("kubernetes-super-admin", "/O=system:masters/CN=kubernetes-super-admin", "endpoint"),
    "controller-manager.conf": ("system:kube-controller-manager", "/CN=system:kube-controller-manager", "local"),
    "scheduler.conf": ("system:kube-scheduler", "/CN=system:kube-scheduler", "local"),
}


def write_pki(openssl: Path, pki: Path, shape: KubeadmShape) -> None:
    (pki / "etcd").mkdir(parents=True)
    for base, cn in CAS.items():
        make_ca(openssl, pki, base, cn)
    for base, (ca, subject, eku, san) in leaves(shape).items():
        make_leaf(openssl, pki, base, ca, subject, eku, san)
    make_key(openssl, pki, "sa")
    ssl(openssl, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for cert in [*pki.rglob("*.crt"), pki / "sa.pub"]:
        cert.chmod(0o644)


def kubeconfig(shape: KubeadmShape, user: str, server: str, ca_pem: bytes, credentials: dict[str, str]) -> str:
    """kubeadm's kubeconfig layout (clientcmd's output, keys sorted)."""
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {"certificate-authority-data": base64.b64encode(ca_pem).decode(), "server": server},
                "name": shape.cluster_name,
            }
        ],
        "contexts": [
            {"context": {"cluster": shape.cluster_name, "user": user}, "name": f"{user}@{shape.cluster_name}"}
        ],
        "current-context": f"{user}@{shape.cluster_name}",
        "kind": "Config",
        "preferences": {},
        "users": [{"name": user, "user": credentials}],
    }
    return yaml.safe_dump(document)


def write_kubeconfigs(openssl: Path, etc: Path, shape: KubeadmShape) -> None:
    pki, ca_pem = etc / "pki", (etc / "pki" / "ca.crt").read_bytes()
    work = etc / "kubeconfig-work"
    work.mkdir()
    for name, (user, subject, which) in KUBECONFIGS.items():
        base = name.removesuffix(".conf")
        make_leaf(openssl, work, base, str(pki / "ca"), subject, "clientAuth", "")
        credentials = {
            "client-certificate-data": base64.b64encode((work / f"{base}.crt").read_bytes()).decode(),
            "client-key-data": base64.b64encode((work / f"{base}.key").read_bytes()).decode(),
        }
        server = shape.endpoint_url if which == "endpoint" else shape.local_url
        _write_private(etc / name, kubeconfig(shape, user, server, ca_pem, credentials))
    node_user = f"system:node:{shape.node_name}"
    rotating = {"client-certificate": KUBELET_CLIENT_FILE, "client-key": KUBELET_CLIENT_FILE}
    _write_private(etc / "kubelet.conf", kubeconfig(shape, node_user, shape.local_url, ca_pem, rotating))
    for leftover in work.iterdir():
        leftover.unlink()
    work.rmdir()


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.write_text(text)


def cluster_configuration(shape: KubeadmShape) -> str:
    """The kubeadm configuration the cluster was made with (kubeadm.k8s.io/v1beta4)."""
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "InitConfiguration",
            "nodeRegistration": {"name": shape.node_name},
            "localAPIEndpoint": {"advertiseAddress": shape.advertise_address, "bindPort": shape.bind_port},
        },
        {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "ClusterConfiguration",
            "clusterName": shape.cluster_name,
            "controlPlaneEndpoint": shape.control_plane_endpoint or "",
            "networking": {"serviceSubnet": shape.service_cidr, "dnsDomain": shape.dns_domain},
            "apiServer": {"certSANs": list(shape.extra_sans)},
            "encryptionAlgorithm": "RSA-2048",
            "certificateValidityPeriod": "8760h0m0s",
        },
    ]
    return yaml.safe_dump_all(documents)


def write_kubeadm_etc(openssl: Path, etc: Path, shape: KubeadmShape) -> Path:
    """Write `etc` (an /etc/kubernetes) for `shape`; return it."""
    etc.mkdir(parents=True)
    write_pki(openssl, etc / "pki", shape)
    write_kubeconfigs(openssl, etc, shape)
    (etc / "kubeadm-config.yaml").write_text(cluster_configuration(shape))
    return etc
