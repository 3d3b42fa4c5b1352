"""The proxy end to end against a test upstream: who arrives, what is refused, what streams.

Real TLS both ways (the proxy's certificate from `authsvc init`, the upstream's from the
home's cluster CA, the front-proxy client certificate), real aiohttp on both sides, requests
and ssl sockets as clients. Each success has its refused twin.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl

import requests

from authsvc.home.opened import Home
from tests.components.support import eventually
from tests.conftest import run_cli
from tests.proxy.conftest import STATIC_GROUP, STATIC_TOKEN, STATIC_USER, audit_lines
from tests.proxy.support import EchoUpstream, RunningProxy, pattern_block


def get(proxy: RunningProxy, home: Home, path: str, **kwargs: object) -> requests.Response:
    return requests.get(proxy.url + path, verify=str(home.root / "pki" / "ca.crt"), timeout=10, **kwargs)  # type: ignore[arg-type]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- identity


def test_a_static_token_arrives_as_its_user_over_the_front_proxy_certificate(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    answer = get(proxy, proxy_home, "/api/v1/namespaces/default/pods?limit=5", headers=bearer(STATIC_TOKEN))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"method": "GET", "target": "/api/v1/namespaces/default/pods?limit=5"}
    seen = upstream.seen[-1]
    assert seen.client_cn == "front-proxy-client"  # kubeadm's front-proxy client certificate
    assert seen.values("X-Remote-User") == [STATIC_USER]
    assert seen.values("X-Remote-Group") == [STATIC_GROUP, "shared"]
    assert seen.values("Authorization") == []  # the person's token never reaches the API server
    assert seen.values("X-Forwarded-For") == ["127.0.0.1"]


def test_identity_headers_sent_by_the_client_have_no_effect(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    hostile = {
        **bearer(STATIC_TOKEN),
        "X-Remote-User": "admin",
        "X-Remote-Group": "system:masters",
        "X-Remote-Extra-Scopes": "all",
        "x-remote-uid": "0",
        "Impersonate-User": "admin",
        "Impersonate-Group": "system:masters",
        "Impersonate-Extra-Reason": "because",
        "X-Forwarded-For": "10.9.9.9",
        "Connection": "X-Smuggled",
        "X-Smuggled": "hop-by-hop",
    }

    answer = get(proxy, proxy_home, "/api/v1/secrets", headers=hostile)

    assert answer.status_code == 200, answer.text
    names = {name.lower() for name, _ in upstream.seen[-1].headers}
    assert upstream.seen[-1].values("X-Remote-User") == [STATIC_USER]
    assert upstream.seen[-1].values("X-Remote-Group") == [STATIC_GROUP, "shared"]
    assert upstream.seen[-1].values("X-Forwarded-For") == ["127.0.0.1"]
    assert not {n for n in names if n.startswith(("impersonate-", "x-remote-extra-", "x-remote-uid"))}
    assert "x-smuggled" not in names


def test_a_client_certificate_from_the_cluster_ca_arrives_as_cn_and_o(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    created = run_cli(["certs", "create", "alice", "-g", "dev", "-g", "ops"], home=proxy_home.root)
    assert created.exit_code == 0, created.stderr
    issued = proxy_home.root / "issued"

    answer = get(proxy, proxy_home, "/api/v1/namespaces", cert=(str(issued / "alice.crt"), str(issued / "alice.key")))

    assert answer.status_code == 200, answer.text
    assert upstream.seen[-1].values("X-Remote-User") == ["alice"]
    assert upstream.seen[-1].values("X-Remote-Group") == ["dev", "ops"]


def test_a_client_certificate_from_another_ca_fails_the_handshake(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    # front-proxy-client.crt: a valid certificate, but from the front-proxy CA, not the client CA.
    pki = proxy_home.root / "pki"
    cert = (str(pki / "front-proxy-client.crt"), str(pki / "front-proxy-client.key"))
    before = len(upstream.seen)

    try:
        answer = get(proxy, proxy_home, "/api/v1/namespaces", cert=cert)
        refused = answer.status_code  # TLS 1.3: the alert may come with the first read
    except requests.exceptions.SSLError:
        refused = 0
    except requests.exceptions.ConnectionError:
        refused = 0

    assert refused == 0
    assert len(upstream.seen) == before


# ---------------------------------------------------------------- refusals


def test_no_credential_is_401_and_nothing_reaches_the_api_server(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    answer = get(proxy, proxy_home, "/api/v1/namespaces")

    assert answer.status_code == 401
    assert answer.json()["reason"] == "Unauthorized" and answer.json()["kind"] == "Status"
    assert upstream.seen == []


def test_an_unknown_token_is_401_and_nothing_reaches_the_api_server(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    for header in (
        bearer("not-a-known-token"),
        {"Authorization": f"Basic {STATIC_TOKEN}"},
        {"Authorization": "Bearer"},
    ):
        answer = get(proxy, proxy_home, "/api/v1/namespaces", headers=header)
        assert answer.status_code == 401, header
    assert upstream.seen == []


def test_a_revoked_user_token_is_refused_at_its_next_request_despite_the_cache(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    service = proxy_home.stores.token_service
    token = service.issue_user_token("dora", ["dev"])
    assert get(proxy, proxy_home, "/api/v1/pods", headers=bearer(token.token)).status_code == 200
    assert get(proxy, proxy_home, "/api/v1/pods", headers=bearer(token.token)).status_code == 200  # cached now

    service.revoke(token.jti)  # read by the proxy's revocation set within tokens.cache_refresh (1 s here)

    status = eventually(
        lambda: get(proxy, proxy_home, "/api/v1/pods", headers=bearer(token.token)).status_code,
        lambda code: code == 401,
        timeout=10,
    )
    assert status == 401
    assert any(
        line.get("reason") == f"credential {token.jti} revoked" and line["code"] == 401
        for line in audit_lines(proxy_home)
    )


def test_a_revoked_client_certificate_is_refused(proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream) -> None:
    created = run_cli(["certs", "create", "erin", "-g", "dev"], home=proxy_home.root)
    serial = created.stdout.split()[1]
    issued = proxy_home.root / "issued"
    cert = (str(issued / "erin.crt"), str(issued / "erin.key"))
    assert get(proxy, proxy_home, "/api", cert=cert).status_code == 200

    revoked = run_cli(["certs", "revoke", serial], home=proxy_home.root)
    assert revoked.exit_code == 0, revoked.stderr

    status = eventually(
        lambda: get(proxy, proxy_home, "/api", cert=cert).status_code, lambda code: code == 401, timeout=10
    )
    assert status == 401


# ---------------------------------------------------------------- bodies and streams


def test_a_watch_streams_each_event_as_the_api_server_writes_it(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    upstream.release(0)
    with get(proxy, proxy_home, "/stream/3", headers=bearer(STATIC_TOKEN), stream=True) as answer:
        lines = answer.iter_lines()
        assert json.loads(next(lines))["n"] == 0  # event 1 is still held by the upstream
        upstream.release(1)
        assert json.loads(next(lines))["n"] == 1
        upstream.release(2)
        assert json.loads(next(lines))["n"] == 2


def test_a_large_answer_arrives_intact_and_encoded_as_sent(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    size = 20 * 1024 * 1024 + 7
    with get(proxy, proxy_home, f"/bytes/{size}?gzip", headers=bearer(STATIC_TOKEN), stream=True) as answer:
        assert answer.headers["Content-Length"] == str(size)
        assert answer.headers["Content-Encoding"] == "gzip"  # passed on, not decoded
        digest, received = hashlib.sha256(), 0
        for chunk in answer.raw.stream(1024 * 1024, decode_content=False):
            digest.update(chunk)
            received += len(chunk)

    assert received == size
    assert digest.hexdigest() == _expected_digest(size)


def _expected_digest(size: int) -> str:
    block, digest, left = pattern_block(), hashlib.sha256(), size
    while left:
        part = block[: min(len(block), left)]
        digest.update(part)
        left -= len(part)
    return digest.hexdigest()


def test_a_request_body_goes_up_intact(proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream) -> None:
    body = pattern_block() * 5
    answer = requests.post(
        proxy.url + "/upload",
        data=body,
        headers=bearer(STATIC_TOKEN),
        verify=str(proxy_home.root / "pki" / "ca.crt"),
        timeout=10,
    )

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}


# ---------------------------------------------------------------- upgrades


def open_tls(proxy: RunningProxy, home: Home) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(home.root / "pki" / "ca.crt"))
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


# What kubectl 1.20's `exec` sends (client-go spdy.RoundTripper): POST, Connection: Upgrade,
# Upgrade: SPDY/3.1 and the remotecommand protocols it speaks.
EXEC_TARGET = "/api/v1/namespaces/default/pods/web/exec?command=sh&container=web&stdin=true&stdout=true&tty=true"


def upgrade_request(target: str, token: str, extra: str = "") -> bytes:
    return (
        f"POST {target} HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer {token}\r\n"
        "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
        f"X-Stream-Protocol-Version: v3.channel.k8s.io\r\nContent-Length: 0\r\n{extra}\r\n"
    ).encode()


def read_head(sock: ssl.SSLSocket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_an_exec_upgrade_is_piped_both_ways(proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream) -> None:
    with open_tls(proxy, proxy_home) as sock:
        sock.sendall(upgrade_request(EXEC_TARGET, STATIC_TOKEN, "X-Remote-User: admin\r\n"))
        head, rest = read_head(sock)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"upgrade: spdy/3.1" in head.lower() and b"x-stream-protocol-version: v4.channel.k8s.io" in head.lower()
        greeting = rest
        while not greeting.endswith(b"\n"):
            greeting += sock.recv(65536)
        assert greeting == b"hello from upstream\n"
        payload = pattern_block()[:300_000]
        sock.sendall(payload)
        echoed = b""
        while len(echoed) < len(payload):
            chunk = sock.recv(65536)
            assert chunk, "the tunnel closed early"
            echoed += chunk

    assert echoed == payload
    seen = upstream.seen[-1]
    assert seen.target == EXEC_TARGET
    assert seen.client_cn == "front-proxy-client"
    assert seen.values("X-Remote-User") == [STATIC_USER]
    assert seen.values("Authorization") == []


def test_a_refused_upgrade_comes_back_as_the_api_server_said_it(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    with open_tls(proxy, proxy_home) as sock:
        sock.sendall(upgrade_request("/api/v1/namespaces/default/pods/web/exec?refuse", STATIC_TOKEN))
        head, rest = read_head(sock)
        while len(rest) < 10 or not rest.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk

    assert head.startswith(b"HTTP/1.1 403"), head
    assert json.loads(rest)["reason"] == "Forbidden"


def test_an_upgrade_without_a_credential_is_401_before_the_api_server(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    with open_tls(proxy, proxy_home) as sock:
        sock.sendall(upgrade_request(EXEC_TARGET, "wrong-token"))
        head, _ = read_head(sock)

    assert head.startswith(b"HTTP/1.1 401"), head
    assert upstream.seen == []


# ---------------------------------------------------------------- audit and metrics


def test_every_request_is_one_audit_line_without_a_secret(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    get(proxy, proxy_home, "/api/v1/namespaces/default/pods?watch=1&fieldSelector=x", headers=bearer(STATIC_TOKEN))
    get(proxy, proxy_home, "/api/v1/namespaces/default/pods/p1", headers=bearer(STATIC_TOKEN))
    get(proxy, proxy_home, "/api/v1/namespaces/default/pods/p1", headers=bearer("wrong-token"))

    lines = [line for line in audit_lines(proxy_home) if line.get("action") == "proxy.request"]
    text = (proxy_home.root / "audit.log").read_text()

    assert [(line["subject"], line["verb"], line["path"], line["code"]) for line in lines] == [
        (STATIC_USER, "watch", "/api/v1/namespaces/default/pods", 200),
        (STATIC_USER, "get", "/api/v1/namespaces/default/pods/p1", 200),
        (None, "get", "/api/v1/namespaces/default/pods/p1", 401),
    ]
    assert STATIC_TOKEN not in text and "wrong-token" not in text and "fieldSelector" not in text
    assert [line["outcome"] for line in lines] == ["forwarded", "forwarded", "refused"]
    assert len(lines[0]["ids"]["token"]) == 12 and lines[0]["groups"] == [STATIC_GROUP, "shared"]


def test_metrics_count_forwarded_and_refused_requests(
    proxy: RunningProxy, proxy_home: Home, upstream: EchoUpstream
) -> None:
    get(proxy, proxy_home, "/api", headers=bearer(STATIC_TOKEN))
    get(proxy, proxy_home, "/api")

    text = requests.get(proxy.metrics_url + "/metrics", timeout=5).text

    assert 'authsvc_proxy_requests_total{code="200",outcome="forwarded"} 1.0' in text
    assert 'authsvc_proxy_requests_total{code="401",outcome="unauthenticated"} 1.0' in text
    assert requests.get(proxy.metrics_url + "/readyz", timeout=5).status_code == 200
    # The TLS listener forwards /metrics to the API server: it is not the proxy's.
    get(proxy, proxy_home, "/metrics", headers=bearer(STATIC_TOKEN))
    assert upstream.seen[-1].target == "/metrics"
