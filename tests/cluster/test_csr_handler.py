"""The CSR handler and watcher against the in-memory API server (tests/cluster/fakes.py), with a real
home (CA, policy, inventory), the injected clock and the real audit log.

What only a fake can make happen at an exact moment is here: a 409 between read and write, the
lease lost between signing and storing, a 410 mid-watch, a stale event after the write. What
the real API server shows is in tests/e2e/test_csr_signer.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from kubernetes.client.exceptions import ApiException
from prometheus_client import generate_latest
from urllib3.exceptions import ProtocolError

from authsvc.audit.log import AuditLog
from authsvc.cluster.csr.handler import CsrHandler
from authsvc.cluster.csr.requests import CsrState, CsrView
from authsvc.cluster.csr.signers import configured_signers
from authsvc.cluster.csr.watcher import CsrWatcher
from authsvc.home.opened import Home, open_home
from authsvc.metrics.csr import SignerMetrics
from pki.csr import build_csr, csr_pem
from pki.csr_signers import KUBE_APISERVER_CLIENT, KUBE_APISERVER_CLIENT_KUBELET, KUBELET_SERVING
from pki.inventory import CertStatus
from pki.keys import KeyType, generate_private_key
from pki.names import SubjectAltNames, user_subject
from tests.cluster.fakes import FakeCertificates, FakeNodes, ScriptedWatch, fake_client

CLIENT_USAGES = ["digital signature", "key encipherment", "client auth"]
SERVING_USAGES = ["digital signature", "key encipherment", "server auth"]
KUBELET_CLIENT_USAGES = ["digital signature", "client auth"]
APPROVED = [{"type": "Approved", "status": "True", "reason": "KubectlApprove", "message": "by kubectl"}]
KEY = generate_private_key(KeyType.EC_P256)


def spec(
    user: str,
    groups: tuple[str, ...] = (),
    *,
    signer: str = KUBE_APISERVER_CLIENT,
    usages: list[str] | None = None,
    username: str = "admin",
    requester_groups: tuple[str, ...] = ("system:authenticated",),
    sans: tuple[str, ...] = (),
    expiration_seconds: int | None = None,
) -> dict[str, Any]:
    pem = csr_pem(build_csr(KEY, user_subject(user, groups), SubjectAltNames.parse(sans)))
    data: dict[str, Any] = {
        "request": base64.b64encode(pem).decode(),
        "signerName": signer,
        "usages": usages or CLIENT_USAGES,
        "username": username,
        "groups": list(requester_groups),
    }
    if expiration_seconds is not None:
        data["expirationSeconds"] = expiration_seconds
    return data


class Rig:
    """A handler over the fake API server, on a copy of the test home."""

    def __init__(self, home: Home, settings: dict[str, Any] | None = None) -> None:
        if settings:
            import yaml

            config = home.root / "authsvc.yaml"
            data = yaml.safe_load(config.read_text()) or {}
            data.setdefault("csr_signer", {}).update(settings)
            config.write_text(yaml.safe_dump(data))
            home = open_home(home.root, clock=home.clock, environ={})
        self.home = home
        self.certificates = FakeCertificates()
        self.nodes = FakeNodes()
        self.client = fake_client(certificates=self.certificates, nodes=self.nodes)
        self.leading = True
        self.metrics = SignerMetrics()
        self.audit_path = home.root / "csr-audit.log"
        import os

        self.audit = AuditLog(os.open(self.audit_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), owned=True)
        self.signers = configured_signers(home.settings, home.stores.issuer)
        self.handler = CsrHandler(
            self.client,
            self.signers,
            may_act=lambda: self.leading,
            clock=home.clock,
            metrics=self.metrics,
            audit=self.audit,
            identity="replica-1",
        )

    def add(self, name: str, data: dict[str, Any], conditions: list[dict[str, Any]] | None = None) -> Any:
        return self.certificates.add(name, data, conditions)

    def handle(self, name: str) -> CsrView:
        self.handler.handle(self.certificates.model(name))
        return self.view(name)

    def view(self, name: str) -> CsrView:
        return CsrView.of(self.certificates.model(name))

    def audit_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]

    def records(self) -> list[Any]:
        """What the signer recorded (init's own certificates are in the inventory too)."""
        return [r for r in self.home.stores.inventory.certificates() if (r.name or "").startswith("csr:")]

    def metric(self, text: str) -> bool:
        return text in generate_latest(self.metrics.registry).decode()


@pytest.fixture
def rig(home: Home) -> Iterator[Rig]:
    made = Rig(home)
    yield made
    made.audit.close()


def certificate_of(view: CsrView) -> x509.Certificate:
    return x509.load_pem_x509_certificate(view.certificate)


def test_an_approved_request_is_signed_recorded_audited_and_counted(rig: Rig) -> None:
    approved_at = (rig.home.clock() - dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    approved = [{**APPROVED[0], "lastUpdateTime": approved_at}]
    rig.add("alice", spec("alice", ("dev",), username="kubernetes-admin"), approved)
    view = rig.handle("alice")
    assert view.state is CsrState.ISSUED
    cert = certificate_of(view)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert cert.issuer == rig.home.stores.load_ca("ca").certificate.subject
    (record,) = rig.records()
    assert record.requester == "kubernetes-admin" and record.name == "csr:alice"
    assert int(record.serial, 16) == cert.serial_number
    # pki.client_ttl (1d) by default for people's certificates.
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=1, minutes=5)
    (line,) = rig.audit_lines()
    assert line["action"] == "csr.decision" and line["outcome"] == "signed" and line["ids"]["serial"] == record.serial
    assert line["requester"] == "kubernetes-admin" and line["groups"] == ["dev"] and line["replica"] == "replica-1"
    signer = 'signer="kubernetes.io/kube-apiserver-client"'
    assert rig.metric(f'authsvc_csr_decisions_total{{decision="signed",reason="",{signer}}} 1.0')
    assert rig.metric(f"authsvc_csr_approve_to_issue_seconds_sum{{{signer}}} 2.0")


def test_a_pending_request_is_left_alone_without_the_approver(rig: Rig) -> None:
    rig.add("bob", spec("bob"))
    assert rig.handle("bob").state is CsrState.PENDING
    assert rig.certificates.writes == [] and rig.records() == []


def test_the_twin_nothing_is_written_by_a_replica_that_does_not_lead(rig: Rig) -> None:
    rig.leading = False
    rig.add("alice", spec("alice"), APPROVED)
    assert rig.handle("alice").state is CsrState.APPROVED
    assert rig.certificates.writes == [] and rig.records() == []


def test_a_refused_request_is_failed_with_the_reason_and_nothing_is_recorded(rig: Rig) -> None:
    rig.add("mallory", spec("mallory", ("system:masters",)), APPROVED)
    view = rig.handle("mallory")
    assert view.state is CsrState.FAILED and not view.certificate
    failed = view.condition("Failed")
    assert failed is not None and failed.reason == "IdentityNotAllowed" and "system:masters" in failed.message
    assert rig.records() == []
    (line,) = rig.audit_lines()
    assert line["outcome"] == "failed" and line["reason"] == "IdentityNotAllowed"
    assert rig.metric('decision="failed",reason="IdentityNotAllowed"')


def test_requests_for_other_signers_are_not_touched(rig: Rig) -> None:
    rig.add("other", spec("alice", signer="example.com/not-ours"), APPROVED)
    rig.handle("other")
    assert rig.certificates.writes == []


def test_expiration_seconds_shortens_the_lifetime(rig: Rig) -> None:
    rig.add("short", spec("alice", expiration_seconds=3600), APPROVED)
    cert = certificate_of(rig.handle("short"))
    assert cert.not_valid_after_utc - rig.home.clock() == dt.timedelta(hours=1)


def test_a_stale_event_after_signing_signs_nothing_twice(rig: Rig) -> None:
    rig.add("alice", spec("alice"), APPROVED)
    stale = rig.certificates.model("alice")  # the approval event, delivered again after the write
    rig.handler.handle(stale)
    rig.handler.handle(stale)
    assert rig.certificates.writes == [("status", "alice")]
    assert len(rig.records()) == 1


def test_a_409_from_an_unrelated_change_is_retried_once(rig: Rig) -> None:
    rig.add("alice", spec("alice"), APPROVED)
    touched = []

    def someone_labels_it(name: str) -> None:
        if not touched:
            touched.append(name)
            rig.certificates.touch(name)

    rig.certificates.before_status_write = someone_labels_it
    assert rig.handle("alice").state is CsrState.ISSUED
    assert len(rig.records()) == 1 and rig.records()[0].status is CertStatus.VALID


def test_a_certificate_someone_else_stored_first_is_kept_and_ours_revoked(rig: Rig) -> None:
    rig.add("alice", spec("alice"), APPROVED)
    theirs = b"-----BEGIN CERTIFICATE-----\nTHEIRS\n-----END CERTIFICATE-----\n"

    def another_signer_wins(name: str) -> None:
        rig.certificates.objects[name]["status"]["certificate"] = base64.b64encode(theirs).decode()
        rig.certificates.touch(name)

    rig.certificates.before_status_write = another_signer_wins
    view = rig.handle("alice")
    assert view.certificate == theirs
    (record,) = rig.records()
    assert record.status is CertStatus.REVOKED and record.revocation_reason == "cessationOfOperation"


def test_a_lease_lost_between_signing_and_storing_stores_nothing(rig: Rig, home: Home) -> None:
    answers = iter([True, False])  # may act when deciding; lost once signed, before the write
    rig.handler.may_act = lambda: next(answers, False)
    rig.add("alice", spec("alice"), APPROVED)
    assert rig.handle("alice").state is CsrState.APPROVED
    assert rig.certificates.writes == []
    (record,) = rig.records()
    assert record.status is CertStatus.REVOKED


def test_a_write_without_an_answer_is_settled_when_the_request_is_seen_again(rig: Rig) -> None:
    rig.add("alice", spec("alice"), APPROVED)
    original = rig.certificates.replace_certificate_signing_request_status

    def lost_answer(name: str, body: Any, **kwargs: Any) -> Any:
        raise ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))

    rig.certificates.replace_certificate_signing_request_status = lost_answer  # type: ignore[method-assign]
    rig.handle("alice")
    (first,) = rig.records()
    assert first.status is CertStatus.VALID  # maybe delivered: not revoked yet
    rig.certificates.replace_certificate_signing_request_status = original  # type: ignore[method-assign]
    view = rig.handle("alice")  # seen again, still unsigned: the first was not delivered
    assert view.state is CsrState.ISSUED
    statuses = {r.serial: r.status for r in rig.records()}
    assert statuses[first.serial] is CertStatus.REVOKED
    assert list(statuses.values()).count(CertStatus.VALID) == 1


