"""A loopback HTTPS server in a thread, for the peers of authsvc, kubectl and client-go that are not
authsvc itself: an OIDC issuer's discovery and JWKS (tests/webhook/jwks.py), the API server's
`/version` (tests/kubeconfig/tls_server.py).

    with HTTPSServer(cert, key, respond, client_ca=ca) as server:   # client_ca: mTLS required
        ... server.url, server.requests, server.refused_handshakes()

`respond(request) -> Response` answers every GET and POST; `requests` records each one with
the client certificate it came with. The TLS handshake runs in the connection's own thread (a
slow or silent client holds up nobody), and a handshake the server refuses is recorded, so a
test can show that a credential was turned away at the TLS layer, before any HTTP.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from cryptography import x509

__all__ = ["HTTPSServer", "Request", "Response"]

HANDSHAKE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # as sent, query included
    headers: Message
    body: bytes
    client_cert: x509.Certificate | None

    @property
    def path(self) -> str:
        """The target without its query (kubectl adds ?timeout=...)."""
        return urllib.parse.urlsplit(self.target).path


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def json(cls, document: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(document).encode())


Respond = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, respond: Respond) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.respond = respond
        self.requests: list[Request] = []
        self.tls_errors: list[str] = []
        self.refused = threading.Event()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        sock.settimeout(HANDSHAKE_TIMEOUT)
        # The handshake happens in the connection's thread (_Handler.setup), not in this accept loop.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A refused handshake is recorded, a client gone mid-request is none of the test's
        # business; anything else (a bug in `respond`) is printed as usual.
        if not isinstance(sys.exc_info()[1], OSError):  # ssl.SSLError is an OSError
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            self.server.tls_errors.append(getattr(e, "reason", None) or str(e))
            self.server.refused.set()
            raise
        self.request.settimeout(None)
        super().setup()

    def _answer(self, body: bytes) -> None:
        der = self.connection.getpeercert(binary_form=True)
        request = Request(
            self.command, self.path, self.headers, body, x509.load_der_x509_certificate(der) if der else None
        )
        self.server.requests.append(request)
        response = self.server.respond(request)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HTTPSServer:
    """See the module docstring. `client_ca`: require a client certificate from that CA."""

    def __init__(self, cert_file: Path, key_file: Path, respond: Respond, *, client_ca: Path | None = None) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=client_ca)
        self._server = _Server(context, respond)
        # A short poll: shutdown() waits for it, once per server.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    def refused_handshakes(self, timeout: float = 10.0) -> list[str]:
        """Why handshakes were refused; waits for the first (the client may see the alert first)."""
        self._server.refused.wait(timeout)
        return self._server.tls_errors

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
