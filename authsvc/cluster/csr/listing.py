"""`authsvc csr list`: the cluster's CertificateSigningRequests, with the decision's reason.

kubectl shows the condition types; operators of a signer also need *why*: the reason and
message of the Failed, Denied or Approved condition, what was asked for (subject, SANs,
usages) and, once issued, the certificate's serial (to find it with `authsvc certs list` and
revoke it) and expiry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from authsvc.cluster.csr.requests import CsrState, CsrView
from pki.csr import csr_sans, parse_csr
from pki.errors import PKIError
from pki.inventory import serial_hex
from pki.names import subject_user

COLUMNS = [
    ("NAME", "name"),
    ("AGE", "age"),
    ("SIGNERNAME", "signerName"),
    ("REQUESTOR", "requester"),
    ("SUBJECT", "subject"),
    ("STATE", "state"),
    ("REASON", "reason"),
]


def age(created: dt.datetime | None, now: dt.datetime) -> str:
    """kubectl's short age: 42s, 5m, 3h, 2d."""
    if created is None:
        return "<unknown>"
    seconds = max(0, int((now - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def row(view: CsrView, now: dt.datetime) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": view.name,
        "age": age(view.created, now),
        "created": view.created.isoformat() if view.created else None,
        "signerName": view.signer_name,
        "requester": view.username,
        "requesterGroups": list(view.groups),
        "usages": list(view.usages),
        "expirationSeconds": view.expiration_seconds,
    }
    data.update(_requested(view.request))
    decision = view.decision
    data["state"] = view.state.value
    data["reason"] = (
        f"{decision.reason}: {decision.message}"
        if decision and decision.message
        else (decision.reason if decision else "")
    )
    if view.certificate:
        data.update(_issued(view.certificate))
        if view.state is CsrState.ISSUED:
            data["reason"] = f"serial {data['serial']}, expires {data['notAfter']}"
    return data


def rows(
    objects: Iterable[Any], now: dt.datetime, *, states: Sequence[str] = (), signer: str | None = None
) -> list[dict[str, Any]]:
    views = sorted((CsrView.of(o) for o in objects), key=lambda v: (v.created or now, v.name))
    wanted = {s.lower() for s in states}
    return [
        row(v, now)
        for v in views
        if (not wanted or v.state.value.lower() in wanted) and (signer is None or v.signer_name == signer)
    ]


def _requested(request: bytes) -> dict[str, Any]:
    try:
        csr = parse_csr(request)
        user, groups = subject_user(csr.subject)
        sans = csr_sans(csr).as_strings()
    except (PKIError, ValueError):
        return {"subject": "<not a CSR>", "user": None, "groups": [], "sans": []}
    subject = ",".join([f"CN={user}", *(f"O={g}" for g in groups)])
    return {"subject": subject, "user": user, "groups": list(groups), "sans": sans}


def _issued(pem: bytes) -> dict[str, Any]:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return {"serial": None, "notAfter": None}
    return {"serial": serial_hex(cert.serial_number), "notAfter": f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"}
