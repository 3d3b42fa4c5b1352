"""What `authsvc rotate` looks at, read from a home: the facts pki/rotation/plan.py plans from.

Thin reads only. Certificates come from index range queries streamed in batches (a run
over 10,000 rows holds one batch at a time); the few files (CRLs, kubeconfigs, sa.pub)
are read whole. Also where things live: which file a certificate's inventory name is in,
which kubeconfigs embed which CA, where a CA's rollover state is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine, func, select

from authsvc.errors import InvalidInput
from authsvc.home.layout import pki_path
from authsvc.home.opened import Home
from authsvc.init.webhook_pki import APISERVER_WEBHOOK_CLIENT, WEBHOOK_CLIENT_CA
from authsvc.kubeconfig.documents import current_entries, decoded
from authsvc.settings import Settings
from pki.errors import PKIError, StoreError
from pki.inventory import CERTIFICATES, CertStatus
from pki.kubeadm.certlist import CA_SPECS, CERT_SPECS, KUBECONFIG_SPECS
from pki.profiles import INTERMEDIATE_CA, ROOT_CA
from pki.rotation.plan import (
    BackupsFact,
    CAFact,
    CertFact,
    CRLFact,
    DriftFact,
    KeyFacts,
    KeySchedule,
    KubeconfigFact,
    PruneFact,
    RotationFacts,
    RotationPolicy,
)
from pki.rotation.rollover import INTERRUPTED, RolloverState
from pki.store import backup_runs_before, load_certificates, read_bytes
from pki.tokens.kid import kid_for
from pki.tokens.signing_keys import ISSUED_TOKENS, REVOKED_TOKENS, KeyState, SigningKeyStore

CA_PROFILES = (ROOT_CA.name, INTERMEDIATE_CA.name)
STREAM_BATCH = 500


def rotation_policy(settings: Settings, renew_before: dt.timedelta | None = None) -> RotationPolicy:
    rotation, tokens = settings.rotation, settings.tokens
    return RotationPolicy(
        renew_before=renew_before or rotation.renew_before,
        ca_warn_within=rotation.ca_warn_within,
        crl_refresh_before=rotation.crl_refresh_before,
        keys=KeySchedule(
            rotate_every=rotation.keys.rotate_every,
            prepare_before=rotation.keys.prepare_before,
            publish_before_activate=tokens.publish_before_activate,
            retire_min_wait=tokens.retire_min_wait,
            leeway=tokens.leeway,
        ),
    )


# --- where things are -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertTarget:
    """The file an automatic certificate lives in, by its inventory name."""

    name: str
    path: Path
    in_kubeconfig: bool
    lifetime: dt.timedelta | None  # None: keep the certificate's own


def cert_target(home: Home, name: str) -> CertTarget:
    validity = home.settings.cluster.certificate_validity_period
    if any(name == s.base_name for s in CERT_SPECS):
        return CertTarget(name, home.layout.cert_path(name), False, validity)
    if any(name == k.file_name for k in KUBECONFIG_SPECS):
        return CertTarget(name, home.layout.path(name), True, validity)
    return CertTarget(name, home.layout.cert_path(name), False, None)


@dataclass(frozen=True, slots=True)
class KubeconfigTarget:
    """A kubeconfig whose cluster trusts pki/<ca>.crt; `client_file`: its client certificate and key
    are copies of pki/<client_name>.crt|key (the webhook's), else embedded and renewed in place."""

    path: Path
    ca: str
    client_name: str | None
    client_file: bool = False


def kubeconfig_targets(home: Home) -> list[KubeconfigTarget]:
    targets = [KubeconfigTarget(home.layout.path(k.file_name), k.ca, k.file_name) for k in KUBECONFIG_SPECS]
    webhook = home.settings.rotation.webhook_kubeconfig
    if webhook:
        targets.append(KubeconfigTarget(home.root / webhook, "ca", APISERVER_WEBHOOK_CLIENT, client_file=True))
    return [t for t in targets if t.path.is_file()]


def ca_names(home: Home) -> list[str]:
    """Every CA of the home that has its certificate here: kubeadm's, the webhook client CA, others."""
    names = [s.base_name for s in CA_SPECS] + [WEBHOOK_CLIENT_CA]
    query = select(CERTIFICATES.c.name).where(
        CERTIFICATES.c.profile.in_(CA_PROFILES), CERTIFICATES.c.status == CertStatus.VALID.value
    )
    with home.stores.engine.connect() as connection:
        names += [n for n in connection.execute(query.distinct()).scalars() if n]
    return [n for n in dict.fromkeys(names) if home.layout.cert_path(n).is_file()]


def rollover_path(home: Home, ca: str) -> Path:
    return home.root / "rollover" / f"{ca}.json"


def read_rollover(home: Home, ca: str) -> RolloverState | None:
    path = rollover_path(home, ca)
    if not path.is_file():
        return None
    return RolloverState.from_json(read_bytes(path, what="rollover state"), source=str(path))


# --- the facts ------------------------------------------------------------------------------


def gather_facts(home: Home, now: dt.datetime, policy: RotationPolicy) -> RotationFacts:
    rotation = home.settings.rotation
    cas = tuple(ca_fact(home, name) for name in ca_names(home))
    before = now - rotation.retention
    return RotationFacts(
        now=now,
        cas=cas,
        renewals=stream_facts(home.stores.engine, _renewals_query(now + policy.renew_before)),
        people=stream_facts(home.stores.engine, _people_query(now, now + policy.renew_before)),
        keys=key_facts(home),
        crls=tuple(c for c in (crl_fact(home, ca.name) for ca in cas) if c is not None),
        kubeconfigs=tuple(kubeconfig_fact(home, t) for t in kubeconfig_targets(home)),
        drifted=drift_facts(home),
        prune=prune_fact(home.stores.engine, before),
        backups=BackupsFact(before, backup_runs_before(home.layout.backups_dir, before)),
    )


def drift_facts(home: Home) -> tuple[DriftFact, ...]:
    """The automatic certificates that differ from the settings that shape them (authsvc/drift/)."""
    from authsvc.drift.detect import detect_drift

    reasons: dict[tuple[str, str], list[str]] = {}
    for drift in detect_drift(home, include_cas=False):
        reasons.setdefault((drift.expected.record_name, drift.expected.ca), []).append(drift.describe())
    return tuple(DriftFact(name, ca, "drift: " + "; ".join(why)) for (name, ca), why in reasons.items())


def ca_fact(home: Home, name: str) -> CAFact:
    cert = load_certificates(home.layout.cert_path(name), what=f"CA {name} certificate")[0]
    state = read_rollover(home, name)
    return CAFact(
        name,
        cert.not_valid_after_utc,
        has_key=home.layout.key_path(name).is_file(),
        rollover_phase=state.state.value if state else None,
        rollover_interrupted=state is not None and state.state in INTERRUPTED,
    )


# The columns a CertFact needs (whole rows would cost a JSON decode of groups and SANs each).
FACT_COLUMNS = (
    CERTIFICATES.c.name,
    CERTIFICATES.c.common_name,
    CERTIFICATES.c.auto_renew,
    CERTIFICATES.c.ca_name,
    CERTIFICATES.c.serial,
    CERTIFICATES.c.not_before,
    CERTIFICATES.c.not_after,
    CERTIFICATES.c.profile,
)


def _renewals_query(until: dt.datetime) -> Any:
    return (
        select(*FACT_COLUMNS)
        .where(CERTIFICATES.c.status == CertStatus.VALID.value, CERTIFICATES.c.auto_renew.is_(True))
        .where(CERTIFICATES.c.not_after <= until, CERTIFICATES.c.profile.not_in(CA_PROFILES))
        .order_by(CERTIFICATES.c.not_after, CERTIFICATES.c.serial)
    )


def _people_query(now: dt.datetime, until: dt.datetime) -> Any:
    return (
        select(*FACT_COLUMNS)
        .where(CERTIFICATES.c.status == CertStatus.VALID.value, CERTIFICATES.c.auto_renew.is_(False))
        .where(CERTIFICATES.c.not_after > now, CERTIFICATES.c.not_after <= until)
        .where(CERTIFICATES.c.profile.not_in(CA_PROFILES))
        .order_by(CERTIFICATES.c.not_after, CERTIFICATES.c.serial)
    )


def stream_facts(engine: Engine, query: Any) -> Iterator[CertFact]:
    """Rows as CertFacts, STREAM_BATCH at a time; the query runs when the plan reaches it."""
    with engine.connect() as connection:
        for row in connection.execution_options(yield_per=STREAM_BATCH).execute(query):
            name = row.name if row.auto_renew else row.common_name
            yield CertFact(name or row.serial, row.ca_name, row.serial, row.not_before, row.not_after, row.profile)


def key_facts(home: Home) -> KeyFacts | None:

    store, files = SigningKeyStore(home.stores.engine), home.stores.signing_key_files
    records = tuple(store.keys())
    if not records:
        return None  # no token keys in this home (or not adopted yet): nothing to advance
    retiring = next((r for r in records if r.state is KeyState.RETIRING), None)
    return KeyFacts(
        records=records,
        retiring_latest_expiry=store.latest_expiry(retiring.kid) if retiring else None,
        active_file_kid=_file_kid(files.load, files.active_key),
        next_file_kid=_file_kid(files.load, files.next_key),
        bundle_kids=bundle_kids(files.public_bundle),
    )


def _file_kid(load: Any, path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        return kid_for(load(path).public_key())
    except PKIError:
        return None  # unreadable: the repair (or the phase that needs it) reports why


def bundle_kids(path: Path) -> frozenset[str]:
    """The kids of the public keys in a PEM bundle (pki/sa.pub)."""
    if not path.is_file():
        return frozenset()
    marker = b"-----BEGIN PUBLIC KEY-----"
    blocks = [marker + part for part in path.read_bytes().split(marker)[1:]]
    return frozenset(kid_for(serialization.load_pem_public_key(b)) for b in blocks)  # type: ignore[arg-type]


def crl_fact(home: Home, ca: str) -> CRLFact | None:
    """The CRL at pki/<ca>.crl, when the operator makes one for this CA."""
    path = pki_path(home.root, ca, "crl")
    if not path.is_file():
        return None
    crl = x509.load_pem_x509_crl(path.read_bytes())
    current = load_certificates(home.layout.cert_path(ca))[0]
    latest = select(func.max(CERTIFICATES.c.revoked_at)).where(
        CERTIFICATES.c.ca_name == ca, CERTIFICATES.c.status == CertStatus.REVOKED.value
    )
    with home.stores.engine.connect() as connection:
        revoked_at = connection.execute(latest).scalar()
    return CRLFact(
        ca,
        crl.last_update_utc,
        crl.next_update_utc,
        crl.is_signature_valid(current.public_key()),  # type: ignore[arg-type]
        _utc(revoked_at),
    )


def read_kubeconfig(path: Path) -> dict[str, Any]:
    """A kubeconfig parsed with libyaml when it is there: the daily no-op run reads every one."""
    data = yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} is not a kubeconfig (top level is not a mapping)")
    return data


def kubeconfig_fact(home: Home, target: KubeconfigTarget) -> KubeconfigFact:
    shown = str(target.path.relative_to(home.root)) if target.path.is_relative_to(home.root) else str(target.path)
    try:
        cluster, user = current_entries(read_kubeconfig(target.path), target.path)
    except (StoreError, ValueError, yaml.YAMLError):
        client = target.client_name if target.client_file else None
        return KubeconfigFact(shown, target.ca, ca_current=False, client_name=client, client_current=False)
    ca_current = decoded(cluster, "certificate-authority-data") == home.layout.cert_path(target.ca).read_bytes()
    if not (target.client_file and target.client_name):
        return KubeconfigFact(shown, target.ca, ca_current)  # its client certificate is renewed in place
    client_current = decoded(user, "client-certificate-data") == home.layout.cert_path(target.client_name).read_bytes()
    return KubeconfigFact(shown, target.ca, ca_current, target.client_name, client_current)


def prune_fact(engine: Engine, before: dt.datetime) -> PruneFact:
    certificates = select(func.count()).where(
        CERTIFICATES.c.not_after < before, CERTIFICATES.c.profile.not_in(CA_PROFILES)
    )
    cutoff = int(before.timestamp())
    tokens = select(func.count()).where(ISSUED_TOKENS.c.exp < cutoff)
    revoked = select(func.count()).where(REVOKED_TOKENS.c.exp < cutoff)
    with engine.connect() as connection:
        count = [int(connection.execute(q).scalar() or 0) for q in (certificates, tokens, revoked)]
    return PruneFact(before, count[0], count[1] + count[2])


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