# ---------------------------------------------------------------------------------------- approver

NODE_GROUPS = ("system:nodes", "system:authenticated")


def serving_spec(sans: tuple[str, ...], username: str = "system:node:n1", cn: str = "system:node:n1") -> dict[str, Any]:
    return spec(
        cn,
        ("system:nodes",),
        signer=KUBELET_SERVING,
        usages=SERVING_USAGES,
        username=username,
        requester_groups=NODE_GROUPS,
        sans=sans,
    )


@pytest.fixture
def approving(home: Home) -> Iterator[Rig]:
    made = Rig(home, {"kubelet_serving": {"approve": True}, "kube_apiserver_client_kubelet": {"approve": True}})
    made.nodes.add("n1", [("Hostname", "n1"), ("InternalIP", "10.1.0.5"), ("ExternalDNS", "n1.nodes.example")])
    yield made
    made.audit.close()


def test_a_nodes_serving_request_with_its_addresses_is_approved_and_signed(approving: Rig) -> None:
    approving.add("n1-serving", serving_spec(("DNS:n1", "DNS:n1.nodes.example", "IP:10.1.0.5")))
    view = approving.handle("n1-serving")
    assert view.state is CsrState.ISSUED
    approved = view.condition("Approved")
    assert approved is not None and approved.reason == "AutoApproved"
    assert approving.certificates.writes == [("approval", "n1-serving"), ("status", "n1-serving")]
    assert [line["outcome"] for line in approving.audit_lines()] == ["approved", "signed"]
    cert = certificate_of(view)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["n1", "n1.nodes.example"]


