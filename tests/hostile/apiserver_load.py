"""TokenReviews sent the way kube-apiserver sends them, several at once, each timed and judged.

For the fault and race tests against the real `authsvc serve` (granian, TLS + mTLS): each
client thread keeps one TLS connection with the API server's webhook client certificate
(`pki/authsvc/apiserver-webhook-client.*` from `authsvc init`) and sends reviews back to back.
Every reply is judged against what the token is:

- `RIGHT`: a valid token authenticated as its own user;
- `DENIED`: an invalid token refused (no error);
- `OUTAGE`: authenticated false *with* an error (a backend could not decide: fail closed), right
  only for a token whose backend was meant to be down;
- `WRONG`: anything else (another user, an invalid token authenticated, a valid one refused
  without an error, a status other than 200, a connection that failed).
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from authsvc.webhook.tokenreview import KIND, V1

JSON_HEADERS = {"Content-Type": "application/json"}


class Verdict(Enum):
    RIGHT = "right user"
    DENIED = "denied"
    OUTAGE = "outage"
    WRONG = "wrong"


@dataclass(frozen=True)
class Probe:
    kind: str
    token: str
    user: str | None  # None: the token is invalid
    may_fail_closed: bool = False  # its backend is the one made to fail: an outage answer is right


@dataclass(frozen=True)
class Reply:
    probe: Probe
    at: float  # when it was sent, seconds since the run started
    latency: float
    verdict: Verdict
    detail: str  # what was wrong, for the assertion message


def apiserver_context(home: Path) -> ssl.SSLContext:
    """TLS as the API server has it: trusts the cluster CA, presents the webhook client certificate."""
    pki = home / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    client = pki / "authsvc" / "apiserver-webhook-client"
    context.load_cert_chain(str(client.with_suffix(".crt")), str(client.with_suffix(".key")))
    return context


def review_body(token: str) -> bytes:
    return json.dumps({"apiVersion": V1, "kind": KIND, "spec": {"token": token}}).encode()


class ApiServerConnection:
    """One keep-alive connection to the webhook listener; reconnects after a failure."""

    def __init__(self, port: int, context: ssl.SSLContext, timeout: float = 60.0) -> None:
        self.port = port
        self.context = context
        self.timeout = timeout
        self._connection = self._connect()

    def _connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=self.timeout)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        try:
            self._connection.request(method, path, body=body, headers=JSON_HEADERS if body else {})
            response = self._connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self._connection.close()
            self._connection = self._connect()
            raise

    def close(self) -> None:
        self._connection.close()


def judge(probe: Probe, status: int, body: bytes) -> tuple[Verdict, str]:
    if status != 200:
        return Verdict.WRONG, f"HTTP {status}"
    answer = json.loads(body)["status"]
    if answer.get("authenticated"):
        username = answer["user"]["username"]
        if probe.user is not None and username == probe.user:
            return Verdict.RIGHT, ""
        return Verdict.WRONG, f"authenticated as {username!r}"
    if probe.user is None:
        return (
            (Verdict.WRONG, f"an invalid token answered with an error {answer['error']!r}")
            if answer.get("error")
            else (Verdict.DENIED, "")
        )
    if answer.get("error") and probe.may_fail_closed:
        return Verdict.OUTAGE, ""
    return Verdict.WRONG, f"a valid token refused ({answer.get('error') or 'no error'})"


def send(connection: ApiServerConnection, probe: Probe, started_at: float) -> Reply:
    sent = time.monotonic()
    try:
        status, body = connection.call("POST", "/authenticate", review_body(probe.token))
        verdict, detail = judge(probe, status, body)
    except (OSError, http.client.HTTPException) as e:
        verdict, detail = Verdict.WRONG, f"connection failed: {type(e).__name__}: {e}"
    return Reply(probe, sent - started_at, time.monotonic() - sent, verdict, detail)


def hammer(
    port: int,
    context: ssl.SSLContext,
    probes: Sequence[Probe],
    *,
    clients: int,
    duration: float,
    during: Callable[[], None] = lambda: None,
) -> list[Reply]:
    """`clients` connections send `probes` round robin (each from its own offset) for `duration`
    seconds; `during` runs in the calling thread meanwhile. Every reply, in no particular order."""
    replies: list[Reply] = []
    lock = threading.Lock()
    started_at = time.monotonic()
    stop_at = started_at + duration

    def client(offset: int) -> None:
        connection = ApiServerConnection(port, context)
        mine = []
        i = offset
        try:
            while time.monotonic() < stop_at:
                mine.append(send(connection, probes[i % len(probes)], started_at))
                i += 1
        finally:
            connection.close()
            with lock:
                replies.extend(mine)

    threads = [threading.Thread(target=client, args=(n * 7,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    during()
    for thread in threads:
        thread.join(timeout=duration + 120)
    return replies


def wrong(replies: Sequence[Reply]) -> list[str]:
    return [f"{r.probe.kind} at {r.at:.2f}s: {r.detail}" for r in replies if r.verdict is Verdict.WRONG]


def slowest(replies: Sequence[Reply], kinds: Sequence[str] | None = None) -> float:
    latencies = [r.latency for r in replies if kinds is None or r.probe.kind in kinds]
    return max(latencies, default=0.0)
