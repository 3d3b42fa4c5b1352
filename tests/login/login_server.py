"""The real app on a loopback HTTPS server (werkzeug, in a thread) that counts POST /login."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from authsvc.home.opened import Home
from pki.names import SubjectAltNames
from pki.profiles import SERVER
from pki.store import atomic_write

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serving_files(home: Home, folder: Path) -> tuple[Path, Path]:
    """A serving certificate for 127.0.0.1/localhost from the home's cluster CA."""
    issued = home.stores.issuer().create(
        "authsvc-login", profile=SERVER, sans=SubjectAltNames.parse(["IP:127.0.0.1", "DNS:localhost"])
    )
    cert, key = folder / "login.crt", folder / "login.key"
    atomic_write(cert, issued.cert_pem, 0o644)
    atomic_write(key, issued.key_pem(), 0o600)
    return cert, key


class LoginServer:
    def __init__(self, app: Flask, cert: Path, key: Path) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.logins = 0
        self._lock = threading.Lock()
        inner = app.wsgi_app

        def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == "/login":
                with self._lock:
                    self.logins += 1
            result: Iterable[bytes] = inner(environ, start_response)
            return result

        app.wsgi_app = counting  # type: ignore[method-assign]
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_port}/login"

    def __enter__(self) -> LoginServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
