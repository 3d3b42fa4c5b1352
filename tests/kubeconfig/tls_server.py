"""A loopback HTTPS server (tests/components/https_server.py) that plays the API server's `/version`
for kubectl and client-go.

It requires a client certificate from a given CA (ssl.CERT_REQUIRED) unless told not to, and
records what each request carried: the client certificate's identity (CN, O) and the
Authorization header. Handshakes it refuses are recorded too, so a test can show that a
credential was turned away at the TLS layer, before any HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pki.names import subject_user
from tests.components.https_server import HTTPSServer, Request, Response

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class SeenRequest:
    path: str
    user: str | None
    groups: tuple[str, ...]
    authorization: str | None


def _version(request: Request) -> Response:
    return Response.json(VERSION) if request.path.rstrip("/") == "/version" else Response.json({}, 404)


class VersionServer(HTTPSServer):
    """`with VersionServer(cert, key, client_ca=ca) as server:` → server.url, server.seen."""

    def __init__(self, cert_file: Path, key_file: Path, *, client_ca: Path | None) -> None:
        super().__init__(cert_file, key_file, _version, client_ca=client_ca)

    @property
    def seen(self) -> list[SeenRequest]:
        """Each GET: its path, the client certificate's identity (CN, O), its Authorization header."""
        seen = []
        for request in self.requests:
            user, groups = subject_user(request.client_cert.subject) if request.client_cert else (None, ())
            seen.append(SeenRequest(request.path, user, groups, request.headers.get("Authorization")))
        return seen