@pytest.mark.parametrize(
    ("data", "reason", "words"),
    [
        (serving_spec(("DNS:n1", "IP:10.9.9.9")), "SANNotOnNode", "10.9.9.9"),
        (serving_spec(("DNS:n2",)), "SANNotOnNode", "n2"),
        (serving_spec(("DNS:n1",), cn="system:node:n2"), "RequesterMismatch", "n2"),
        (serving_spec(("DNS:n3",), username="system:node:n3", cn="system:node:n3"), "NodeNotFound", "n3"),
        (serving_spec(("DNS:kubernetes.default.svc",)), "SubjectAltNameNotAllowed", "API server"),
    ],
    ids=["IP not on the Node", "name not on the Node", "another node's name", "no such Node", "the API server's name"],
)
def test_a_nodes_serving_request_beyond_its_node_is_denied(
    approving: Rig, data: dict[str, Any], reason: str, words: str
) -> None:
    approving.add("bad", data)
    view = approving.handle("bad")
    assert view.state is CsrState.DENIED
    denied = view.condition("Denied")
    assert denied is not None and denied.reason == reason and words in denied.message
    assert approving.records() == []
    assert approving.audit_lines()[0]["outcome"] == "denied"


def test_an_operator_allow_list_approves_a_san_that_is_not_on_the_node(home: Home) -> None:
    rig = Rig(home, {"kubelet_serving": {"approve": True, "approve_ip_sans": ["10.9.0.0/16"]}})
    rig.nodes.add("n1", [("Hostname", "n1")])
    rig.add("vip", serving_spec(("DNS:n1", "IP:10.9.9.9")))
    assert rig.handle("vip").state is CsrState.ISSUED


