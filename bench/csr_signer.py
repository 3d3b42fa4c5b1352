"""`authsvc csr-signer` against a real kube-apiserver 1.20: approve→issued latency at a steady rate,
CSRs signed per second from a backlog, and the same run's yardsticks.

A home is made in a temporary folder (`authsvc init`), etcd + kube-apiserver v1.20.2 are started
from it (tests/components/kube_apiserver.py), and `authsvc csr-signer` runs as its own process
with the default settings (the inventory in the home's SQLite, audit lines to its log).

(1) latency: requests (P-256, made beforehand) created and approved at --rate per second for
    --seconds, open loop; approve→issued is from the approval's answer to the certificate in a
    watch event of this script's own watch. Target: p99 ≤ 1 s at 20/s.
(2) throughput: --burst requests created and approved while the signer is stopped, then the
    signer started: from its first certificate to its last, per second (what a backlog after an
    outage or a takeover costs).
(3) bare issuance through the API, same API server, same backlog size: this process, one thread,
    one list, then for each approved request `CertificateAuthority.issue` (no policy checks, no
    inventory, no audit, no lease) and the status write: the API-bound ceiling a signer can
    approach. Target: (2) ≥ 0.3 x (3).
(4) bare `CertificateAuthority.issue` in this process, no API: what signing alone costs.

    .venv/bin/python bench/csr_signer.py [--rate 20] [--seconds 10] [--burst 300]

About a minute on 2 cores. Figures move with the machine's load: read them side by side.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from urllib3.exceptions import ProtocolError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client, config, watch

from pki.ca import CertificateAuthority
from pki.csr import build_csr, csr_pem
from pki.keys import KeyType, generate_private_key
from pki.names import user_subject
from pki.profiles import CLIENT
from tests.components.kube_apiserver import ControlPlane, ControlPlaneFiles, write_kubeconfig

BIN = Path(sys.executable).parent
SIGNER = "kubernetes.io/kube-apiserver-client"
USAGES = ["digital signature", "key encipherment", "client auth"]


def requests(prefix: str, count: int) -> list[tuple[str, str]]:
    """(name, base64 PEM request) pairs, keys generated here (not timed)."""
    made = []
    for i in range(count):
        name = f"{prefix}-{i}"
        pem = csr_pem(build_csr(generate_private_key(KeyType.EC_P256), user_subject(name, ("bench",))))
        made.append((name, base64.b64encode(pem).decode()))
    return made


def body(name: str, request: str) -> dict[str, Any]:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": request, "signerName": SIGNER, "usages": USAGES},
    }


def approve(api: Any, name: str) -> Any:
    csr = api.read_certificate_signing_request(name)
    condition = client.V1CertificateSigningRequestCondition(
        type="Approved", status="True", reason="Bench", message="bench"
    )
    csr.status = csr.status or client.V1CertificateSigningRequestStatus()
    csr.status.conditions = [*(csr.status.conditions or []), condition]
    return api.replace_certificate_signing_request_approval(name, csr)


class IssuedWatch:
    """This script's own watch: when each request's certificate appeared (monotonic)."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.issued: dict[str, float] = {}
        self.lock = threading.Lock()
        self.watch = watch.Watch()
        listed = api.list_certificate_signing_request()
        self.thread = threading.Thread(target=self._run, args=(listed.metadata.resource_version,), daemon=True)
        self.thread.start()

    def _run(self, version: str) -> None:
        try:
            for event in self.watch.stream(self.api.list_certificate_signing_request, resource_version=version):
                obj = event["object"]
                if obj.status is not None and obj.status.certificate:
                    with self.lock:
                        self.issued.setdefault(obj.metadata.name, time.monotonic())
        except (OSError, ProtocolError):
            return  # the control plane stopped at the end of the run

    def wait(self, names: list[str], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(n in self.issued for n in names):
                    return {n: self.issued[n] for n in names}
            time.sleep(0.02)
        with self.lock:
            missing = [n for n in names if n not in self.issued]
        raise SystemExit(f"{len(missing)} requests not issued after {timeout:.0f}s, e.g. {missing[:3]}")


@contextmanager
def signer_process(home: Path, kubeconfig: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    args = [str(BIN / "authsvc"), f"--home={home}", "csr-signer", f"--kubeconfig={kubeconfig}", "--identity=bench"]
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_run(api: Any, issued: IssuedWatch, rate: float, seconds: float) -> list[float]:
    batch = requests("lat", int(rate * seconds))
    approved: dict[str, float] = {}
    started = time.monotonic()
    for i, (name, request) in enumerate(batch):
        due = started + i / rate
        if (pause := due - time.monotonic()) > 0:
            time.sleep(pause)
        api.create_certificate_signing_request(body(name, request))
        approve(api, name)
        approved[name] = time.monotonic()
    done = issued.wait(list(approved), timeout=60)
    return [done[n] - approved[n] for n in approved]


def create_approved(api: Any, batch: list[tuple[str, str]]) -> None:
    for name, request in batch:
        api.create_certificate_signing_request(body(name, request))
        approve(api, name)


def throughput_run(api: Any, issued: IssuedWatch, home: Path, kubeconfig: Path, log: Path, burst: int) -> float:
    batch = requests("burst", burst)
    create_approved(api, batch)
    names = [n for n, _ in batch]
    with signer_process(home, kubeconfig, log):
        done = issued.wait(names, timeout=300)
    times = sorted(done.values())
    return (len(times) - 1) / (times[-1] - times[0])


def bare_through_api(api: Any, ca: CertificateAuthority, burst: int) -> float:
    batch = requests("bare", burst)
    create_approved(api, batch)
    names = {name for name, _ in batch}
    started = time.perf_counter()
    # As the signer does: the objects from one list (its resync), then one status write each.
    listed = [c for c in api.list_certificate_signing_request().items if c.metadata.name in names]
    for csr in listed:
        name = csr.metadata.name
        request = x509.load_pem_x509_csr(base64.b64decode(csr.spec.request))
        cert = ca.issue(
            subject=request.subject, public_key=request.public_key(), profile=CLIENT, now=dt.datetime.now(dt.UTC),
            ttl=dt.timedelta(days=1),
        )  # fmt: skip
        csr.status.certificate = base64.b64encode(cert.public_bytes(Encoding.PEM)).decode()
        api.replace_certificate_signing_request_status(name, csr)
    return burst / (time.perf_counter() - started)


def bare_issue(ca: CertificateAuthority, seconds: float = 2.0) -> float:
    keys = [generate_private_key(KeyType.EC_P256).public_key() for _ in range(64)]
    subject = user_subject("bench", ("bench",))
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        ca.issue(subject=subject, public_key=keys[count % 64], profile=CLIENT, now=dt.datetime.now(dt.UTC))
        count += 1
    return count / elapsed


def start_control_plane(work: Path) -> tuple[ControlPlane, Path, Path]:
    home = work / "home"
    env = {**os.environ, "AUTHSVC_HOME": str(home)}
    authsvc = str(BIN / "authsvc")
    subprocess.run(
        [authsvc, "init", "--apiserver-advertise-address", "127.0.0.1"], env=env, check=True, capture_output=True
    )
    subprocess.run(
        [authsvc, "keys", "export-public", "-o", str(work / "sa.pub")], env=env, check=True, capture_output=True
    )
    user = yaml.safe_load((home / "super-admin.conf").read_text())["users"][0]["user"]
    cert, key = work / "admin.crt", work / "admin.key"
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    pki = home / "pki"
    files = ControlPlaneFiles(
        client_ca_file=pki / "ca.crt", tls_cert_file=pki / "apiserver.crt", tls_private_key_file=pki / "apiserver.key",
        service_account_key_file=work / "sa.pub", service_account_signing_key_file=pki / "sa.key",
        service_account_issuer="https://kubernetes.default.svc.cluster.local", probe_client_cert_file=cert,
        probe_client_key_file=key,
    )  # fmt: skip
    plane = ControlPlane()
    plane.start(files, work / "control-plane")
    kubeconfig = write_kubeconfig(work / "admin.kubeconfig", plane.url, pki / "ca.crt", cert, key)
    return plane, home, kubeconfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="requests approved per second in (1)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of (1)")
    parser.add_argument("--burst", type=int, default=300, help="backlog size of (2) and (3)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-csr-"))
    plane, home, kubeconfig = start_control_plane(work)
    try:
        configuration = client.Configuration()
        config.load_kube_config(str(kubeconfig), client_configuration=configuration)
        api = client.CertificatesV1Api(client.ApiClient(configuration))
        issued = IssuedWatch(api)
        from authsvc.home.opened import open_home

        ca = open_home(home, environ={}).stores.load_ca("ca")
        log = work / "signer.log"
        with signer_process(home, kubeconfig, log):
            time.sleep(3)  # lease acquired, list + watch established (not measured)
            latencies = latency_run(api, issued, args.rate, args.seconds)
        signed_per_second = throughput_run(api, issued, home, kubeconfig, log, args.burst)
        through_api = bare_through_api(api, ca, args.burst)
        bare = bare_issue(ca)
        ms = [s * 1000 for s in latencies]
        print(f"(1) approve→issued at {args.rate:.0f}/s for {args.seconds:.0f} s ({len(ms)} requests): "
              f"p50 {statistics.median(ms):.0f} ms, p99 {percentile(ms, 0.99):.0f} ms, max {max(ms):.0f} ms "
              f"[target p99 ≤ 1000 ms]")  # fmt: skip
        print(f"(2) csr-signer from a backlog of {args.burst}: {signed_per_second:.0f} CSRs signed/s")
        print(f"(3) bare issuance through the API (CA.issue + status write, one thread): {through_api:.0f}/s; "
              f"(2)/(3) = {signed_per_second / through_api:.2f} [target ≥ 0.3]")  # fmt: skip
        print(f"(4) bare CertificateAuthority.issue, no API: {bare:.0f}/s; (2)/(4) = {signed_per_second / bare:.3f}")
        print(f"load average {os.getloadavg()[0]:.1f}; signer log {log}")
    finally:
        plane.stop()
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(work / "control-plane" / "etcd-data", ignore_errors=True)


if __name__ == "__main__":
    main()
