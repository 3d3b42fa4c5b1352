"""`authsvc login --browser` as kubectl runs it: a real process against the provider on a real
HTTPS server (werkzeug in a thread, the app of tests/oidc). The browser is played by requests:
it reads the URL the plugin prints on stderr, signs in on the form and follows the redirect to
the plugin's loopback listener (tests/e2e/test_oidc_browser.py does the same in Chromium).

Cached answers without the network, refresh with rotation (through click with an injected
clock), several runs started together making one sign-in (the cache lock), a redirect with
another `state` ignored, a refused refresh leading to a new sign-in."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from authsvc.home.opened import Home
from tests.components.support import free_port
from tests.login.fixtures import ADMIN, ADMIN_PASSWORD
from tests.login.login_server import serving_files
from tests.oidc.fixtures import MakeOIDCHome
from tests.oidc.support import KUBECTL, read_form

AUTHSVC = Path(sys.executable).with_name("authsvc")
URL_LINE = re.compile(r"^https://\S+/authorize\?\S+$", re.MULTILINE)


@dataclass
class Provider:
    issuer: str
    ca_file: Path
    home: Home


@pytest.fixture
def provider(make_oidc: MakeOIDCHome, oidc_app: Callable[..., Flask], tmp_path: Path) -> Iterator[Provider]:
    port = free_port()
    public = f"https://127.0.0.1:{port}"
    home = make_oidc(server={"public_url": public}, tokens={"user_issuer": f"{public}/users"})
    cert, key = serving_files(home, tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = make_server("127.0.0.1", port, oidc_app(home), threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Provider(f"{public}/users", home.layout.cert_path("ca"), home)
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _env(tmp_path: Path) -> dict[str, str]:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    return {**env, "XDG_CACHE_HOME": str(cache), "AUTHSVC_NO_BROWSER": "1"}


def _start(provider: Provider, env: dict[str, str], *global_options: str) -> subprocess.Popen[str]:
    args = [str(AUTHSVC), *global_options, "login", "--browser", "--issuer", provider.issuer]
    args += ["--client-id", KUBECTL, "--ca-file", str(provider.ca_file), "--username", ADMIN.username]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _sign_in_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    for line in iter(process.stderr.readline, ""):
        if URL_LINE.match(line.strip()):
            return line.strip()
    raise AssertionError(f"no sign-in URL; exit {process.wait()}")


def _browser(provider: Provider, url: str, *, password: str = ADMIN_PASSWORD) -> str:
    """GET the form, POST it; the Location the provider redirects to (the plugin's listener)."""
    browser = requests.Session()
    browser.verify, browser.trust_env = str(provider.ca_file), False
    page = browser.get(url, timeout=10)
    action, inputs = read_form(page.text)
    inputs.update(username=ADMIN.username, password=password)
    answer = browser.post(requests.compat.urljoin(url, action), data=inputs, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    credential: dict[str, Any] = json.loads(stdout)
    return credential


def _signed_in(provider: Provider, env: dict[str, str]) -> dict[str, Any]:
    process = _start(provider, env)
    location = _browser(provider, _sign_in_url(process))
    assert requests.get(location, timeout=10).status_code == 200  # the plugin's "you may close this tab"
    return _finish(process)


def _in_an_hour() -> str:
    import datetime as dt

    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()


def _cache(env: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((Path(env["XDG_CACHE_HOME"]) / "authsvc" / "tokens.json").read_text())
    return document


def test_sign_in_then_cached_then_refreshed(provider: Provider, tmp_path: Path) -> None:
    env = _env(tmp_path)
    first = _signed_in(provider, env)
    token = first["status"]["token"]
    assert first["kind"] == "ExecCredential" and first["status"]["expirationTimestamp"].endswith("Z")
    entry = next(iter(_cache(env)["servers"].values()))["tokens"][""]
    assert entry["token"] == token and entry["refresh_token"] and entry["token_endpoint"].endswith("/token")
    assert os.stat(Path(env["XDG_CACHE_HOME"]) / "authsvc" / "tokens.json").st_mode & 0o077 == 0

    cached = subprocess.run(_start(provider, env).args, env=env, capture_output=True, text=True, timeout=60)
    assert cached.returncode == 0 and json.loads(cached.stdout)["status"]["token"] == token
    assert "/authorize?" not in cached.stderr  # no browser the second time

    # An hour later (injected clock): the cached ID token has expired; the refresh token renews it.
    later = subprocess.run(
        _start(provider, env, "--now", _in_an_hour()).args, env=env, capture_output=True, text=True, timeout=60
    )
    assert later.returncode == 0, later.stderr
    assert "/authorize?" not in later.stderr
    assert json.loads(later.stdout)["status"]["token"] != token
    renewed = next(iter(_cache(env)["servers"].values()))["tokens"][""]
    assert renewed["refresh_token"] != entry["refresh_token"]  # rotated


def test_runs_started_together_make_one_sign_in(provider: Provider, tmp_path: Path) -> None:
    env = _env(tmp_path)
    processes = [_start(provider, env) for _ in range(4)]
    # One holds the lock and prints a URL; the others wait for it, then find its token.
    url, more_urls = _first_url(processes)
    requests.get(_browser(provider, url), timeout=10)
    tokens = {_finish(process)["status"]["token"] for process in processes}
    assert len(tokens) == 1
    assert more_urls.empty()  # nobody else was sent to the browser


def _first_url(processes: list[subprocess.Popen[str]]) -> tuple[str, Any]:
    """The sign-in URL whichever process prints it (a reader thread per stderr)."""
    import queue

    found: queue.Queue[str] = queue.Queue()

    def read(process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in iter(process.stderr.readline, ""):
            if URL_LINE.match(line.strip()):
                found.put(line.strip())

    for process in processes:
        threading.Thread(target=read, args=(process,), daemon=True).start()
    return found.get(timeout=60), found


def test_a_redirect_with_another_state_is_ignored(provider: Provider, tmp_path: Path) -> None:
    env = _env(tmp_path)
    process = _start(provider, env)
    location = _browser(provider, _sign_in_url(process))
    forged = re.sub(r"state=[^&]+", "state=someone-elses", location)
    assert requests.get(forged, timeout=10).status_code == 400
    assert process.poll() is None  # still waiting for its own answer
    assert requests.get(location, timeout=10).status_code == 200
    assert _finish(process)["status"]["token"]


def test_a_refused_refresh_token_leads_to_a_new_sign_in(provider: Provider, tmp_path: Path) -> None:
    env = _env(tmp_path)
    _signed_in(provider, env)
    cache_file = Path(env["XDG_CACHE_HOME"]) / "authsvc" / "tokens.json"
    document = _cache(env)
    entry = next(iter(document["servers"].values()))["tokens"][""]
    entry["refresh_token"] = "revoked-or-unknown"
    cache_file.write_text(json.dumps(document))
    process = _start(provider, env, "--now", _in_an_hour())
    url = _sign_in_url(process)  # the provider refused the refresh: the browser again
    requests.get(_browser(provider, url), timeout=10)
    assert _finish(process)["status"]["token"]
