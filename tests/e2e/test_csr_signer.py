"""`authsvc csr-signer` on the session control plane: kube-apiserver 1.20 with no controller-manager
(nothing else signs), the real kubectl, openssl for the requests, and signer processes whose user
has exactly config/kubernetes/csr-signer/rbac.yaml's permissions (the rendered manifests are
applied to the API server first).

Shown here: a person's request signed and usable (and its twin: not signed while no signer
runs); the policy's refusals ending Failed; kubelet-serving requests approved against the Node's
addresses or denied; a bootstrap token's node client request approved; two replicas signing each
request once, and the follower taking over from a killed leader within the lease duration.
Restarting the API server mid-watch needs a control plane of its own:
test_csr_signer_restart.py.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.components.kube_apiserver import REPO_ROOT, write_kubeconfig
from tests.components.support import require_binary
from tests.e2e.cluster import E2ECluster
from tests.e2e.csr_support import (
    CLIENT_USAGES,
    LEASE_SECONDS,
    RETRY_SECONDS,
    SERVING_USAGES,
    Csrs,
    SignerProcess,
    certificate,
    condition,
    csr_manifest,
    decided,
    openssl_csr,
    signer_config,
    wait_until,
)
from tests.e2e.harness import AUTHSVC, child_env, run

CLIENT = "kubernetes.io/kube-apiserver-client"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
MANIFESTS = REPO_ROOT / "config" / "kubernetes" / "csr-signer"
SIGNER_USER = "authsvc-csr-signer"
DECISION_TIMEOUT = 20.0


@dataclass
class SignerEnv:
    cluster: E2ECluster
    work: Path
    openssl: Path
    admin: Csrs
    node: Csrs  # as system:node:n1
    signer_kubeconfig: Path
    processes: dict[str, SignerProcess] = field(default_factory=dict)

    def audit_log(self, identity: str) -> Path:
        return self.work / f"csr-audit-{identity}.log"

    def signer(self, identity: str) -> SignerProcess:
        """A running signer named `identity` (started if needed)."""
        running = self.processes.get(identity)
        if running is not None and running.alive():
            return running
        config = signer_config(
            self.cluster.home, self.work / f"signer-{identity}.yaml", audit_log=self.audit_log(identity)
        )
        process = SignerProcess(
            self.cluster.home,
            config,
            self.signer_kubeconfig,
            identity,
            self.work / f"signer-{identity}.log",
            child_env(home_dir=self.work),
        )
        self.processes[identity] = process.start()
        return process

    def leader(self) -> str:
        result = self.cluster.kubectl(
            self.cluster.admin_kubeconfig,
            "get", "lease", "authsvc-csr-signer", "-n", "authsvc", "-o", "jsonpath={.spec.holderIdentity}",
        )  # fmt: skip
        return result.stdout.strip() if result.ok else ""

    def lease(self) -> dict[str, Any]:
        out = self.cluster.admin("get", "lease", "authsvc-csr-signer", "-n", "authsvc", "-o", "json")
        spec: dict[str, Any] = json.loads(out)["spec"]
        return spec

    def wait_for_leader(self, identity: str, timeout: float = 20.0) -> None:
        wait_until(lambda: self.leader() == identity, lambda: f"leader is {self.leader()!r}", timeout)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.stop()
        self.processes.clear()

    def audit(self) -> list[dict[str, Any]]:
        lines = []
        for identity in ("a", "b", "c"):
            path = self.audit_log(identity)
            if path.exists():
                lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [line for line in lines if line.get("action") == "csr.decision"]

    def wait_decided(self, *names: str, timeout: float = DECISION_TIMEOUT) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}

        def done() -> bool:
            found.clear()
            found.update({n: c for n, c in self.admin.all().items() if n in names})
            return len(found) == len(names) and all(decided(c) for c in found.values())

        wait_until(done, lambda: json.dumps({n: c.get("status") for n, c in found.items()})[:2000], timeout)
        return found

    def request(self, name: str, subject: str, signer: str = CLIENT, usages: tuple[str, ...] = CLIENT_USAGES,
                **openssl: Any) -> tuple[Path, str]:  # fmt: skip
        key, csr = openssl_csr(self.openssl, self.work, name, subject, **openssl)
        return key, csr_manifest(name, csr, signer, usages)


def apply_rendered_manifests(cluster: E2ECluster) -> None:
    """config/kubernetes/csr-signer as `kubectl apply -k` would apply it (the API server checks every
    object; with no controller-manager the Deployment makes no pods)."""
    kubectl = cluster.kubectl
    rendered = run([str(kubectl.binary), "kustomize", str(MANIFESTS)], env=kubectl.env)
    assert rendered.ok, rendered.describe()
    namespace = run(
        [str(kubectl.binary), f"--kubeconfig={cluster.admin_kubeconfig}", "create", "namespace", "authsvc"],
        env=kubectl.env,
    )
    assert namespace.ok or "AlreadyExists" in namespace.stderr, namespace.describe()
    applied = run(
        [str(kubectl.binary), f"--kubeconfig={cluster.admin_kubeconfig}", "apply", "-f", "-"],
        env=kubectl.env,
        input=rendered.stdout,
    )
    assert applied.ok, applied.describe()


@pytest.fixture(scope="module")
def env(cluster: E2ECluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignerEnv]:
    work = tmp_path_factory.mktemp("csr-signer")
    apply_rendered_manifests(cluster)
    # The signer's user in these tests, bound to the manifests' roles (in a cluster: the service account).
    cluster.authsvc.ok("certs", "create", SIGNER_USER, "--out-dir", str(work))
    signer_kubeconfig = write_kubeconfig(
        work / "signer.kubeconfig",
        cluster.server,
        cluster.ca_file,
        work / f"{SIGNER_USER}.crt",
        work / f"{SIGNER_USER}.key",
    )
    cluster.admin(
        "create", "clusterrolebinding", "e2e:csr-signer", "--clusterrole=authsvc:csr-signer", f"--user={SIGNER_USER}"
    )
    cluster.admin(
        "create", "rolebinding", "e2e:csr-signer-lease", "-n", "authsvc",
        "--role=authsvc-csr-signer-lease", f"--user={SIGNER_USER}",
    )  # fmt: skip
    # Node n1, its addresses, and its kubelet's identity (may create CSRs, as kubelets may).
    cluster.authsvc.ok("certs", "create", "n1", "--profile", "kubelet-client", "--out-dir", str(work))
    node_kubeconfig = write_kubeconfig(
        work / "n1.kubeconfig", cluster.server, cluster.ca_file, work / "n1.crt", work / "n1.key"
    )
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1"},
        "status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.1.0.5"}]},
    }
    created = run(
        [str(cluster.kubectl.binary), f"--kubeconfig={cluster.admin_kubeconfig}", "create", "-f", "-"],
        env=cluster.kubectl.env,
        input=json.dumps(node),
    )
    assert created.ok, created.describe()
    cluster.admin(
        "create", "clusterrolebinding", "e2e:n1-csr", "--clusterrole=system:node-bootstrapper", "--user=system:node:n1"
    )
    made = SignerEnv(
        cluster, work, require_binary("openssl"), Csrs(cluster.kubectl, cluster.admin_kubeconfig),
        Csrs(cluster.kubectl, node_kubeconfig), signer_kubeconfig,
    )  # fmt: skip
    try:
        yield made
    finally:
        made.stop_all()


def subject_of(pem: bytes) -> tuple[str, list[str]]:
    cert = x509.load_pem_x509_certificate(pem)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return str(cn), [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def test_a_persons_request_is_signed_only_by_a_running_signer_and_works_with_kubectl(env: SignerEnv) -> None:
    env.stop_all()
    key, manifest = env.request("erin", "/CN=erin/O=e2e-csr-team")
    env.admin.create(manifest)
    env.admin.approve("erin")
    # The twin: approved, and nothing signs it (no controller-manager, no signer running).
    before = env.admin.get("erin")
    assert condition(before, "Approved") is not None and not certificate(before)
    env.signer("a")
    env.wait_for_leader("a")
    issued = env.wait_decided("erin")["erin"]  # signed from the list the signer starts with
    pem = certificate(issued)
    assert subject_of(pem) == ("erin", ["e2e-csr-team"])
    kubeconfig = env.work / "erin.kubeconfig"
    (env.work / "erin.crt").write_bytes(pem)
    write_kubeconfig(kubeconfig, env.cluster.server, env.cluster.ca_file, env.work / "erin.crt", key)
    # kubectl authenticates as the CSR's CN: the API server names the user when it refuses...
    refused = env.cluster.kubectl(kubeconfig, "get", "secrets", "-n", "default")
    assert not refused.ok and 'User "erin" cannot list resource "secrets"' in refused.stderr, refused.describe()
    # ...and RBAC bound to that user name applies.
    env.cluster.bind("e2e:erin-reads-namespaces", user="erin")
    assert env.cluster.can_list_namespaces(kubeconfig).ok
    # Recorded in the inventory, requester = the CSR's spec.username (admin.conf's user).
    records = json.loads(env.cluster.authsvc.ok("certs", "list", "-o", "json"))
    (record,) = [r for r in records if r["name"] == "csr:erin"]
    assert record["requester"] == "kubernetes-admin" and record["commonName"] == "erin"
    assert int(record["serial"], 16) == x509.load_pem_x509_certificate(pem).serial_number
    listed = json.loads(
        env.cluster.authsvc.ok("csr", "list", "--kubeconfig", str(env.cluster.admin_kubeconfig), "-o", "json")
    )
    (row,) = [r for r in listed if r["name"] == "erin"]
    assert row["state"] == "Issued" and row["serial"] == record["serial"]


def test_expiration_seconds_is_dropped_by_the_1_20_api_server_so_the_signers_lifetime_applies(env: SignerEnv) -> None:
    """spec.expirationSeconds arrived in 1.22: 1.20 drops it (the signer honours it where it is
    kept: tests/pki/test_csr_signers.py, tests/cluster/test_csr_handler.py)."""
    env.signer("a")
    _, csr = openssl_csr(env.openssl, env.work, "frank", "/CN=frank")
    manifest = csr_manifest("frank", csr, CLIENT, CLIENT_USAGES, expiration_seconds=3600)
    # kubectl would refuse the field the 1.20 server's schema lacks; the API server itself drops it.
    created = env.admin("create", "--validate=false", "-f", "-", input=manifest)
    assert created.ok, created.describe()
    assert "expirationSeconds" not in env.admin.get("frank")["spec"]
    env.admin.approve("frank")
    cert = x509.load_pem_x509_certificate(certificate(env.wait_decided("frank")["frank"]))
    # pki.client_ttl (1 day; the certificate is backdated 5 minutes), not the hour asked for.
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=1, minutes=5)


REFUSALS = {
    # name: (subject, openssl arguments, usages, reason)
    "mallory": ("/CN=mallory/O=system:masters", {}, CLIENT_USAGES, "IdentityNotAllowed"),
    "ann": ("/CN=ann/O=kubeadm:cluster-admins", {}, CLIENT_USAGES, "IdentityNotAllowed"),
    "carl": ("/CN=carl", {"addext": ["basicConstraints=critical,CA:TRUE"]}, CLIENT_USAGES, "CARequested"),
    "rita": ("/CN=rita", {"newkey": ["rsa:1024"]}, CLIENT_USAGES, "WeakKey"),
    "sam": ("/CN=sam", {}, ("digital signature", "client auth", "server auth"), "UsagesNotAllowed"),
}


def test_approved_requests_the_policy_refuses_end_failed_with_the_reason(env: SignerEnv) -> None:
    env.signer("a")
    manifests = []
    for name, (subject, openssl, usages, _) in REFUSALS.items():
        manifests.append(env.request(name, subject, usages=usages, **openssl)[1])
    env.admin.create(*manifests)
    env.admin.approve(*REFUSALS)
    found = env.wait_decided(*REFUSALS)
    for name, (_, _, _, reason) in REFUSALS.items():
        failed = condition(found[name], "Failed")
        assert failed is not None and failed["reason"] == reason, (name, found[name]["status"])
        assert not certificate(found[name])
    assert "system:masters" in (condition(found["mallory"], "Failed") or {})["message"]
    records = json.loads(env.cluster.authsvc.ok("certs", "list", "-o", "json"))
    assert not [r for r in records if r["name"] in {f"csr:{n}" for n in REFUSALS}]
    listed = json.loads(
        env.cluster.authsvc.ok(
            "csr", "list", "--state", "failed", "--kubeconfig", str(env.cluster.admin_kubeconfig), "-o", "json"
        )
    )
    assert {r["name"]: r["reason"].split(":")[0] for r in listed if r["name"] in REFUSALS} == {
        n: r[3] for n, r in REFUSALS.items()
    }
    failed_lines = [line for line in env.audit() if line["outcome"] == "failed" and line["ids"]["csr"] in REFUSALS]
    assert {line["ids"]["csr"] for line in failed_lines} == set(REFUSALS)


def test_a_nodes_serving_request_is_approved_when_its_sans_are_on_the_node_and_denied_otherwise(
    env: SignerEnv,
) -> None:
    env.signer("a")
    subject = "/CN=system:node:n1/O=system:nodes"
    _, good = env.request("n1-serving", subject, KUBELET_SERVING, SERVING_USAGES,
                          addext=["subjectAltName=DNS:n1,IP:10.1.0.5"])  # fmt: skip
    _, bad = env.request("n1-serving-vip", subject, KUBELET_SERVING, SERVING_USAGES,
                         addext=["subjectAltName=DNS:n1,IP:10.9.9.9"])  # fmt: skip
    env.node.create(good, bad)  # as system:node:n1: the API server sets spec.username
    found = env.wait_decided("n1-serving", "n1-serving-vip")
    approved = condition(found["n1-serving"], "Approved")
    assert approved is not None and approved["reason"] == "AutoApproved"
    assert found["n1-serving"]["spec"]["username"] == "system:node:n1"
    cert = x509.load_pem_x509_certificate(certificate(found["n1-serving"]))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["n1"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.1.0.5"]
    denied = condition(found["n1-serving-vip"], "Denied")
    assert denied is not None and denied["reason"] == "SANNotOnNode" and "10.9.9.9" in denied["message"]
    assert not certificate(found["n1-serving-vip"])


def test_a_bootstrap_token_gets_a_node_client_certificate(env: SignerEnv) -> None:
    env.signer("a")
    created = json.loads(
        env.cluster.authsvc.ok(
            "token",
            "bootstrap",
            "create",
            "--kubeconfig",
            str(env.cluster.admin_kubeconfig),
            "--ttl",
            "1h",
            "-o",
            "json",
        )
    )
    joining = Csrs(env.cluster.kubectl, env.cluster.token_kubeconfig("joining-node", created["token"]))
    _, manifest = env.request("n7-client", "/CN=system:node:n7/O=system:nodes", KUBELET_CLIENT,
                              ("digital signature", "client auth"))  # fmt: skip
    joining.create(manifest)
    found = env.wait_decided("n7-client")["n7-client"]
    assert found["spec"]["username"].startswith("system:bootstrap:")
    assert subject_of(certificate(found)) == ("system:node:n7", ["system:nodes"])


BULK = [f"bulk-{i}" for i in range(10)]


def test_two_signers_sign_each_request_once_and_the_follower_takes_over_from_a_killed_leader(
    env: SignerEnv,
) -> None:
    env.signer("a")
    env.wait_for_leader("a")
    env.signer("b")
    env.admin.create(*(env.request(name, f"/CN={name}")[1] for name in BULK))
    env.admin.approve(*BULK)
    env.wait_decided(*BULK)
    signed = [line for line in env.audit() if line["outcome"] == "signed" and line["ids"]["csr"] in BULK]
    assert sorted(line["ids"]["csr"] for line in signed) == sorted(BULK)  # each exactly once, by either replica
    records = json.loads(env.cluster.authsvc.ok("certs", "list", "-o", "json"))
    names = sorted(r["name"] for r in records if r["name"] in {f"csr:{n}" for n in BULK})
    assert names == sorted(f"csr:{n}" for n in BULK)

    # Kill the leader (no release of the lease): the other takes over once the leader's last
    # renewal is a lease duration old, as it saw it.
    leader = env.leader()
    follower = "b" if leader == "a" else "a"
    last_renewal = env.lease()["renewTime"]
    killed_at = time.monotonic()
    env.processes[leader].kill()
    env.wait_for_leader(follower, timeout=LEASE_SECONDS + 15)
    takeover = time.monotonic() - killed_at
    spec = env.lease()
    gap = _seconds(spec["acquireTime"]) - _seconds(last_renewal)
    # The follower saw the last renewal at most one retry_period late; then it waits the lease duration.
    assert LEASE_SECONDS <= gap <= LEASE_SECONDS + RETRY_SECONDS + 1.0, (gap, spec)
    assert takeover <= LEASE_SECONDS + RETRY_SECONDS + 3.0, takeover  # wall time on a loaded machine
    assert spec["leaseTransitions"] >= 1
    _, manifest = env.request("after-takeover", "/CN=after-takeover")
    env.admin.create(manifest)
    env.admin.approve("after-takeover")
    assert certificate(env.wait_decided("after-takeover")["after-takeover"])
    (line,) = [x for x in env.audit() if x["ids"]["csr"] == "after-takeover" and x["outcome"] == "signed"]
    assert line["replica"] == follower


def _seconds(micro_time: str) -> float:
    return dt.datetime.fromisoformat(micro_time.replace("Z", "+00:00")).timestamp()


def test_a_clean_stop_hands_the_lease_over_at_once(env: SignerEnv) -> None:
    first = env.signer("b")
    env.wait_for_leader("b")
    env.signer("c")
    stopped_at = time.monotonic()
    assert first.stop() == 0
    env.wait_for_leader("c", timeout=LEASE_SECONDS)
    # Released (no holder): c took it at its next retry, not after a lease duration.
    assert time.monotonic() - stopped_at < LEASE_SECONDS
    assert "does not lead: signing stopped" in first.log_text()


def test_a_signer_without_the_rights_says_so_in_one_line(env: SignerEnv) -> None:
    env.cluster.authsvc.ok("certs", "create", "nobody", "--out-dir", str(env.work))
    nobody = write_kubeconfig(
        env.work / "nobody.kubeconfig",
        env.cluster.server,
        env.cluster.ca_file,
        env.work / "nobody.crt",
        env.work / "nobody.key",
    )
    config = signer_config(env.cluster.home, env.work / "signer-nobody.yaml", audit_log=env.work / "nobody-audit.log")
    result = run(
        [str(AUTHSVC), f"--home={env.cluster.home}", f"--config={config}", "csr-signer", f"--kubeconfig={nobody}"],
        env=child_env(home_dir=env.work),
    )
    assert result.code == 1, result.describe()
    assert result.stderr.startswith('error: forbidden: User "nobody" cannot list resource "certificatesigningrequests"')
    assert len(result.stderr.strip().splitlines()) == 1, result.describe()
