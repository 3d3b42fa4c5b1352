"""One CertificateSigningRequest decided and written back, by the leader only.

For a request whose signerName authsvc serves:

- pending, approver on for its signer: the signer's review first (a request it would refuse is
  denied with that reason), then the approver's rules (approver.py); the decision goes through
  the `approval` subresource. No decision: left to humans.
- approved and unsigned: reviewed again (pki/csr_signers.py: nothing an approver said is
  trusted), then signed by the signer's CertificateIssuer (policy + inventory record, requester =
  spec.username) and stored in status.certificate; or marked `Failed` with the refusal's reason
  and message. Both through the `status` subresource, carrying the resourceVersion read: a
  request changed meanwhile is read again (409), never overwritten.
- issued, denied or failed: nothing to do, ever again (those conditions are never removed).

Before each write the handler asks `may_act()` (the lease is held and renewed), so a replica
that lost its lease stops at once. A certificate recorded but known not to have reached the
request (a refused write, the lease lost between signing and writing) is revoked in the
inventory (cessationOfOperation); one whose write had no answer is revoked the next time the
request is seen without it. Errors of the API server, the CA or the database leave the request
as it is: it is decided again on the next event or re-list.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from authsvc.access.trail import csr_decision
from authsvc.cluster.csr import approver
from authsvc.cluster.csr.requests import APPROVED, FAILED, CsrState, CsrView, with_certificate, with_condition
from authsvc.cluster.errors import ClusterConflict, ClusterError, ClusterNotFound, ClusterUnreachable
from pki.csr import csr_sans, parse_csr
from pki.csr_signers import CsrRefused, lifetime, review
from pki.errors import PKIError
from pki.inventory import serial_hex
from pki.names import SubjectAltNames, subject_user

if TYPE_CHECKING:
    from authsvc.audit.log import AuditLog
    from authsvc.cluster.connection import ClusterClient
    from authsvc.cluster.csr.signers import ConfiguredSigner
    from authsvc.metrics.csr import SignerMetrics
    from pki.clock import Clock
    from pki.issuance import IssuedCert

log = logging.getLogger(__name__)
NOT_DELIVERED = "cessationOfOperation"


class CsrHandler:
    def __init__(
        self,
        client: ClusterClient,
        signers: dict[str, ConfiguredSigner],
        *,
        may_act: Callable[[], bool],
        clock: Clock,
        metrics: SignerMetrics,
        audit: AuditLog,
        identity: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.signers = signers
        self.may_act = may_act
        self.clock = clock
        self.metrics = metrics
        self.audit = audit
        self.identity = identity
        self.monotonic = monotonic
        # Requests with a final outcome (issued, denied, failed): later events about them are stale.
        self._finished: set[str] = set()
        # uid -> the certificate (and its signer) whose write had no answer.
        self._undelivered: dict[str, tuple[ConfiguredSigner, IssuedCert]] = {}
        # uid -> when this process first saw it approved (the sign-duration metric).
        self._seen_approved: dict[str, float] = {}

    # ------------------------------------------------------------------ bookkeeping

    def forget(self, uid: str) -> None:
        """The request was deleted."""
        self._finished.discard(uid)
        self._seen_approved.pop(uid, None)

    def retain(self, uids: Iterable[str]) -> None:
        """After a re-list: forget requests that no longer exist."""
        alive = set(uids)
        self._finished &= alive
        self._seen_approved = {uid: t for uid, t in self._seen_approved.items() if uid in alive}

    # ------------------------------------------------------------------ the decision

    def handle(self, obj: Any) -> None:
        view = CsrView.of(obj)
        signer = self.signers.get(view.signer_name)
        if signer is None or view.uid in self._finished:
            return
        try:
            self._decide(signer, obj, view)
        except ClusterError as e:
            # The API server refused or did not answer: decided again on the next event or re-list.
            self.metrics.error("api")
            log.warning("CSR %s: %s", view.name, e)

    def _decide(self, signer: ConfiguredSigner, obj: Any, view: CsrView) -> None:
        state = view.state
        if state in (CsrState.ISSUED, CsrState.DENIED, CsrState.FAILED):
            self._settle_undelivered(view)
            self._finished.add(view.uid)
            return
        if not self.may_act():
            return
        if state is CsrState.PENDING:
            if not signer.approves:
                return
            decided = self._approve(signer, obj, view)
            if decided is None:
                return
            obj, view = decided, CsrView.of(decided)
            if view.state is not CsrState.APPROVED:
                return
        self._sign(signer, obj, view)

    # ------------------------------------------------------------------ approving

    def _approve(self, signer: ConfiguredSigner, obj: Any, view: CsrView) -> Any | None:
        decision = self._approver_decision(signer, view)
        if decision is None or not self.may_act():
            return None
        kind = APPROVED if decision.verdict is approver.Verdict.APPROVE else "Denied"
        body = with_condition(obj, kind, decision.reason, decision.message, self.clock())
        verb = "approve" if decision.verdict is approver.Verdict.APPROVE else "deny"
        updated = self.client.call(
            f"{verb} CertificateSigningRequest {view.name}",
            self.client.certificates.replace_certificate_signing_request_approval,
            view.name,
            body,
        )
        self.metrics.decided(signer.name, decision.verdict.value, decision.reason)
        self._audit(decision.verdict.value, view, signer, reason=decision.reason, message=decision.message)
        log.info("CSR %s %s: %s (%s)", view.name, decision.verdict.value, decision.message, decision.reason)
        if decision.verdict is approver.Verdict.DENY:
            self._finished.add(view.uid)
        return updated

    def _approver_decision(self, signer: ConfiguredSigner, view: CsrView) -> approver.ApproverDecision | None:
        ttl = lifetime(view.expiration_seconds, signer.ttl, signer.issuer.policy)
        try:
            checked = review(signer.rules, view.as_request(), signer.issuer.policy, ttl)
        except CsrRefused as e:
            return approver.deny(e.reason.value, str(e))
        user, _ = subject_user(checked.subject)
        if signer.serving_approval is not None:
            name = approver.node_of(view.username)
            node = self._node(name) if name is not None else None
            return approver.kubelet_serving(view.username, user, checked.sans, node, signer.serving_approval)
        if signer.client_approval is not None:
            return approver.kubelet_client(view.username, view.groups, user, signer.client_approval)
        return None

    def _node(self, name: str) -> approver.NodeAddresses | None:
        try:
            node = self.client.call(f"get Node {name}", self.client.core.read_node, name)
        except ClusterNotFound:
            return None
        return approver.NodeAddresses.of(node)

    # ------------------------------------------------------------------ signing

    def _sign(self, signer: ConfiguredSigner, obj: Any, view: CsrView) -> None:
        seen = self._seen_approved.setdefault(view.uid, self.monotonic())
        stale = self._undelivered.pop(view.uid, None)
        if stale is not None:
            self._revoke(*stale, f"CSR {view.name} is signed again")
        ttl = lifetime(view.expiration_seconds, signer.ttl, signer.issuer.policy)
        try:
            issued = signer.issuer.sign_kubernetes_csr(
                view.as_request(), signer.rules, ttl=ttl, name=f"csr:{view.name}"
            )
        except CsrRefused as e:
            self._fail(signer, obj, view, e)
            return
        except (PKIError, SQLAlchemyError) as e:
            # The CA expired, the database is down...: not the request's fault; tried again later.
            self.metrics.error("sign")
            log.error("CSR %s: cannot sign now: %s", view.name, e)
            return
        if not self.may_act():
            self._revoke(signer, issued, "the lease was lost before it was stored")
            return
        try:
            self._write_status(view.name, obj, lambda o: with_certificate(o, issued.chain_pem))
        except ClusterUnreachable:
            self._undelivered[view.uid] = (signer, issued)
            raise
        except ClusterError:
            self._revoke(signer, issued, "the API server refused to store it")
            raise
        self._finished.add(view.uid)
        self._seen_approved.pop(view.uid, None)
        approved = view.condition(APPROVED)
        since_approval = (
            (self.clock() - approved.last_update).total_seconds()
            if approved is not None and approved.last_update
            else None
        )
        self.metrics.signed(signer.name, since_approval=since_approval, since_seen=self.monotonic() - seen)
        record = issued.record
        self._audit("signed", view, signer, serial=record.serial, not_after=f"{record.not_after:%Y-%m-%dT%H:%M:%SZ}")
        log.info("CSR %s signed: serial %s for %s, expires %s", view.name, record.serial, record.common_name,
                 f"{record.not_after:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip

    def _fail(self, signer: ConfiguredSigner, obj: Any, view: CsrView, refusal: CsrRefused) -> None:
        if not self.may_act():
            return
        now = self.clock()
        self._write_status(view.name, obj, lambda o: with_condition(o, FAILED, refusal.reason.value, str(refusal), now))
        self._finished.add(view.uid)
        self.metrics.decided(signer.name, "failed", refusal.reason.value)
        self._audit("failed", view, signer, reason=refusal.reason.value, message=str(refusal))
        log.warning("CSR %s failed: %s (%s)", view.name, refusal, refusal.reason.value)

    def _write_status(self, name: str, obj: Any, build: Callable[[Any], Any]) -> Any:
        """Update the status subresource; on a 409, read the request again and retry once if it is
        still approved and undecided (someone changed something else), else give up (ClusterConflict)."""
        certificates = self.client.certificates
        action = f"update status of CertificateSigningRequest {name}"
        try:
            return self.client.call(action, certificates.replace_certificate_signing_request_status, name, build(obj))
        except ClusterConflict:
            fresh = self.client.call(
                f"get CertificateSigningRequest {name}", certificates.read_certificate_signing_request, name
            )
            if CsrView.of(fresh).state is not CsrState.APPROVED or not self.may_act():
                raise
            return self.client.call(action, certificates.replace_certificate_signing_request_status, name, build(fresh))

    # ------------------------------------------------------------------ certificates that never arrived

    def _settle_undelivered(self, view: CsrView) -> None:
        pending = self._undelivered.pop(view.uid, None)
        if pending is None:
            return
        signer, issued = pending
        if _first_serial(view.certificate) != issued.record.serial:
            self._revoke(signer, issued, f"CSR {view.name} holds another certificate or none")

    def _revoke(self, signer: ConfiguredSigner, issued: IssuedCert, why: str) -> None:
        inventory, serial = signer.issuer.inventory, issued.record.serial
        if inventory is None:
            return
        try:
            inventory.revoke(serial, reason=NOT_DELIVERED, now=self.clock())
            log.warning("certificate %s revoked: never delivered (%s)", serial, why)
        except (PKIError, SQLAlchemyError) as e:
            self.metrics.error("revoke")
            log.error("certificate %s was never delivered (%s) and could not be revoked: %s", serial, why, e)

    # ------------------------------------------------------------------ audit

    def _audit(
        self, result: str, view: CsrView, signer: ConfiguredSigner, *, reason: str = "", message: str = "", **extra: str
    ) -> None:
        user, groups, sans = _identity(view.request)
        serial = extra.pop("serial", None)
        details: dict[str, Any] = {"uid": view.uid, "signer": signer.name, "sans": sans.as_strings()}
        if message:
            details["message"] = message
        details.update(extra)
        details["replica"] = self.identity
        event = csr_decision(
            view.name,
            outcome=result,
            requester=view.username,
            subject=user or None,
            reason=reason,
            serial=serial,
            groups=groups,
            details=details,
        )
        self.audit.record(self.clock(), event)


def _identity(request: bytes) -> tuple[str, tuple[str, ...], SubjectAltNames]:
    try:
        csr = parse_csr(request)
        user, groups = subject_user(csr.subject)
        return user, groups, csr_sans(csr)
    except (PKIError, ValueError):
        return "", (), SubjectAltNames()


def _first_serial(pem: bytes) -> str | None:
    from cryptography import x509

    try:
        return serial_hex(x509.load_pem_x509_certificate(pem).serial_number)
    except ValueError:
        return None
