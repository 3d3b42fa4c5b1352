"""suggest(): the subject's requests, each once, into objects; what is left out and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authsvc.rbac.objects import to_dicts
from authsvc.rbac.subjects import Subject
from authsvc.rbac.suggest import NoRequests, Suggestion, SuggestOptions, suggest
from tests.rbac.support import allows, event, write_log

ALICE = Subject.user("alice")


def suggested(tmp_path: Path, events: list[dict[str, Any] | str], **options: Any) -> Suggestion:
    log = write_log(tmp_path / "audit.log", events)
    return suggest([str(log)], SuggestOptions(options.pop("subject", ALICE), **options))


def kinds(suggestion: Suggestion) -> list[tuple[str, str | None]]:
    return [(d["kind"], d["metadata"].get("namespace")) for d in to_dicts(suggestion.objects)]


def test_only_the_subjects_requests_are_covered(tmp_path: Path) -> None:
    result = suggested(
        tmp_path,
        [
            event("list", "pods", namespace="ns1"),
            event("delete", "pods", namespace="ns1", name="p", user="bob"),
            event("list", "secrets", namespace="ns1", impersonated="bob"),  # alice acting as bob
            event("get", "configmaps", namespace="ns3", name="c", user="bob", impersonated="alice"),
        ],
    )
    documents = to_dicts(result.objects)

    assert allows(documents, "list", "ns1", "", "pods", "")
    assert allows(documents, "get", "ns3", "", "configmaps", "c")
    assert not allows(documents, "delete", "ns1", "", "pods", "p")
    assert not allows(documents, "list", "ns1", "", "secrets", "")
    assert result.tally.requests == 2 and result.tally.impersonating == 1


def test_objects_come_in_pairs_named_after_the_subject(tmp_path: Path) -> None:
    result = suggested(
        tmp_path, [event("list", "pods", namespace="b"), event("list", "nodes"), event("get", "pods", namespace="a")]
    )

    assert kinds(result) == [
        ("ClusterRole", None),
        ("ClusterRoleBinding", None),
        ("Role", "a"),
        ("RoleBinding", "a"),
        ("Role", "b"),
        ("RoleBinding", "b"),
    ]
    for document in to_dicts(result.objects):
        assert document["metadata"]["name"] == "authsvc:suggested:user:alice"
        assert document["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "authsvc"}
        if document["kind"].endswith("Binding"):
            assert document["roleRef"]["name"] == "authsvc:suggested:user:alice"
            assert document["roleRef"]["kind"] == document["kind"].removesuffix("Binding")
            assert document["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]


def test_a_watch_is_counted_once_and_covered_from_either_stage(tmp_path: Path) -> None:
    both = suggested(
        tmp_path,
        [event("watch", "pods", namespace="ns1", stage="ResponseStarted"), event("watch", "pods", namespace="ns1")],
    )
    assert both.tally.requests == 1 and allows(to_dicts(both.objects), "watch", "ns1", "", "pods", "")

    # A policy that omits ResponseStarted, or a log that begins while the watch is open.
    completed_only = suggested(tmp_path, [event("watch", "pods", namespace="ns1")])
    assert allows(to_dicts(completed_only.objects), "watch", "ns1", "", "pods", "")


def test_request_received_alone_grants_nothing(tmp_path: Path) -> None:
    # It comes before authorization: a request refused there never reaches a later stage.
    result = suggested(tmp_path, [event("delete", "pods", namespace="ns1", name="p", stage="RequestReceived")])

    assert result.objects == []
    with pytest.raises(NoRequests):
        result.check()


def test_denied_requests_are_left_out_unless_asked_for(tmp_path: Path) -> None:
    events: list[dict[str, Any] | str] = [
        event("list", "pods", namespace="ns1"),
        event("list", "secrets", namespace="ns1", code=403),
    ]
    narrow = suggested(tmp_path, events)
    assert narrow.tally.denied == 1
    assert not allows(to_dicts(narrow.objects), "list", "ns1", "", "secrets", "")
    assert any("denied (403)" in note for note in narrow.notes())

    wide = suggested(tmp_path, events, include_denied=True)
    assert allows(to_dicts(wide.objects), "list", "ns1", "", "secrets", "")


def test_namespace_filter(tmp_path: Path) -> None:
    result = suggested(
        tmp_path,
        [event("list", "pods", namespace="ns1"), event("list", "pods", namespace="ns2"), event("list", "nodes")],
        namespace="ns1",
    )

    assert kinds(result) == [("Role", "ns1"), ("RoleBinding", "ns1")]
    assert result.tally.other_namespaces == 2


def test_service_account_and_group_subjects(tmp_path: Path) -> None:
    events: list[dict[str, Any] | str] = [
        event(
            "get",
            "secrets",
            namespace="ci",
            name="registry",
            user="system:serviceaccount:ci:deployer",
            groups=["system:serviceaccounts", "system:serviceaccounts:ci"],
        ),
        event("list", "pods", namespace="ci", user="bob", groups=["dev"]),
    ]
    sa = suggested(tmp_path, events, subject=Subject.service_account("ci:deployer"))
    binding = to_dicts(sa.objects)[1]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]
    assert allows(to_dicts(sa.objects), "get", "ci", "", "secrets", "registry")

    dev = suggested(tmp_path, events, subject=Subject.group("dev"))
    assert to_dicts(dev.objects)[1]["subjects"][0] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Group",
        "name": "dev",
    }
    assert not allows(to_dicts(dev.objects), "get", "ci", "", "secrets", "registry")


def test_a_malformed_event_of_the_subject_is_a_problem_with_its_line(tmp_path: Path) -> None:
    result = suggested(
        tmp_path, [event("list", "pods", namespace="ns1"), {**event("get", "pods", namespace="ns1"), "verb": "*"}]
    )

    assert [str(p) for p in result.read.problems] == [
        f"{tmp_path / 'audit.log'} line 2: verb '*' is not a request verb"
    ]
    with pytest.raises(Exception, match="1 unusable line"):
        result.check()
    result.check(max_bad_lines=1)


def test_no_requests_of_the_subject_is_an_error_that_says_so(tmp_path: Path) -> None:
    result = suggested(tmp_path, [event("list", "pods", user="bob")])

    with pytest.raises(NoRequests, match=r"no requests of user alice in .*audit.log \(1 lines read\)"):
        result.check()


def test_several_logs_are_read_in_turn(tmp_path: Path) -> None:
    first = write_log(tmp_path / "audit-1.log", [event("list", "pods", namespace="ns1")])
    second = write_log(tmp_path / "audit.log", [event("list", "nodes")])

    result = suggest([str(first), str(second)], SuggestOptions(ALICE))

    assert result.tally.requests == 2 and len(result.objects) == 4
