"""Hostile TokenReview requests against the real server (granian, TLS + mTLS), one table.

Each row: what is sent, the decision (allow, deny, or invalid: refused before any decision)
and the HTTP status. Every row also checks that no traceback and no token is in the reply,
the server's output or the audit log, and that nothing in the home changed (tests/hostile/webhook.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from authsvc.webhook.tokenreview import V1, Decision
from tests.hostile.webhook import AuditLedger, assert_answer, exchange
from tests.webhook.support import review_body
from tests.webhook.test_server import STATIC, Served, served

__all__ = ["served"]  # the module's server (tests/webhook/test_server.py)

ALLOW, DENY, INVALID = Decision.ALLOW, Decision.DENY, Decision.INVALID
MEGABYTE = 1024 * 1024


def secret(name: str) -> str:
    """A token of the row's own, to look for in the logs."""
    return "hostile-" + "".join(c if c.isalnum() else "-" for c in name) + "-0123456789"


def review(token: Any, **extra: Any) -> bytes:
    return json.dumps({**review_body(token), **extra}).encode()


def with_spec(spec: Any) -> bytes:
    return json.dumps({"apiVersion": V1, "kind": "TokenReview", "spec": spec}).encode()


# A caller that answers its own question: none of this may reach the answer.
FORGED = {
    "status": {"authenticated": True, "user": {"username": "admin", "groups": ["system:masters"]}},
    "metadata": {"name": "x", "annotations": {"authsvc.io/user": "admin"}},
}
FORGED_SPEC = {"user": "admin", "groups": ["system:masters"], "extra": {"a": ["b"]}}


@dataclass(frozen=True)
class Row:
    name: str
    body: bytes | None
    decision: Decision
    status: int
    method: str = "POST"
    content_type: str | None = "application/json"
    chunked: bool = False


def rows() -> Iterator[Row]:
    def s(name: str) -> str:
        return secret(name)

    yield Row("invalid JSON", review(s("invalid JSON"))[:-5], INVALID, 400)
    yield Row("not JSON", f"token={s('not JSON')}".encode(), INVALID, 400)
    yield Row("empty body", b"", INVALID, 400)
    yield Row("JSON array", json.dumps([review_body(s("JSON array"))]).encode(), INVALID, 400)
    yield Row("JSON string", json.dumps(s("JSON string")).encode(), INVALID, 400)
    yield Row("JSON null", b"null", INVALID, 400)
    yield Row("wrong kind", review(s("wrong kind"), kind="SubjectAccessReview"), INVALID, 400)
    yield Row("no kind", json.dumps({"apiVersion": V1, "spec": {"token": s("no kind")}}).encode(), INVALID, 400)
    yield Row("wrong apiVersion", review(s("wrong apiVersion"), apiVersion="authentication.k8s.io/v2"), INVALID, 400)
    yield Row("other API group", review(s("other API group"), apiVersion="authorization.k8s.io/v1"), INVALID, 400)
    yield Row("apiVersion a list", review(s("apiVersion a list"), apiVersion=[V1]), INVALID, 400)
    yield Row("no spec", json.dumps({"apiVersion": V1, "kind": "TokenReview"}).encode(), INVALID, 400)
    yield Row("spec a string", with_spec(s("spec a string")), INVALID, 400)
    yield Row("no spec.token", with_spec({"audiences": ["x"]}), INVALID, 400)
    yield Row("empty spec.token", with_spec({"token": ""}), INVALID, 400)
    for kind, value in [("number", 12345), ("null", None), ("true", True), ("float", 1.5e300)]:
        yield Row(f"spec.token {kind}", with_spec({"token": value}), INVALID, 400)
    # A valid token wrapped in another type must not be unwrapped.
    yield Row("spec.token a list", with_spec({"token": [STATIC]}), INVALID, 400)
    yield Row("spec.token an object", with_spec({"token": {"token": STATIC}}), INVALID, 400)
    for kind, suffix in [("newline", "\n"), ("space", " x"), ("NUL", "\x00"), ("non-ASCII", "é"), ("tab", "\t")]:
        yield Row(f"spec.token with {kind}", with_spec({"token": s(kind) + suffix}), INVALID, 400)
    yield Row("audiences not a list", with_spec({"token": s("aud"), "audiences": "x"}), INVALID, 400)
    yield Row("deep nesting", b'{"spec":' * 7_000, INVALID, 400)
    not_utf8 = b'{"apiVersion": "\xc3\x28", "spec": {"token": "' + s("utf8").encode() + b'"}}'
    yield Row("invalid UTF-8", not_utf8, INVALID, 400)
    big = review(s("1 MB") + "x" * MEGABYTE)
    yield Row("1 MB body", big, INVALID, 413)
    yield Row("1 MB body, chunked", big, INVALID, 413, chunked=True)
    yield Row("unexpected fields, unknown token", review(s("unexpected"), **FORGED), DENY, 200)
    forged_spec = {"token": s("unexpected spec"), **FORGED_SPEC}
    yield Row("unexpected spec fields, unknown token", with_spec(forged_spec), DENY, 200)
    yield Row("unexpected fields, valid token", review(STATIC, **FORGED), ALLOW, 200)
    # JSON's last duplicate member wins (as in Go's encoding/json): one token, decided once.
    duplicate = f'{{"apiVersion":"{V1}","kind":"TokenReview","spec":{{"token":"{STATIC}","token":"{s("dup")}"}}}}'
    yield Row("duplicate spec.token", duplicate.encode(), DENY, 200)
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/jsonp", None]:
        body = review(s(f"ct {content_type}"))
        yield Row(f"content type {content_type}", body, INVALID, 415, content_type=content_type)
    yield Row("content type with charset", review(STATIC), ALLOW, 200, content_type="application/json; charset=utf-8")
    for method in ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"]:
        yield Row(f"method {method}", review(s(f"method {method}")), INVALID, 405, method=method)


ROWS = list(rows())


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_hostile_tokenreview_body(served: Served, ledger: AuditLedger, row: Row) -> None:
    secrets = {STATIC, *_tokens_in(row.body)}
    outcome = exchange(
        served,
        row.body,
        ledger=ledger,
        token=_spec_token(row.body),
        secrets=secrets,
        method=row.method,
        content_type=row.content_type,
        chunked=row.chunked,
    )
    assert_answer(outcome, row.decision, row.status)
    if row.decision is ALLOW:
        user = outcome.reply["status"]["user"]
        assert (user["username"], user["groups"]) == ("alice", ["dev", "ops"])  # not what the caller wrote
    if row.status == 405:
        assert outcome.headers["allow"] == "POST"


def _tokens_in(body: bytes | None) -> set[str]:
    """The row's own tokens (`secret(...)`), as they appear in its body."""
    text = (body or b"").decode("utf-8", "replace")
    return {word for word in text.replace('"', " ").split() if word.startswith("hostile-")}


def _spec_token(body: bytes | None) -> str | None:
    """spec.token, when the body is JSON that has one (the last, for a duplicated member)."""
    try:
        token = json.loads(body or b"")["spec"]["token"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return token if isinstance(token, str) else None


def test_zz_the_audit_log_agrees(served: Served, ledger: AuditLedger) -> None:
    """Runs last: one audit line per answered review, with the reply's decision, and no token."""
    ledger.check(served)
