"""The planner alone (pki/rotation/plan.py): facts in, typed actions out, no home. Each rule
with the case just inside it and its twin just outside."""

from __future__ import annotations

import datetime as dt

import pytest

from pki.rotation.plan import (
    AdvanceSigningKey,
    BackupsFact,
    CAFact,
    CertFact,
    CRLFact,
    KeyFacts,
    KeySchedule,
    KubeconfigFact,
    NeedsHuman,
    PruneBackups,
    PruneFact,
    PruneInventory,
    RefreshCRL,
    RenewCertificate,
    RepairSigningKeys,
    RotationFacts,
    RotationPolicy,
    SyncKubeconfig,
    plan_rotation,
)
from pki.tokens.signing_keys import KeyState, SigningKeyRecord

NOW = dt.datetime(2031, 6, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SCHEDULE = KeySchedule(
    rotate_every=90 * DAY,
    prepare_before=7 * DAY,
    publish_before_activate=dt.timedelta(hours=1),
    retire_min_wait=dt.timedelta(hours=1),
    leeway=dt.timedelta(seconds=30),
)
POLICY = RotationPolicy(renew_before=30 * DAY, ca_warn_within=365 * DAY, crl_refresh_before=2 * DAY, keys=SCHEDULE)
CA = CAFact("ca", NOW + 3000 * DAY)


def cert(days_left: float, lifetime_days: float = 365, name: str = "apiserver", ca: str = "ca") -> CertFact:
    not_after = NOW + dt.timedelta(days=days_left)
    return CertFact(name, ca, "ab12", not_after - dt.timedelta(days=lifetime_days, minutes=5), not_after, "server")


def plan(**facts: object) -> list[object]:
    return list(plan_rotation(RotationFacts(now=NOW, **facts), POLICY))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("days_left", "lifetime", "renewed"),
    [
        (29.9, 365, True),
        (30.1, 365, False),  # the twin: outside renew_before
        (-1, 365, True),  # already expired: renewed all the same (same key, new window)
        (4.9, 10, True),  # short-lived: half its lifetime
        (5.1, 10, False),
    ],
)
def test_an_automatic_certificate_is_renewed_inside_its_window(
    days_left: float, lifetime: float, renewed: bool
) -> None:
    actions = plan(cas=(CA,), renewals=[cert(days_left, lifetime)])
    assert [type(a) for a in actions] == ([RenewCertificate] if renewed else [])
    if renewed:
        assert actions[0].profile == "server" and actions[0].serial == "ab12"  # type: ignore[attr-defined]


def test_a_renewal_that_would_outlive_its_ca_asks_for_a_rollover_instead() -> None:
    short_ca = CAFact("ca", NOW + 200 * DAY)
    (action,) = [a for a in plan(cas=(short_ca,), renewals=[cert(10)]) if a.target == "apiserver"]  # type: ignore[attr-defined]
    assert isinstance(action, NeedsHuman)
    assert "outlive CA ca" in action.reason and "ca rotate --phase prepare --ca ca" in action.reason
    assert isinstance(plan(cas=(CA,), renewals=[cert(10)])[0], RenewCertificate)  # the twin


def test_a_certificate_of_an_external_ca_is_reported_not_renewed() -> None:
    for ca in (CAFact("etcd/ca", NOW + 3000 * DAY, has_key=False), None):
        actions = plan(cas=(ca,) if ca else (), renewals=[cert(10, ca="etcd/ca", name="etcd/server")])
        assert [type(a) for a in actions] == [NeedsHuman] and "not in this home" in actions[0].reason  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("days_left", "lifetime", "reported"),
    [
        (20, 365, True),
        (40, 365, False),  # not yet in the window
        (0.5, 2, False),  # a 2-day certificate: short-lived by design
        (-1, 365, False),  # expired: nothing left to warn about
    ],
)
def test_peoples_certificates_are_reported_never_renewed(days_left: float, lifetime: float, reported: bool) -> None:
    person = CertFact("alice", "ca", "cd34", NOW - dt.timedelta(days=lifetime - days_left), NOW + days_left * DAY)
    actions = plan(cas=(CA,), people=[person])
    assert [type(a) for a in actions] == ([NeedsHuman] if reported else [])
    if reported:
        assert "alice" in actions[0].target and "not renewed automatically" in actions[0].reason  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("ca", "expected"),
    [
        (CAFact("ca", NOW + 200 * DAY), "--phase prepare --ca ca"),
        (CAFact("ca", NOW + 200 * DAY, rollover_phase="prepared"), "--phase switch --ca ca"),
        (CAFact("ca", NOW + 3000 * DAY, rollover_phase="switching", rollover_interrupted=True), "stopped half-way"),
        (CAFact("ca", NOW + 400 * DAY), None),  # the twin: more than ca_warn_within left
        (CAFact("etcd/ca", NOW + 20 * DAY, has_key=False), None),  # external: not ours to roll over
    ],
)
def test_cas_that_need_a_human(ca: CAFact, expected: str | None) -> None:
    actions = plan(cas=(ca,))
    if expected is None:
        assert actions == []
    else:
        (action,) = actions
        assert isinstance(action, NeedsHuman) and expected in action.reason


def key(
    kid: str, state: KeyState, created_days_ago: float, activated_days_ago: float | None = None
) -> SigningKeyRecord:
    activated = NOW - activated_days_ago * DAY if activated_days_ago is not None else None
    return SigningKeyRecord(kid, "ES256", b"", state, "generated", NOW - created_days_ago * DAY, activated)


