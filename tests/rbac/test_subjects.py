"""Subjects: who an event is, the fast path's needle, and names that never collide."""

from __future__ import annotations

import pytest

from authsvc.errors import UsageError
from authsvc.rbac.subjects import Subject, check_name_prefix, effective_user
from tests.rbac.support import event, line


def test_a_user_is_matched_by_name_through_impersonation() -> None:
    alice = Subject.user("alice")
    assert alice.matches(effective_user(event("get", "pods")))
    # alice acting as bob is bob's request; bob acting as alice is alice's.
    assert not alice.matches(effective_user(event("get", "pods", impersonated="bob")))
    assert alice.matches(effective_user(event("get", "pods", user="bob", impersonated="alice")))


def test_a_group_is_matched_by_membership() -> None:
    dev = Subject.group("dev")
    assert dev.matches(effective_user(event("get", "pods", user="bob", groups=["dev"])))
    assert not dev.matches(effective_user(event("get", "pods", user="dev", groups=["ops"])))


def test_a_service_account_is_its_user_name_and_binds_as_a_service_account() -> None:
    sa = Subject.service_account("ci:deployer")
    assert sa.username == "system:serviceaccount:ci:deployer"
    assert sa.matches({"username": "system:serviceaccount:ci:deployer"})
    assert not sa.matches({"username": "system:serviceaccount:ci:other"})
    assert sa.rbac_subject() == {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}
    assert Subject.user("alice").rbac_subject() == {
        "kind": "User",
        "apiGroup": "rbac.authorization.k8s.io",
        "name": "alice",
    }


@pytest.mark.parametrize("spec", ["deployer", "ci:", ":deployer", "CI:deployer", "ci:deployer:x", "../x:y"])
def test_a_malformed_service_account_is_a_usage_error(spec: str) -> None:
    with pytest.raises(UsageError, match="NAMESPACE:NAME"):
        Subject.service_account(spec)


def test_a_service_account_given_as_a_user_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--serviceaccount"):
        Subject.user("system:serviceaccount:ci:deployer")


@pytest.mark.parametrize("name", ["", "a\nb", "a\x00"])
def test_an_empty_or_control_character_name_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError):
        Subject.user(name)


def test_the_needle_is_in_every_line_of_the_subject_as_go_writes_it() -> None:
    for subject, data in [
        (Subject.user("alice@example.com"), event("get", "pods", user="alice@example.com")),
        (Subject.group("team:dev"), event("get", "pods", groups=["team:dev"])),
        (Subject.service_account("ci:deployer"), event("get", "pods", user="system:serviceaccount:ci:deployer")),
    ]:
        needle = subject.needle()
        assert needle is not None and needle in line(data).encode()


@pytest.mark.parametrize("name", ["https://issuer.example/#alice", "a<b", "a&b", 'a"b', "a\\b", "élodie"])
def test_names_another_encoder_could_escape_have_no_fast_path(name: str) -> None:
    assert Subject.user(name).needle() is None


def test_object_names_keep_safe_names_and_hash_the_others() -> None:
    assert Subject.user("alice").object_name("p") == "p:user:alice"
    assert Subject.service_account("ci:deployer").object_name("p") == "p:serviceaccount:ci:deployer"
    assert Subject.group("dev").object_name("p") == "p:group:dev"
    # "a/b" and "a-b" would both become "a-b": the hash of the exact name keeps them apart.
    slashed, dashed = Subject.user("a/b").object_name("p"), Subject.user("a-b").object_name("p")
    assert slashed.startswith("p:user:a-b-") and dashed == "p:user:a-b" and slashed != dashed
    assert "/" not in Subject.user("https://issuer/#x").object_name("p")
    long_name = Subject.user("x" * 300).object_name("p")
    assert len(long_name) < 130


@pytest.mark.parametrize("prefix", ["", "a/b", "a%2f", "a b"])
def test_a_prefix_that_cannot_begin_a_name_is_a_usage_error(prefix: str) -> None:
    with pytest.raises(UsageError, match="--name-prefix"):
        check_name_prefix(prefix)
