"""A loopback HTTPS server that plays the API server's `/version` for kubectl and client-go.

It requires a client certificate from a given CA (ssl.CERT_REQUIRED) unless told not to, and
records what each request carried: the client certificate's identity (CN, O) and the
Authorization header. Handshakes it refuses are recorded too, so a test can show that a
credential was turned away at the TLS layer, before any HTTP.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509

from pki.names import subject_user

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.seen: list[SeenRequest] = []
        self.tls_errors: list[str] = []
        self.refused = threading.Event()

    def get_request(self) -> tuple[socket.socket, Any]:
        # The handshake happens here, on the raw accepted socket, so a refusal is recorded.
        sock, address = self.socket.accept()
        try:
            return self.context.wrap_socket(sock, server_side=True), address
        except (ssl.SSLError, OSError) as e:
            self.tls_errors.append(getattr(e, "reason", None) or str(e))
            self.refused.set()
            sock.close()
            raise


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        der = self.connection.getpeercert(binary_form=True)
        user, groups = subject_user(x509.load_der_x509_certificate(der).subject) if der else (None, ())
        path = urllib.parse.urlsplit(self.path).path  # kubectl adds ?timeout=...
        self.server.seen.append(SeenRequest(path, user, groups, self.headers.get("Authorization")))
        if path.rstrip("/") != "/version":
            self.send_error(404)
            return
        body = json.dumps(VERSION).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class VersionServer:
    """`with VersionServer(cert, key, client_ca=ca) as server:` → server.url, server.seen."""

    def __init__(self, cert_file: Path, key_file: Path, *, client_ca: Path | None) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=client_ca)
        self._server = _Server(context)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen(self) -> list[SeenRequest]:
        return self._server.seen

    def refused_handshakes(self, timeout: float = 10.0) -> list[str]:
        """Why handshakes were refused; waits for the first (the client may see the alert first)."""
        self._server.refused.wait(timeout)
        return self._server.tls_errors

    def __enter__(self) -> VersionServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
