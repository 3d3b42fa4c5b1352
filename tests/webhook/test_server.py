"""The real server: `authsvc serve` (granian, TLS + mTLS) on loopback, called the way kube-apiserver does.

One server per module, on a home made by `authsvc init`, with every backend configured: the
token file, bootstrap tokens, an external OIDC issuer (a real HTTPS issuer on loopback) and
authsvc's own tokens. The API server's side is the kubeconfig `authsvc webhook-config` writes.
Everything the server prints and its audit log are kept, and the last test reads all of it
for tokens.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.authn.tokenfile import hash_token_column
from tests.components.support import eventually, free_port
from tests.conftest import run_cli
from tests.serve.support import AuthsvcServe

from .jwks import JWKSServer, server_tls_files
from .support import API_VERSIONS, V1, review_body

AUTHSVC = str(Path(sys.executable).parent / "authsvc")  # the console script
STATIC = "static-token-aaaaaaaaaaaaaaaaaaaa"
HASHED = "hashed-token-bbbbbbbbbbbbbbbbbbbb"


@dataclass
class Served:
    root: Path
    home: Path
    port: int
    idp: JWKSServer
    logs: list[Path]
    bootstrap_token: str
    authsvc_token: str
    contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)
    # Every token a test sent: none may appear in any log.
    secrets: set[str] = field(default_factory=set)
    # TokenReviews that reached the application: each is one audit line.
    reviewed: int = 0

    def call(
        self,
        method: str,
        path: str,
        body: bytes | Any = None,
        *,
        who: str = "apiserver",
        headers: dict[str, str] | None = None,
        chunked: bool = False,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.contexts[who], timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def review(self, token: str, who: str = "apiserver", **kwargs: Any) -> tuple[int, dict[str, Any]]:
        self.secrets.add(token)
        body = json.dumps(review_body(token, **kwargs)).encode()
        status, _, data = self.call(
            "POST", "/authenticate", body, who=who, headers={"Content-Type": "application/json"}
        )
        self.reviewed += 1
        return status, json.loads(data)

    def audit_lines(self) -> list[dict[str, Any]]:
        """The audit trail's TokenReview lines."""
        lines = [json.loads(line) for line in (self.home / "audit.log").read_text().splitlines()]
        return [line for line in lines if line["action"] == "tokenreview"]

    def audited(self, token: str, timeout: float = 10.0) -> bool:
        """Whether the token's fingerprint is in the audit log; waits for the batch to be written."""
        fingerprint = hashlib.sha256(token.encode()).hexdigest()[:12]
        return eventually(
            lambda: any(line["ids"]["token"] == fingerprint for line in self.audit_lines()),
            bool,
            timeout=timeout,
            interval=0.05,
        )


