"""A CertificateSigningRequest as the signer reads it, and the bodies it writes back.

`CsrView.of(obj)` takes the kubernetes client's model (from a list, a watch event or a write's
answer) and keeps what decisions need: who asked, for which signer and usages, the PEM
request, the conditions (Approved, Denied, Failed: each at most once, never removed, per
certificates.k8s.io/v1) and the certificate once issued.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pki.csr_signers import KubernetesCSR

APPROVED = "Approved"
DENIED = "Denied"
FAILED = "Failed"


class CsrState(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"  # approved, not signed yet
    ISSUED = "Issued"
    DENIED = "Denied"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    reason: str
    message: str
    last_update: dt.datetime | None


def _decode(value: Any) -> bytes:
    """spec.request and status.certificate are []byte in Go: base64 in JSON."""
    if not value:
        return b""
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return b""


@dataclass(frozen=True, slots=True)
class CsrView:
    name: str
    uid: str
    resource_version: str
    created: dt.datetime | None
    signer_name: str
    username: str
    groups: tuple[str, ...]
    usages: tuple[str, ...]
    expiration_seconds: int | None
    request: bytes
    conditions: tuple[Condition, ...]
    certificate: bytes

    @classmethod
    def of(cls, obj: Any) -> CsrView:
        meta, spec, status = obj.metadata, obj.spec, obj.status
        conditions = tuple(
            Condition(c.type, c.reason or "", c.message or "", c.last_update_time)
            for c in ((status.conditions if status is not None else None) or [])
            if c.status == "True"
        )
        return cls(
            name=meta.name or "",
            uid=meta.uid or "",
            resource_version=meta.resource_version or "",
            created=meta.creation_timestamp,
            signer_name=spec.signer_name or "",
            username=spec.username or "",
            groups=tuple(spec.groups or ()),
            usages=tuple(spec.usages or ()),
            expiration_seconds=spec.expiration_seconds,
            request=_decode(spec.request),
            conditions=conditions,
            certificate=_decode(status.certificate if status is not None else None),
        )

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    @property
    def state(self) -> CsrState:
        if self.condition(FAILED) is not None:
            return CsrState.FAILED
        if self.condition(DENIED) is not None:
            return CsrState.DENIED
        if self.certificate:
            return CsrState.ISSUED
        if self.condition(APPROVED) is not None:
            return CsrState.APPROVED
        return CsrState.PENDING

    @property
    def decision(self) -> Condition | None:
        """The condition that explains the state: Failed, else Denied, else Approved."""
        return self.condition(FAILED) or self.condition(DENIED) or self.condition(APPROVED)

    def as_request(self) -> KubernetesCSR:
        return KubernetesCSR(
            self.request, self.signer_name, self.usages, self.username, self.groups, self.expiration_seconds
        )


def with_condition(obj: Any, kind: str, reason: str, message: str, now: dt.datetime) -> Any:
    """A copy of `obj` with the condition added (status True), for the approval or status subresource."""
    from kubernetes import client

    body = obj.model_copy(deep=True)
    if body.status is None:
        body.status = client.V1CertificateSigningRequestStatus()
    # metav1.Time: whole seconds (the API server keeps no more).
    when = now.astimezone(dt.UTC).replace(microsecond=0)
    condition = client.V1CertificateSigningRequestCondition(
        type=kind, status="True", reason=reason, message=message, last_update_time=when, last_transition_time=when
    )
    body.status.conditions = [*(body.status.conditions or []), condition]
    return body


def with_certificate(obj: Any, pem: bytes) -> Any:
    """A copy of `obj` with status.certificate set (the certificate, then any intermediates)."""
    from kubernetes import client

    body = obj.model_copy(deep=True)
    if body.status is None:
        body.status = client.V1CertificateSigningRequestStatus()
    body.status.certificate = base64.b64encode(pem).decode("ascii")
    return body
