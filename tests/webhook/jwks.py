"""A real OIDC issuer on loopback HTTPS for the tests: discovery, a JWKS that can rotate, counts.

It runs tests/components/https_server.py with a server certificate from the test home's CA, so
authsvc verifies it exactly as it would a real identity provider (`ca_file`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from authsvc.home.opened import Home
from pki.names import SubjectAltNames
from pki.profiles import SERVER
from pki.store import CERT_MODE, KEY_MODE, atomic_write
from tests.components.https_server import HTTPSServer, Request, Response

DISCOVERY = "/.well-known/openid-configuration"


def server_tls_files(home: Home, directory: Path) -> tuple[Path, Path]:
    """A loopback server certificate from the home's cluster CA (what ca_file pki/ca.crt trusts)."""
    issued = home.stores.issuer().create("jwks-test", profile=SERVER, sans=SubjectAltNames.parse(["IP:127.0.0.1"]))
    cert, key = directory / "jwks.crt", directory / "jwks.key"
    atomic_write(cert, issued.cert_pem, CERT_MODE)
    atomic_write(key, issued.key_pem(), KEY_MODE)
    return cert, key


class Issuer:
    """Signing keys (kid -> key) and the tokens they sign."""

    def __init__(self, url: str = "") -> None:
        self.url = url
        self.keys: dict[str, Any] = {}
        self.rotate()

    def rotate(self, algorithm: str = "ES256") -> str:
        """Replace the published key with a new one (a new kid); return the kid."""
        kid = uuid.uuid4().hex[:12]
        key = ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" else rsa.generate_private_key(65537, 2048)
        self.keys = {kid: (algorithm, key)}
        return kid

    @property
    def kid(self) -> str:
        return next(iter(self.keys))

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, (algorithm, key) in self.keys.items():
            family = jwt.algorithms.ECAlgorithm if algorithm.startswith("ES") else jwt.algorithms.RSAAlgorithm
            keys.append({**json.loads(family.to_jwk(key.public_key())), "kid": kid, "alg": algorithm, "use": "sig"})
        return {"keys": keys}

    def token(self, claims: dict[str, Any] | None = None, *, now: float | None = None, **header: Any) -> str:
        issued = int(time.time() if now is None else now)
        body = {"iss": self.url, "aud": "kubernetes", "sub": "jane", "iat": issued, "exp": issued + 600}
        body.update(claims or {})
        kid = header.pop("kid", self.kid)
        algorithm, key = self.keys.get(kid, next(iter(self.keys.values())))
        return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid, **header})


class JWKSServer(Issuer):
    """The issuer served over HTTPS: GET discovery and /jwks; `up = False` answers 503."""

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__()
        self.requests: Counter[str] = Counter()
        self.up = True
        self._https = HTTPSServer(cert, key, self._respond)
        self.url = self._https.url

    def __enter__(self) -> JWKSServer:
        self._https.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._https.__exit__(*exc)

    def _document(self, path: str) -> dict[str, Any] | None:
        if path == DISCOVERY:
            return {"issuer": self.url, "jwks_uri": self.url + "/jwks"}
        return self.jwks() if path == "/jwks" else None

    def _respond(self, request: Request) -> Response:
        self.requests[request.target] += 1
        if not self.up:
            return Response.json({}, 503)
        document = self._document(request.target)
        return Response.json(document) if document is not None else Response.json({}, 404)