def _context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def _apiserver_context(kubeconfig: Path, directory: Path) -> ssl.SSLContext:
    """TLS exactly as kube-apiserver sets it up from the webhook kubeconfig."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    files = {}
    for name, data in (
        ("ca.crt", cluster["certificate-authority-data"]),
        ("client.crt", user["client-certificate-data"]),
        ("client.key", user["client-key-data"]),
    ):
        files[name] = directory / name
        files[name].write_bytes(base64.b64decode(data))
    return _context(files["ca.crt"], files["client.crt"], files["client.key"])


def _configure(home: Path, idp: JWKSServer) -> None:
    (home / "tokens.csv").write_text(f'{STATIC},alice,u-1,"dev,ops"\n{hash_token_column(HASHED)},bob,u-2,qa\n')
    config_file = home / "authsvc.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["authn"].update(
        chain=["tokenfile", "bootstrap", "issuers", "authsvc"],
        tokenfile={"path": "tokens.csv"},
        issuers=[
            {
                "url": idp.url,
                "audiences": ["kubernetes"],
                "ca_file": "pki/ca.crt",
                "username_prefix": "oidc:",
                "groups_prefix": "oidc:",
                "jwks_refresh_cooldown": 0,  # rotation is picked up at the first unknown kid
                "audience_aware": True,
            }
        ],
    )
    config["audit"] = {"path": "audit.log"}
    config_file.write_text(yaml.safe_dump(config))


def _cli(home: Path, *args: str) -> str:
    result = run_cli(list(args), home=home)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def _server(served: Served) -> AuthsvcServe:
    """`authsvc serve` on the module's port (workers as the settings say), ready once /healthz answers."""
    log = served.root / "serve.log"
    served.logs += [log, served.home / "audit.log"]

    def healthy() -> str | None:
        try:
            status = served.call("GET", "/healthz")[0]
        except OSError as exc:
            return str(exc)
        return None if status == 200 else f"HTTP {status}"

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return AuthsvcServe(
        served.home, log, webhook=served.port, public="off", workers=None, env=env, ready=healthy, command=(AUTHSVC,)
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    home = root / "home"
    _cli(home, "init")
    from authsvc.home.opened import open_home

    with JWKSServer(*server_tls_files(open_home(home, environ={}), root)) as idp:
        _configure(home, idp)
        served = Served(
            root,
            home,
            free_port(),
            idp,
            [],
            bootstrap_token=_cli(home, "token", "bootstrap", "create", "--ttl", "1h"),
            authsvc_token=_cli(home, "token", "create-user", "carol", "-g", "dev"),
        )
        kubeconfig = root / "webhook.kubeconfig"
        _cli(home, "webhook-config", "--url", f"https://127.0.0.1:{served.port}/authenticate", "-o", str(kubeconfig))
        _cli(home, "certs", "create", "bob", "-g", "dev", "--out-dir", str(root))
        ca = home / "pki" / "ca.crt"
        served.contexts = {
            "apiserver": _apiserver_context(kubeconfig, root),
            "nobody": _context(ca),
            "cluster-ca person": _context(ca, root / "bob.crt", root / "bob.key"),
        }
        served.secrets |= {STATIC, HASHED, served.bootstrap_token, served.authsvc_token}
        with _server(served).running():
            yield served
        # A stop writes the last batch: every TokenReview that reached the app has its line.
        assert len(served.audit_lines()) == served.reviewed


@pytest.mark.parametrize("who", ["nobody", "cluster-ca person"])
def test_callers_without_the_webhook_client_certificate_are_refused_in_tls(served: Served, who: str) -> None:
    refused = f"refused-token-{who.replace(' ', '-')}"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        served.review(refused, who=who)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        served.call("GET", "/metrics", who=who)
    marker = f"marker-after-{who.replace(' ', '-')}"
    served.review(marker)
    assert served.audited(marker)  # written after the refused attempt, so the log is current
    assert not served.audited(refused, timeout=0)  # never reached the application


def _expected_users(served: Served) -> dict[str, str]:
    bootstrap_id = served.bootstrap_token.split(".")[0]
    return {
        STATIC: "alice",
        HASHED: "bob",
        served.bootstrap_token: f"system:bootstrap:{bootstrap_id}",
        served.idp.token({"groups": ["dev"]}): "oidc:jane",
        served.authsvc_token: "carol",
    }


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_every_backend_authenticates(served: Served, api_version: str) -> None:
    for token, username in _expected_users(served).items():
        status, reply = served.review(token, api_version=api_version)
        assert status == 200
        assert reply["apiVersion"] == api_version and reply["kind"] == "TokenReview"
        assert reply["status"]["authenticated"] is True, (username, reply)
        assert reply["status"]["user"]["username"] == username


def _wrong_tokens(served: Served) -> dict[str, str]:
    bootstrap_id = served.bootstrap_token.split(".")[0]
    header, payload, signature = served.authsvc_token.split(".")
    from .jwks import Issuer

    impostor = Issuer(served.idp.url)  # same issuer name, keys of its own
    return {
        "tokenfile": STATIC[:-1] + "b",
        "tokenfile hashed": hash_token_column(HASHED),
        "bootstrap wrong secret": f"{bootstrap_id}.{'0123456789abcdef'}",
        "bootstrap unknown id": "zzzzzz.0123456789abcdef",
        "issuer foreign key": impostor.token(kid=served.idp.kid),
        "issuer expired": served.idp.token({"exp": int(time.time()) - 120}),
        "issuer wrong audience": served.idp.token({"aud": "someone-else"}),
        "authsvc tampered": f"{header}.{payload[:-2]}AA.{signature}",
    }


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_every_backend_rejects_without_an_error(served: Served, api_version: str) -> None:
    for name, token in _wrong_tokens(served).items():
        status, reply = served.review(token, api_version=api_version)
        assert status == 200
        assert reply == {"apiVersion": api_version, "kind": "TokenReview", "status": {"authenticated": False}}, name


def test_audiences(served: Served) -> None:
    # The test issuer is audience-aware: its tokens (aud "kubernetes") answer with audiences.
    _, reply = served.review(served.idp.token(), audiences=["elsewhere", "kubernetes"])
    assert reply["status"]["audiences"] == ["kubernetes"]
    _, reply = served.review(served.idp.token(), audiences=["https://kubernetes.default.svc"])
    assert reply["status"] == {"authenticated": False}  # valid only for another audience: a plain no
    for agnostic in (STATIC, served.authsvc_token):  # no audience of their own: the API server checks
        _, reply = served.review(agnostic, audiences=["https://kubernetes.default.svc"])
        assert reply["status"]["authenticated"] is True and "audiences" not in reply["status"]


def test_the_issuer_rotates_its_key_without_a_restart(served: Served) -> None:
    assert served.review(served.idp.token())[1]["status"]["authenticated"] is True
    fetched = served.idp.requests["/jwks"]
    served.idp.rotate()
    rotated = served.idp.token({"sub": "after-rotation"})
    _, reply = served.review(rotated)
    assert reply["status"]["user"]["username"] == "oidc:after-rotation"
    assert served.idp.requests["/jwks"] > fetched


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def _body_with_secret(secret: str, **changes: Any) -> bytes:
    return json.dumps({**review_body(secret), **changes}).encode()


HOSTILE_400 = {
    "not JSON": b"token=hostile-secret-0001",
    "truncated": _body_with_secret("hostile-secret-0002")[:-4],
    "wrong kind": _body_with_secret("hostile-secret-0003", kind="SubjectAccessReview"),
    "wrong apiVersion": _body_with_secret("hostile-secret-0004", apiVersion="authentication.k8s.io/v2"),
    "token a number": json.dumps({"apiVersion": V1, "kind": "TokenReview", "spec": {"token": 5}}).encode(),
    "token empty": json.dumps({"apiVersion": V1, "kind": "TokenReview", "spec": {"token": ""}}).encode(),
    "no spec": json.dumps({"apiVersion": V1, "kind": "TokenReview"}).encode(),
    "deep nesting": b"[" * 60_000,
    "invalid UTF-8": b'{"apiVersion": "\xc3\x28"}',
    "empty": b"",
}


@pytest.mark.parametrize("name", list(HOSTILE_400))
def test_malformed_bodies_are_400(served: Served, name: str) -> None:
    served.secrets |= {f"hostile-secret-000{i}" for i in range(1, 5)}
    status, headers, data = served.call("POST", "/authenticate", HOSTILE_400[name], headers=_json_headers())
    assert status == 400
    reply = json.loads(data)
    assert reply["kind"] == "TokenReview" and reply["status"]["authenticated"] is False and reply["status"]["error"]
    assert headers["content-type"] == "application/json"


def test_size_method_and_content_type_refusals(served: Served) -> None:
    big = _body_with_secret("hostile-secret-big-" + "x" * 70_000)
    served.secrets.add("hostile-secret-big-")
    assert served.call("POST", "/authenticate", big, headers=_json_headers())[0] == 413
    chunks = iter([big[i : i + 8192] for i in range(0, len(big), 8192)])
    assert served.call("POST", "/authenticate", chunks, headers=_json_headers(), chunked=True)[0] == 413
    small_chunks = iter([_body_with_secret(STATIC)[:20], _body_with_secret(STATIC)[20:]])
    assert served.call("POST", "/authenticate", small_chunks, headers=_json_headers(), chunked=True)[0] == 200
    served.reviewed += 1
    status, headers, _ = served.call("GET", "/authenticate")
    assert status == 405 and headers["allow"] == "POST"
    assert served.call("PUT", "/authenticate", _body_with_secret(STATIC), headers=_json_headers())[0] == 405
    text = {"Content-Type": "text/plain"}
    assert served.call("POST", "/authenticate", _body_with_secret(STATIC), headers=text)[0] == 415
    assert served.call("POST", "/authenticate", _body_with_secret(STATIC))[0] == 415  # no Content-Type at all
    bad_length = {**_json_headers(), "Content-Length": "-1"}
    assert served.call("POST", "/authenticate", b"", headers=bad_length)[0] == 400


def test_health_readiness_and_metrics(served: Served) -> None:
    assert served.call("GET", "/healthz")[0] == 200
    status, _, body = served.call("GET", "/readyz")
    assert (status, body) == (200, b"ok\n")
    # One connection: the review and the scrape reach the same worker, whose own counts are in
    # its answer at once (the other worker's within a second: tests/serve/test_metrics.py).
    connection = http.client.HTTPSConnection("127.0.0.1", served.port, context=served.contexts["apiserver"])
    connection.request("POST", "/authenticate", json.dumps(review_body(STATIC)), headers=_json_headers())
    assert connection.getresponse().read()
    served.reviewed += 1
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/plain")
    assert b'authsvc_tokenreview_requests_total{backend="tokenfile",decision="allow"}' in body


def test_zz_no_token_in_any_log_and_no_traceback(served: Served) -> None:
    """Runs last: everything the server wrote during this module, searched for every token sent."""
    for token in list(_expected_users(served)) + list(_wrong_tokens(served).values()):
        served.review(token)
    served.review("last-marker-token")
    assert served.audited("last-marker-token")  # the batch with everything before it is written
    logs = {path.name: path.read_text(errors="replace") for path in served.logs}
    assert logs["audit.log"].count("\n") >= len(served.secrets)  # the logs are there: the search is not vacuous
    for name, text in logs.items():
        assert "Traceback" not in text, name
        for secret in served.secrets:
            assert secret not in text, f"a token ({secret[:8]}...) is in {name}"
    fingerprints = {line["ids"]["token"] for line in served.audit_lines()}
    assert all(len(f) == 12 for f in fingerprints) and len(fingerprints) > 10