def keys(*records: SigningKeyRecord, latest: dt.datetime | None = None, **files: object) -> KeyFacts:
    published = frozenset(r.kid for r in records if r.state is not KeyState.RETIRED)
    active = next((r.kid for r in records if r.state is KeyState.ACTIVE), None)
    defaults: dict[str, object] = {"active_file_kid": active, "next_file_kid": None, "bundle_kids": published}
    return KeyFacts(tuple(records), latest, **{**defaults, **files})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "phases"),
    [
        (keys(key("a", KeyState.ACTIVE, 82, 82)), []),
        (keys(key("a", KeyState.ACTIVE, 83, 83)), ["prepare"]),  # 7 days before the 90 are up
        (keys(key("a", KeyState.ACTIVE, 89, 89), key("b", KeyState.NEXT, 6.9)), []),
        (keys(key("a", KeyState.ACTIVE, 90, 90), key("b", KeyState.NEXT, 7)), ["activate"]),
        # A retiring key blocks everything until the last token it signed has expired.
        (keys(key("b", KeyState.ACTIVE, 200, 200), key("a", KeyState.RETIRING, 300), latest=NOW + DAY), []),
        (
            keys(key("b", KeyState.ACTIVE, 200, 200), key("a", KeyState.RETIRING, 300), latest=NOW - DAY),
            ["retire", "prepare"],
        ),
    ],
)
def test_the_signing_key_schedule(facts: KeyFacts, phases: list[str]) -> None:
    actions = plan(keys=facts)
    assert [a.phase for a in actions if isinstance(a, AdvanceSigningKey)] == phases


def test_signing_key_files_out_of_step_are_repaired() -> None:
    active = key("b", KeyState.ACTIVE, 1, 1)
    half_activated = keys(active, active_file_kid="a", next_file_kid="b")
    stale_bundle = keys(active, bundle_kids=frozenset({"a", "b"}))
    assert [a.what for a in plan(keys=half_activated) if isinstance(a, RepairSigningKeys)] == ["promote"]
    assert [a.what for a in plan(keys=stale_bundle) if isinstance(a, RepairSigningKeys)] == ["republish"]
    assert plan(keys=keys(active)) == []  # the twin: files that match the inventory


@pytest.mark.parametrize(
    ("crl", "refreshed"),
    [
        (CRLFact("ca", NOW - 5 * DAY, NOW + 1.9 * DAY, True, None), True),
        (CRLFact("ca", NOW - 5 * DAY, NOW + 2.1 * DAY, True, None), False),
        (CRLFact("ca", NOW - 5 * DAY, NOW + 6 * DAY, True, NOW - DAY), True),  # revoked after it was made
        (CRLFact("ca", NOW - 5 * DAY, NOW + 6 * DAY, True, NOW - 6 * DAY), False),
        (CRLFact("ca", NOW - 5 * DAY, NOW + 6 * DAY, False, None), True),  # signed by the old CA key
    ],
)
def test_crls_are_refreshed_before_next_update_after_revocations_and_rollovers(crl: CRLFact, refreshed: bool) -> None:
    assert [type(a) for a in plan(crls=(crl,))] == ([RefreshCRL] if refreshed else [])


def test_kubeconfigs_follow_their_ca_bundle_and_renewed_client_certificates() -> None:
    webhook = KubeconfigFact("/etc/kubernetes/authsvc-webhook.conf", "ca", True, "authsvc/apiserver-webhook-client")
    renewed = cert(10, name="authsvc/apiserver-webhook-client")
    assert [type(a) for a in plan(cas=(CA,), renewals=[renewed], kubeconfigs=(webhook,))] == [
        RenewCertificate,
        SyncKubeconfig,
    ]
    assert plan(cas=(CA,), kubeconfigs=(webhook,)) == []  # the twin: nothing renewed, all current
    stale = KubeconfigFact("admin.conf", "ca", ca_current=False)
    assert [a.reason for a in plan(kubeconfigs=(stale,))] == ["its CA data differs from pki/ca.crt"]  # type: ignore[attr-defined]


def test_pruning_only_when_there_is_something_to_prune() -> None:
    assert [type(a) for a in plan(prune=PruneFact(NOW - 90 * DAY, 3, 0))] == [PruneInventory]
    assert plan(prune=PruneFact(NOW - 90 * DAY, 0, 0)) == []
    old_runs = BackupsFact(NOW - 90 * DAY, ("20290101T000000Z",))
    assert [type(a) for a in plan(backups=old_runs)] == [PruneBackups]
    assert plan(backups=BackupsFact(NOW - 90 * DAY, ())) == []


def test_the_order_of_a_run_keeps_things_working_first() -> None:
    actions = plan(
        cas=(CAFact("ca", NOW + 100 * DAY),),
        renewals=[cert(10, lifetime_days=50)],
        keys=keys(key("a", KeyState.ACTIVE, 85, 85), bundle_kids=frozenset()),
        crls=(CRLFact("ca", NOW - 7 * DAY, NOW, True, None),),
        prune=PruneFact(NOW - 90 * DAY, 1, 1),
    )
    assert [a.kind for a in actions] == ["signing-key-files", "renew", "signing-key", "crl", "prune", "needs-human"]
