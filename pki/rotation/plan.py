"""Planning one rotation run: from facts about the inventory, the files and `now`, the typed actions.

Pure: the facts are values (the executor, authsvc/rotation/executor.py, gathers them and runs the
actions), so every decision of `authsvc rotate` is a function of its inputs and a test can
ask "what would happen on 2031-03-01?" without a home. Most runs plan nothing; the facts
that are streamed (certificates inside the renewal window, people's certificates near
expiry) come from index range queries, so a run that plans nothing reads almost nothing.

The decisions:
- an automatic certificate is renewed once less than min(renew_before, half its lifetime)
  is left, unless its CA would expire first (then a human must roll the CA over);
- a person's certificate in the same window is reported, never renewed (it proves who
  someone is: issuing it again is a human decision); short-lived ones (a lifetime shorter
  than the window, e.g. a day) are left alone: expiring is what they are for;
- a CA expiring within `ca_warn_within`, or a CA rollover interrupted half-way, needs a human;
- the token signing key moves prepare → activate → retire on the schedule of `KeySchedule`;
- a certificate that differs from the settings that shape it (drift: SANs, node name, lifetime,
  key type) is reissued to match them, due or not;
- a CRL is re-signed before its nextUpdate, after a revocation, or after its CA changed;
- rows that expired more than `retention` ago are pruned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pki.builder import CLOCK_SKEW
from pki.tokens.rotation import retire_after
from pki.tokens.signing_keys import PUBLISHED_STATES, KeyState, SigningKeyRecord


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- facts -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertFact:
    """A valid inventory row: an automatic certificate (auto_renew) or a person's certificate."""

    name: str  # inventory name ("etcd/server", "admin.conf"); the common name for people's
    ca: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    profile: str = "client"

    @property
    def lifetime(self) -> dt.timedelta:
        """How long it was made to live, without the builder's backdating."""
        span = self.not_after - self.not_before
        return span - CLOCK_SKEW if span > 2 * CLOCK_SKEW else span


@dataclass(frozen=True, slots=True)
class CAFact:
    name: str
    not_after: dt.datetime  # of the CA that signs now (the first certificate of pki/<ca>.crt)
    has_key: bool = True  # False: externally managed, nothing here can sign with it
    rollover_phase: str | None = None  # pki.rotation.rollover's phase, None when none was ever started
    rollover_interrupted: bool = False


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """The signing keys as the inventory and the files (pki/sa.key, sa-next.key, sa.pub) hold them."""

    records: tuple[SigningKeyRecord, ...]
    retiring_latest_expiry: dt.datetime | None  # the last token the retiring key signed expires then
    active_file_kid: str | None  # the key in pki/sa.key
    next_file_kid: str | None  # the key in pki/sa-next.key
    bundle_kids: frozenset[str]  # the keys in pki/sa.pub

    def one(self, state: KeyState) -> SigningKeyRecord | None:
        return next((r for r in self.records if r.state is state), None)


@dataclass(frozen=True, slots=True)
class CRLFact:
    ca: str
    this_update: dt.datetime
    next_update: dt.datetime | None
    signed_by_current_ca: bool
    latest_revocation: dt.datetime | None  # the inventory's newest revocation by this CA


@dataclass(frozen=True, slots=True)
class KubeconfigFact:
    """A kubeconfig that trusts one of our CAs (kubeadm's, the API server's webhook one)."""

    path: str  # as shown to the operator
    ca: str
    ca_current: bool  # certificate-authority-data equals pki/<ca>.crt
    client_name: str | None = None  # the certificate it embeds, by inventory name
    client_current: bool = True


@dataclass(frozen=True, slots=True)
class DriftFact:
    """An automatic certificate that differs from the settings that shape it."""

    name: str  # inventory name
    ca: str
    reason: str  # what differs, and which settings say so


@dataclass(frozen=True, slots=True)
class PruneFact:
    before: dt.datetime
    certificates: int
    tokens: int


@dataclass(frozen=True, slots=True)
class BackupsFact:
    """The runs under backups/ (directory names, pki.store.BACKUP_RUN_FORMAT) taken before `before`."""

    before: dt.datetime
    runs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeySchedule:
    rotate_every: dt.timedelta | None
    prepare_before: dt.timedelta
    publish_before_activate: dt.timedelta
    retire_min_wait: dt.timedelta
    leeway: dt.timedelta


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    renew_before: dt.timedelta
    ca_warn_within: dt.timedelta
    crl_refresh_before: dt.timedelta
    keys: KeySchedule


