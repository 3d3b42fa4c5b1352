"""One hostile exchange with the real server (`authsvc serve`, granian, TLS + mTLS), fully checked.

The server is tests/webhook/test_server.py's `served` fixture (one per module): a home made
by `authsvc init` with the token file, bootstrap tokens, an external OIDC issuer on loopback
HTTPS and authsvc's own tokens; it is called with the API server's client certificate.

Each exchange checks its reply (status, decision, TokenReview shape), the server's output
(no traceback, no token) and the home (nothing written). The audit log is written in batches
by each worker (audit.flush_ms), so it is checked once per module (`AuditLedger.check`, last
test): one line per answered review, with the decision the reply gave, and no token in it;
the fixture itself checks that no refused request (4xx) wrote a line (`served.reviewed`).
"""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from authsvc.redact import token_fingerprint
from authsvc.webhook.tokenreview import KIND, V1, Decision
from tests.components.support import eventually
from tests.hostile.support import LogWatch, assert_clean, home_state
from tests.webhook.test_server import Served

JSON = "application/json"
# Bodies past the server's limit: sent so that the server's early refusal can still be read.
LARGE = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    status: int
    headers: dict[str, str]
    reply: dict[str, Any]

    @property
    def decision(self) -> Decision:
        """What the reply says: allow, deny (no error), error (an outage), or invalid (a 4xx)."""
        if self.status != 200:
            return Decision.INVALID
        status = self.reply["status"]
        if status["authenticated"]:
            return Decision.ALLOW
        return Decision.ERROR if status.get("error") else Decision.DENY


@dataclass
class AuditLedger:
    """The answered reviews of a module, to be found in the audit log once it is written."""

    expected: list[tuple[str, Decision]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def check(self, served: Served, timeout: float = 15.0) -> None:
        """Every answered review has its line with the same decision; no token, no traceback."""
        want = Counter(token_fingerprint(token) for token, _ in self.expected)
        written = eventually(
            lambda: Counter(line["ids"]["token"] for line in served.audit_lines()),
            lambda seen: want <= seen,
            timeout=timeout,
            interval=0.05,
        )
        assert want <= written, "answered reviews missing from the audit log"
        decisions: dict[str, set[str]] = {}
        for line in served.audit_lines():
            decisions.setdefault(line["ids"]["token"], set()).add(line["outcome"])
        for token, decision in self.expected:
            assert decisions[token_fingerprint(token)] == {decision.value}, (token[:16], decision)
        assert_clean({"audit.log": (served.home / "audit.log").read_text()}, self.secrets)


def exchange(
    served: Served,
    body: bytes | Iterable[bytes] | None,
    *,
    ledger: AuditLedger,
    token: str | None,
    secrets: Iterable[str],
    method: str = "POST",
    content_type: str | None = JSON,
    chunked: bool = False,
) -> Outcome:
    """Send one request carrying `token`; check that the reply and the server's output hold no
    traceback and none of `secrets`, and that nothing in the home changed."""
    secrets = set(secrets)
    served.secrets |= secrets  # the webhook tests' own last check searches for them too
    ledger.secrets |= secrets
    before = home_state(served.home)
    watch = LogWatch(served.logs)
    headers = {"Content-Type": content_type} if content_type else {}
    if (isinstance(body, bytes) and len(body) > LARGE) or chunked:
        status, response_headers, data = send_tolerantly(served, method, body, headers, chunked=chunked)
    else:
        status, response_headers, data = served.call(method, "/authenticate", body, headers=headers)
    outcome = Outcome(status, response_headers, json.loads(data))
    if status == 200:
        assert token is not None, "an answered review carries a token"
        served.reviewed += 1
        ledger.expected.append((token, outcome.decision))
    assert_clean({"response": data.decode("utf-8", "replace"), **watch.new_text()}, secrets)
    assert before.changes(home_state(served.home)) == []
    return outcome


def send_tolerantly(
    served: Served, method: str, body: bytes | Iterable[bytes] | None, headers: dict[str, str], *, chunked: bool
) -> tuple[int, dict[str, str], bytes]:
    """Send a body the server may refuse before reading it all (by its Content-Length, or past
    the limit while chunked): granian answers 413 and closes, so the rest of the body meets a
    closed connection (an error while sending) while the answer is already on its way."""
    pieces = [body] if isinstance(body, bytes) else list(body or [])
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(sum(map(len, pieces)))}
    connection = http.client.HTTPSConnection("127.0.0.1", served.port, context=served.contexts["apiserver"], timeout=15)
    try:
        connection.putrequest(method, "/authenticate")
        for name, value in {**headers, **framing}.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            for piece in pieces:
                for start in range(0, len(piece), 16 * 1024):
                    part = piece[start : start + 16 * 1024]
                    connection.send(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            if chunked:
                connection.send(b"0\r\n\r\n")
        except OSError:
            pass
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def assert_answer(outcome: Outcome, decision: Decision, status: int) -> None:
    """The status, the decision, and a reply in the TokenReview shape that goes with them."""
    assert (outcome.status, outcome.decision) == (status, decision), outcome
    assert outcome.headers["content-type"] == JSON
    reply = outcome.reply
    assert reply["kind"] == KIND and reply["apiVersion"] == V1
    if decision is Decision.ALLOW:
        assert reply["status"]["authenticated"] is True
    elif decision is Decision.DENY:
        # A definite no: no error (an error would be an outage: never cached, retried).
        assert reply["status"] == {"authenticated": False}
    else:  # refused before any decision: a 4xx carrying the reason
        assert reply["status"]["authenticated"] is False and reply["status"]["error"]
