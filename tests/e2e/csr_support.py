"""What the CSR signer's end-to-end tests drive: `authsvc csr-signer` processes, CSRs made with
openssl and created and approved with kubectl, and reads of their state.

Each signer process runs the installed `authsvc` console script with its own `--config` (the
session home's authsvc.yaml plus a `csr_signer:` section and an audit log of its own), against
the session home's CA and inventory, with a kubeconfig for a user that has exactly the
permissions of config/kubernetes/csr-signer/rbac.yaml.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.components.kube_apiserver import die_with_parent
from tests.components.support import log_tail
from tests.e2e.harness import AUTHSVC, Kubectl, Result, run

# Short lease times so that a takeover is seconds, and whole seconds (durations in authsvc.yaml).
LEASE = {"duration": "4s", "renew_deadline": "3s", "retry_period": "1s"}
LEASE_SECONDS, RETRY_SECONDS = 4.0, 1.0
START_TIMEOUT = 30.0
CLIENT_USAGES = ("digital signature", "key encipherment", "client auth")
SERVING_USAGES = ("digital signature", "key encipherment", "server auth")


def signer_config(home: Path, path: Path, *, audit_log: Path, lease_namespace: str = "authsvc") -> Path:
    """The home's authsvc.yaml with a csr_signer section (approver on for the kubelet signers)."""
    settings = yaml.safe_load((home / "authsvc.yaml").read_text())
    settings["csr_signer"] = {
        "kubelet_serving": {"approve": True},
        "kube_apiserver_client_kubelet": {"approve": True},
        "lease": {"namespace": lease_namespace, **LEASE},
    }
    settings["audit"] = {"path": str(audit_log), "flush_ms": 0}
    path.write_text(yaml.safe_dump(settings))
    return path


class SignerProcess:
    """`authsvc csr-signer` as a child process, stopped (SIGTERM) or killed (SIGKILL) by its PID."""

    def __init__(
        self, home: Path, config: Path, kubeconfig: Path, identity: str, log: Path, env: Mapping[str, str]
    ) -> None:
        self.args = [
            str(AUTHSVC),
            f"--home={home}",
            f"--config={config}",
            "csr-signer",
            f"--kubeconfig={kubeconfig}",
            f"--identity={identity}",
        ]
        self.identity = identity
        self.log = log
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SignerProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                preexec_fn=die_with_parent,
            )
        wait_until(lambda: "authsvc csr-signer: signs" in self.log_text(), self.describe, START_TIMEOUT, self)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def describe(self) -> str:
        return f"csr-signer {self.identity} (log {self.log}):\n{log_tail(self.log, 30)}"

    def kill(self) -> None:
        """SIGKILL: no release of the lease, no goodbye (a crashed node)."""
        if self.alive():
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM (releases the lease), then SIGKILL if it hangs; the exit code."""
        proc, self.process = self.process, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode


def wait_until(
    done: Callable[[], bool], describe: Callable[[], str], timeout: float, process: SignerProcess | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if process is not None and not process.alive():
            raise AssertionError(f"the signer exited: {describe()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not done after {timeout:.0f}s: {describe()}")
        time.sleep(0.1)


def openssl_csr(
    openssl: Path,
    folder: Path,
    name: str,
    subject: str,
    *,
    newkey: Sequence[str] = ("ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
    addext: Sequence[str] = (),
) -> tuple[Path, Path]:
    """A key and a PKCS#10 request made by openssl, as a person would; (key, csr) paths."""
    key, csr = folder / f"{name}.key", folder / f"{name}.csr"
    args = [str(openssl), "req", "-new", "-nodes", "-newkey", newkey[0], *newkey[1:], "-keyout", str(key)]
    args += ["-subj", subject, "-out", str(csr)]
    for extension in addext:
        args += ["-addext", extension]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return key, csr


def csr_manifest(
    name: str, csr: Path, signer: str, usages: Sequence[str], expiration_seconds: int | None = None
) -> str:
    spec: dict[str, Any] = {
        "request": base64.b64encode(csr.read_bytes()).decode(),
        "signerName": signer,
        "usages": list(usages),
    }
    if expiration_seconds is not None:
        spec["expirationSeconds"] = expiration_seconds
    document = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": spec,
    }
    return yaml.safe_dump(document)


@dataclass(frozen=True)
class Csrs:
    """kubectl on CertificateSigningRequests with one kubeconfig."""

    kubectl: Kubectl
    kubeconfig: Path

    def __call__(self, *args: str, input: str | None = None) -> Result:
        command = [str(self.kubectl.binary), f"--kubeconfig={self.kubeconfig}", "--request-timeout=30s", *args]
        return run(command, env=self.kubectl.env, input=input)

    def create(self, *manifests: str) -> None:
        result = self("create", "-f", "-", input="---\n".join(manifests))
        assert result.ok, result.describe()

    def approve(self, *names: str) -> None:
        result = self("certificate", "approve", *names)
        assert result.ok, result.describe()

    def get(self, name: str) -> dict[str, Any]:
        result = self("get", "csr", name, "-o", "json")
        assert result.ok, result.describe()
        found: dict[str, Any] = json.loads(result.stdout)
        return found

    def all(self) -> dict[str, dict[str, Any]]:
        result = self("get", "csr", "-o", "json")
        assert result.ok, result.describe()
        return {item["metadata"]["name"]: item for item in json.loads(result.stdout)["items"]}

    def delete(self, *names: str) -> None:
        self("delete", "csr", "--ignore-not-found", *names)


def certificate(csr: Mapping[str, Any]) -> bytes:
    return base64.b64decode((csr.get("status") or {}).get("certificate") or "")


def condition(csr: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    conditions = (csr.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), None)


def decided(csr: Mapping[str, Any]) -> bool:
    """Issued, Failed or Denied: nothing will change it any more."""
    return bool(certificate(csr)) or condition(csr, "Failed") is not None or condition(csr, "Denied") is not None
