"""`authsvc csr list` and `authsvc csr-signer` without a cluster, with a broken configuration, and
`csr list`'s rows from objects (tests/e2e/test_csr_signer.py runs both against kube-apiserver)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding
from kubernetes import client

from authsvc.cluster.csr.listing import age, rows
from authsvc.home.opened import Home
from pki.csr import build_csr, csr_pem
from pki.keys import generate_private_key
from pki.names import user_subject
from tests.cluster.test_connection import kubeconfig
from tests.components.kube_apiserver import free_port
from tests.conftest import run_cli

NO_CONNECTION = "error: no cluster connection: set cluster.api.kubeconfig or --kubeconfig\n"


@pytest.mark.parametrize("args", [["csr", "list"], ["csr-signer"]])
def test_the_csr_commands_need_a_connection(home: Home, args: list[str]) -> None:
    result = run_cli(args, home=home.root)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", NO_CONNECTION)


@pytest.mark.parametrize("args", [["csr", "list"], ["csr-signer"]])
def test_an_api_server_that_does_not_answer_is_one_line(home: Home, tmp_path: Path, args: list[str]) -> None:
    port = free_port()
    path = kubeconfig(tmp_path / "k", f"https://127.0.0.1:{port}")
    result = run_cli([*args, "--kubeconfig", str(path)], home=home.root)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"error: cannot reach the API server at https://127.0.0.1:{port} (--kubeconfig {path}): connection refused\n"
    )


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"lease": {"renew_deadline": "20s"}}, "retry_period < renew_deadline < duration"),
        ({"custom": [{"name": "kubernetes.io/mine", "profile": "client"}]}, "kubernetes.io signer names"),
        ({"custom": [{"name": "not a signer", "profile": "client"}]}, "is not a signerName"),
        ({"kubelet_serving": {"approve_ip_sans": ["10.0.0.0/33"]}}, "not an IP network"),
        ({"kubelet_serving": {"ca": "sa"}}, "csr_signer.kubelet_serving.ca"),
        ({"lease": {"nmae": "x"}}, "csr_signer.lease.nmae"),
    ],
)
def test_a_bad_csr_signer_section_is_one_line_naming_it(home: Home, section: dict[str, object], problem: str) -> None:
    config = home.root / "authsvc.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    data["csr_signer"] = section
    config.write_text(yaml.safe_dump(data))
    result = run_cli(["csr-signer"], home=home.root)
    assert result.exit_code == 1 and problem in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_a_bad_metrics_address_is_bad_usage_before_any_connection(home: Home) -> None:
    result = run_cli(["csr-signer", "--metrics-bind", "nowhere"], home=home.root)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --metrics-bind 'nowhere' is not HOST:PORT")


def test_csr_signer_help_names_the_choice_and_the_guide() -> None:
    result = run_cli(["csr-signer", "--help"])
    assert result.exit_code == 0 and "docs/csr-signer.md" in result.stdout and "Lease" in result.stdout


def csr_object(name: str, created: dt.datetime, conditions: list[dict[str, str]], certificate: bytes = b"") -> object:
    pem = csr_pem(build_csr(generate_private_key(), user_subject(name, ("dev",))))
    return client.V1CertificateSigningRequest.from_dict(
        {
            "metadata": {"name": name, "uid": name, "creationTimestamp": created.isoformat()},
            "spec": {
                "request": base64.b64encode(pem).decode(),
                "signerName": "kubernetes.io/kube-apiserver-client",
                "usages": ["client auth"],
                "username": "admin",
            },
            "status": {
                "conditions": [{"status": "True", **c} for c in conditions],
                "certificate": base64.b64encode(certificate).decode() if certificate else None,
            },
        }
    )


def test_rows_say_the_state_and_the_reason(home: Home) -> None:
    now = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
    cert = home.stores.load_ca().certificate.public_bytes(Encoding.PEM)
    objects = [
        csr_object("pending", now - dt.timedelta(seconds=30), []),
        csr_object("failed", now - dt.timedelta(minutes=5), [
            {"type": "Approved", "reason": "KubectlApprove"},
            {"type": "Failed", "reason": "IdentityNotAllowed", "message": "group 'system:masters' is privileged"},
        ]),
        csr_object("issued", now - dt.timedelta(hours=3), [{"type": "Approved", "reason": "KubectlApprove"}], cert),
    ]  # fmt: skip
    found = {r["name"]: r for r in rows(objects, now)}
    assert found["pending"]["state"] == "Pending" and found["pending"]["age"] == "30s"
    assert found["failed"]["state"] == "Failed"
    assert found["failed"]["reason"] == "IdentityNotAllowed: group 'system:masters' is privileged"
    assert found["issued"]["state"] == "Issued" and found["issued"]["reason"].startswith("serial ")
    assert found["issued"]["subject"] == "CN=issued,O=dev"
    assert [r["name"] for r in rows(objects, now, states=["failed", "pending"])] == ["failed", "pending"]


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (90, "1m"), (7200, "2h"), (3600, "60m"), (3 * 86400, "3d")])
def test_age_reads_like_kubectls(seconds: int, text: str) -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert age(now - dt.timedelta(seconds=seconds), now) == text