def test_a_serving_request_for_a_node_made_by_a_person_is_denied_as_the_signer_would_refuse_it(
    approving: Rig,
) -> None:
    approving.add("by-admin", serving_spec(("DNS:n1",), username="kubernetes-admin"))
    view = approving.handle("by-admin")
    assert view.state is CsrState.DENIED
    denied = view.condition("Denied")
    assert denied is not None and denied.reason == "RequesterMismatch"


def kubelet_client_spec(username: str, groups: tuple[str, ...], cn: str = "system:node:n1") -> dict[str, Any]:
    return spec(
        cn,
        ("system:nodes",),
        signer=KUBE_APISERVER_CLIENT_KUBELET,
        usages=KUBELET_CLIENT_USAGES,
        username=username,
        requester_groups=groups,
    )


def test_a_bootstrap_token_in_the_allowed_group_gets_its_node_client_certificate(approving: Rig) -> None:
    groups = ("system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token", "system:authenticated")
    approving.add("join", kubelet_client_spec("system:bootstrap:abcdef", groups))
    view = approving.handle("join")
    assert view.state is CsrState.ISSUED
    assert approving.records()[0].requester == "system:bootstrap:abcdef"
    assert approving.records()[0].profile == "kubelet-client"


@pytest.mark.parametrize(
    ("username", "groups", "cn", "state"),
    [
        ("system:bootstrap:abcdef", ("system:bootstrappers",), "system:node:n1", CsrState.PENDING),
        ("system:node:n1", NODE_GROUPS, "system:node:n1", CsrState.ISSUED),
        ("system:node:n2", NODE_GROUPS, "system:node:n1", CsrState.DENIED),
        ("kubernetes-admin", ("kubeadm:cluster-admins",), "system:node:n1", CsrState.PENDING),
    ],
    ids=["token outside the allowed groups", "renewal", "another node's identity", "a person"],
)
def test_kubelet_client_requests_are_approved_denied_or_left(
    approving: Rig, username: str, groups: tuple[str, ...], cn: str, state: CsrState
) -> None:
    approving.add("k", kubelet_client_spec(username, groups, cn))
    assert approving.handle("k").state is state