@dataclass(frozen=True, slots=True)
class RotationFacts:
    now: dt.datetime
    cas: tuple[CAFact, ...] = ()
    # Streamed: automatic certificates that may be due, and people's that may be near expiry.
    renewals: Iterable[CertFact] = ()
    people: Iterable[CertFact] = ()
    keys: KeyFacts | None = None
    crls: tuple[CRLFact, ...] = ()
    kubeconfigs: tuple[KubeconfigFact, ...] = ()
    drifted: tuple[DriftFact, ...] = ()
    prune: PruneFact | None = None
    backups: BackupsFact | None = None


# --- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenewCertificate:
    name: str
    ca: str
    serial: str  # the inventory row it replaces
    not_after: dt.datetime
    reason: str
    profile: str = "client"  # the inventory's profile name, kept by the renewal
    # A CA rollover's re-issue: renew unless already signed by the CA that signs now (due or not).
    reissue: bool = False
    kind: str = field(default="renew", init=False)

    @property
    def target(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ReissueCertificate:
    """Reissue a certificate to match the settings (a new key when the key type changed)."""

    name: str
    ca: str
    reason: str
    kind: str = field(default="reissue", init=False)

    @property
    def target(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class AdvanceSigningKey:
    phase: str  # prepare | activate | retire (pki.tokens.rotation.Phase)
    kid: str  # the key that moves (for prepare: the active key it will follow)
    reason: str
    kind: str = field(default="signing-key", init=False)

    @property
    def target(self) -> str:
        return f"prepare a successor of {self.kid}" if self.phase == "prepare" else f"{self.phase} {self.kid}"


@dataclass(frozen=True, slots=True)
class RepairSigningKeys:
    what: str  # "promote": finish an activation (sa-next.key → sa.key); "republish": rewrite sa.pub
    reason: str
    kind: str = field(default="signing-key-files", init=False)

    @property
    def target(self) -> str:
        return self.what


@dataclass(frozen=True, slots=True)
class SyncKubeconfig:
    path: str
    ca: str
    client_name: str | None
    reason: str
    kind: str = field(default="kubeconfig", init=False)

    @property
    def target(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class RefreshCRL:
    ca: str
    reason: str
    kind: str = field(default="crl", init=False)

    @property
    def target(self) -> str:
        return self.ca


@dataclass(frozen=True, slots=True)
class PruneInventory:
    before: dt.datetime
    certificates: int
    tokens: int
    reason: str
    kind: str = field(default="prune", init=False)

    @property
    def target(self) -> str:
        return f"expired before {iso(self.before)}"


@dataclass(frozen=True, slots=True)
class PruneBackups:
    """Delete old backups/<time>/ runs: they hold the private keys and certificates rotations replaced."""

    before: dt.datetime
    runs: tuple[str, ...]
    reason: str
    kind: str = field(default="prune-backups", init=False)

    @property
    def target(self) -> str:
        return f"backups taken before {iso(self.before)}"


@dataclass(frozen=True, slots=True)
class NeedsHuman:
    """Reported, nothing changed: a person must act (exit status 3)."""

    subject: str
    reason: str
    deadline: dt.datetime | None = None
    kind: str = field(default="needs-human", init=False)

    @property
    def target(self) -> str:
        return self.subject


Action = (
    RenewCertificate
    | ReissueCertificate
    | AdvanceSigningKey
    | RepairSigningKeys
    | SyncKubeconfig
    | RefreshCRL
    | PruneInventory
    | PruneBackups
    | NeedsHuman
)


# --- planning ----------------------------------------------------------------------------------


def renewal_window(cert: CertFact, renew_before: dt.timedelta) -> dt.timedelta:
    """Renew with this much left: renew_before, or half the lifetime for short-lived certificates."""
    return min(renew_before, cert.lifetime / 2)


def is_due(cert: CertFact, now: dt.datetime, renew_before: dt.timedelta) -> bool:
    return cert.not_after - now <= renewal_window(cert, renew_before)


def plan_rotation(facts: RotationFacts, policy: RotationPolicy) -> Iterator[Action]:
    """Every action of one run, in the order they run: repairs and renewals first (they keep
    things working), then key phases, CRLs, pruning, and last what needs a human."""
    cas = {ca.name: ca for ca in facts.cas}
    renewed: set[str] = set()
    if facts.keys is not None:
        yield from plan_key_repairs(facts.keys)
    dependents = {k.client_name for k in facts.kubeconfigs if k.client_name}
    drifted = {d.name for d in facts.drifted}
    for cert in facts.renewals:
        if cert.name in drifted:
            continue  # reissued below, which renews it as well
        action = plan_renewal(cert, cas.get(cert.ca), facts.now, policy.renew_before)
        if isinstance(action, RenewCertificate) and cert.name in dependents:
            renewed.add(cert.name)
        if action is not None:
            yield action
    for drift in facts.drifted:
        reissue = plan_reissue(drift, cas.get(drift.ca))
        if isinstance(reissue, ReissueCertificate) and drift.name in dependents:
            renewed.add(drift.name)
        yield reissue
    yield from plan_kubeconfigs(facts.kubeconfigs, renewed)
    if facts.keys is not None:
        yield from plan_key_phases(facts.keys, facts.now, policy.keys)
    yield from plan_crls(facts.crls, facts.now, policy.crl_refresh_before)
    if facts.prune is not None and (facts.prune.certificates or facts.prune.tokens):
        p = facts.prune
        why = f"{p.certificates} certificate and {p.tokens} token records expired before {iso(p.before)}"
        yield PruneInventory(p.before, p.certificates, p.tokens, why)
    if facts.backups is not None and facts.backups.runs:
        b = facts.backups
        yield PruneBackups(b.before, b.runs, f"{len(b.runs)} backup runs taken before {iso(b.before)}")
    yield from plan_people(facts.people, facts.now, policy.renew_before)
    yield from plan_cas(facts.cas, facts.now, policy.ca_warn_within)


def plan_renewal(
    cert: CertFact, ca: CAFact | None, now: dt.datetime, renew_before: dt.timedelta
) -> RenewCertificate | NeedsHuman | None:
    if not is_due(cert, now, renew_before):
        return None
    left = f"expires {iso(cert.not_after)}" if cert.not_after > now else f"EXPIRED at {iso(cert.not_after)}"
    if ca is None or not ca.has_key:
        return NeedsHuman(
            cert.name, f"{left}; its CA {cert.ca} is not in this home (externally managed): renew it there"
        )
    if now + cert.lifetime > ca.not_after:
        return NeedsHuman(
            cert.name,
            f"{left}; renewed for {cert.lifetime.days}d it would outlive CA {cert.ca} (expires {iso(ca.not_after)}):"
            f" roll the CA over first (authsvc ca rotate --phase prepare --ca {cert.ca})",
            cert.not_after,
        )
    return RenewCertificate(cert.name, cert.ca, cert.serial, cert.not_after, left, cert.profile)


def plan_reissue(drift: DriftFact, ca: CAFact | None) -> ReissueCertificate | NeedsHuman:
    if ca is None or not ca.has_key:
        return NeedsHuman(
            drift.name, f"{drift.reason}; its CA {drift.ca} is not in this home (externally managed): reissue it there"
        )
    return ReissueCertificate(drift.name, drift.ca, drift.reason)


def plan_kubeconfigs(kubeconfigs: Iterable[KubeconfigFact], renewed: set[str]) -> Iterator[SyncKubeconfig]:
    for k in kubeconfigs:
        reasons = []
        if not k.ca_current:
            reasons.append(f"its CA data differs from pki/{k.ca}.crt")
        if k.client_name and (not k.client_current or k.client_name in renewed):
            reasons.append(f"its client certificate {k.client_name} is renewed")
        if reasons:
            yield SyncKubeconfig(k.path, k.ca, k.client_name, "; ".join(reasons))


def plan_key_repairs(keys: KeyFacts) -> Iterator[RepairSigningKeys]:
    active = keys.one(KeyState.ACTIVE)
    if active is not None and keys.active_file_kid != active.kid and keys.next_file_kid == active.kid:
        yield RepairSigningKeys("promote", f"the active key {active.kid} is still in pki/sa-next.key")
    published = frozenset(r.kid for r in keys.records if r.state in PUBLISHED_STATES)
    if published != keys.bundle_kids:
        yield RepairSigningKeys("republish", "pki/sa.pub does not hold exactly the published keys")


def plan_key_phases(keys: KeyFacts, now: dt.datetime, schedule: KeySchedule) -> Iterator[AdvanceSigningKey]:
    """Retire, then prepare, then activate: each phase as soon as its rule allows."""
    active, prepared, retiring = keys.one(KeyState.ACTIVE), keys.one(KeyState.NEXT), keys.one(KeyState.RETIRING)
    if retiring is not None:
        earliest, why = retire_after(retiring, keys.retiring_latest_expiry, schedule.retire_min_wait, schedule.leeway)
        if now < earliest:
            return  # nothing else can move while a key is retiring
        yield AdvanceSigningKey("retire", retiring.kid, f"{why}, before now")
    if active is None:
        return
    prepared_at = prepared.created_at if prepared is not None else None
    if prepared is None and schedule.rotate_every is not None:
        due = (active.activated_at or active.created_at) + schedule.rotate_every
        if now >= due - schedule.prepare_before:
            yield AdvanceSigningKey("prepare", active.kid, f"key {active.kid} is due for replacement at {iso(due)}")
            prepared_at = now
    if prepared_at is not None:
        activate_at = prepared_at + max(schedule.prepare_before, schedule.publish_before_activate)
        if now >= activate_at:
            kid = prepared.kid if prepared is not None else "(prepared now)"
            yield AdvanceSigningKey("activate", kid, f"published since {iso(prepared_at)}")


def plan_crls(crls: Iterable[CRLFact], now: dt.datetime, refresh_before: dt.timedelta) -> Iterator[RefreshCRL]:
    for crl in crls:
        if not crl.signed_by_current_ca:
            yield RefreshCRL(crl.ca, "signed by a CA key that no longer signs")
        elif crl.latest_revocation is not None and crl.latest_revocation > crl.this_update:
            yield RefreshCRL(crl.ca, f"a certificate was revoked at {iso(crl.latest_revocation)}, after it was made")
        elif crl.next_update is None or crl.next_update - now <= refresh_before:
            when = iso(crl.next_update) if crl.next_update else "never (no nextUpdate)"
            yield RefreshCRL(crl.ca, f"nextUpdate {when}")


def plan_people(people: Iterable[CertFact], now: dt.datetime, renew_before: dt.timedelta) -> Iterator[NeedsHuman]:
    for cert in people:
        if cert.not_after > now and cert.lifetime > renew_before and is_due(cert, now, renew_before):
            yield NeedsHuman(
                f"{cert.profile} certificate {cert.name} (serial {cert.serial})",
                f"expires {iso(cert.not_after)}; not renewed automatically: issue a new one "
                f"(authsvc issue / certs create) if it is still needed",
                cert.not_after,
            )


def plan_cas(cas: Iterable[CAFact], now: dt.datetime, warn_within: dt.timedelta) -> Iterator[NeedsHuman]:
    for ca in cas:
        flag = f"--ca {ca.name}"
        if ca.rollover_interrupted:
            yield NeedsHuman(
                f"CA {ca.name}",
                f"a rollover stopped half-way in phase {ca.rollover_phase}: rerun "
                f"`authsvc ca rotate --phase {_phase_command(ca.rollover_phase)} {flag}` to finish it",
            )
        elif ca.has_key and ca.not_after - now < warn_within:
            step = _next_step(ca.rollover_phase)
            yield NeedsHuman(
                f"CA {ca.name}",
                f"expires {iso(ca.not_after)} (in {(ca.not_after - now).days}d): "
                f"`authsvc ca rotate --phase {step} {flag}`",
                ca.not_after,
            )


def _phase_command(phase: str | None) -> str:
    """The command that continues `phase` ("switching" → switch)."""
    return {"preparing": "prepare", "switching": "switch", "finishing": "finish"}.get(phase or "", "prepare")


def _next_step(phase: str | None) -> str:
    return {"prepared": "switch", "switched": "finish"}.get(phase or "", "prepare")
