"""One hostile exchange with the real server (`authsvc serve`, granian, TLS + mTLS), fully checked.

The server is tests/webhook/test_server.py's `served` fixture (one per module): a home made
by `authsvc init` with the token file, bootstrap tokens, an external OIDC issuer on loopback
HTTPS and authsvc's own tokens; it is called with the API server's client certificate.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from authsvc.tokenreview import KIND, V1, Decision
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
    # Decisions the audit log recorded for this exchange (none for a refused request).
    audited: list[str]

    @property
    def decision(self) -> Decision:
        if self.status != 200:
            return Decision.INVALID
        assert len(self.audited) == 1, self.audited
        return Decision(self.audited[0])


def exchange(
    served: Served,
    body: bytes | Iterable[bytes] | None,
    *,
    secrets: Iterable[str],
    method: str = "POST",
    content_type: str | None = JSON,
    chunked: bool = False,
) -> Outcome:
    """Send one request; check that the reply, the server's output and the audit log hold no
    traceback and none of `secrets`, and that nothing in the home changed."""
    served.secrets.update(secrets)  # the webhook tests' own last check searches for them too
    before = home_state(served.home)
    watch = LogWatch(served.logs)
    headers = {"Content-Type": content_type} if content_type else {}
    if isinstance(body, bytes) and len(body) > LARGE:
        status, response_headers, data = send_large(served, method, body, headers)
    else:
        status, response_headers, data = served.call(method, "/authenticate", body, headers=headers, chunked=chunked)
    logs = watch.new_text()
    assert_clean({"response": data.decode("utf-8", "replace"), **logs}, secrets)
    assert before.changes(home_state(served.home)) == []
    audited = [json.loads(line)["decision"] for line in logs["audit.log"].splitlines()]
    return Outcome(status, response_headers, json.loads(data), audited)


def send_large(served: Served, method: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """Send a body the server refuses by its Content-Length alone.

    granian answers 413 and closes without reading the rest; the rest of the body then meets a
    closed connection (an error while sending), but the answer is already on its way.
    """
    connection = http.client.HTTPSConnection("127.0.0.1", served.port, context=served.contexts["apiserver"], timeout=15)
    try:
        connection.putrequest(method, "/authenticate")
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            for start in range(0, len(body), 16 * 1024):
                connection.send(body[start : start + 16 * 1024])
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
    else:  # refused before any decision: a 4xx carrying the reason, nothing audited
        assert reply["status"]["authenticated"] is False and reply["status"]["error"]
        assert outcome.audited == []