# ---------------------------------------------------------------------------------------- watcher


class Script:
    """Watches handed out in turn; when they run out, the watcher is told to stop."""

    def __init__(self, watcher_box: list[CsrWatcher], *scripts: list[Any]) -> None:
        self.watches = [ScriptedWatch(list(s)) for s in scripts]
        self.handed: list[ScriptedWatch] = []
        self.box = watcher_box

    def __call__(self) -> ScriptedWatch:
        if not self.watches:
            self.box[0].interrupt()
            return ScriptedWatch([])
        watch = self.watches.pop(0)
        self.handed.append(watch)
        return watch


def watcher_for(rig: Rig, *scripts: list[Any]) -> tuple[CsrWatcher, Script]:
    import threading

    box: list[CsrWatcher] = []
    script = Script(box, *scripts)
    watcher = CsrWatcher(
        rig.client,
        rig.handler,
        rig.metrics,
        timeout_seconds=30,
        stop=threading.Event(),
        watch_factory=script,
        backoff=(0.0, 0.0),
    )
    box.append(watcher)
    return watcher, script


def test_the_list_signs_what_was_approved_before_and_the_watch_starts_from_its_version(rig: Rig) -> None:
    rig.add("before", spec("alice"), APPROVED)
    # Created after the list: only the watch tells about it.
    watcher, script = watcher_for(rig, [lambda: {"type": "ADDED", "object": rig.add("later", spec("bob"), APPROVED)}])
    watcher.run_while(lambda: True)
    assert rig.view("before").state is CsrState.ISSUED and rig.view("later").state is CsrState.ISSUED
    first = script.handed[0].calls[0]
    assert first["timeout_seconds"] == 30 and first["allow_watch_bookmarks"] is True
    assert first["resource_version"]  # the list's version, not "" (which would mean "from anything")


def test_a_410_lists_again_and_watches_from_the_new_version(rig: Rig) -> None:
    gone = ApiException(status=410, reason="Expired: too old resource version: 1 (42)")
    watcher, script = watcher_for(rig, [gone], [])
    rig.add("during-the-gap", spec("carol"), APPROVED)
    watcher.run_while(lambda: True)
    assert rig.view("during-the-gap").state is CsrState.ISSUED
    versions = [w.calls[0]["resource_version"] for w in script.handed]
    assert len(versions) == 2 and versions[0] != versions[1]
    assert rig.metric('authsvc_csr_watch_restarts_total{cause="gone"} 1.0')


def test_a_broken_connection_lists_again(rig: Rig) -> None:
    reset = ProtocolError("Connection broken", ConnectionResetError(104, "Connection reset by peer"))
    watcher, script = watcher_for(rig, [reset], [])
    watcher.run_while(lambda: True)
    assert len(script.handed) == 2
    assert rig.metric('authsvc_csr_watch_restarts_total{cause="error"} 1.0')


def test_the_watcher_returns_when_the_lease_is_lost(rig: Rig) -> None:
    later = rig.add("later", spec("bob"), APPROVED)
    leading = iter([True, True, False])
    watcher, script = watcher_for(rig, [{"type": "MODIFIED", "object": later}] * 5)
    watcher.run_while(lambda: next(leading, False))
    assert len(script.handed) <= 1


def test_a_database_outage_leaves_the_request_approved_and_it_is_signed_afterwards(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Root ignores file modes, so the outage is the error SQLAlchemy raises, not a read-only file.)"""
    from sqlalchemy.exc import OperationalError

    inventory = rig.home.stores.inventory

    def down(records: Any) -> None:
        raise OperationalError("INSERT INTO certificates", {}, Exception("database is locked"))

    monkeypatch.setattr(inventory, "add", down)
    rig.add("alice", spec("alice"), APPROVED)
    assert rig.handle("alice").state is CsrState.APPROVED
    assert rig.certificates.writes == []
    assert rig.metric('authsvc_csr_errors_total{operation="sign"} 1.0')
    monkeypatch.undo()
    assert rig.handle("alice").state is CsrState.ISSUED
    assert len(rig.records()) == 1
