"""OpenID Connect sign-ins per second against POST /login, on the same `authsvc serve` (granian,
TLS), in the same run, interleaved; and token refreshes per second.

(a) POST /login: HTTP Basic in, a user token out (rate-limit read, users-file check, RS256 token)
(b) code flow: POST /authorize (the form: CSRF, the same credential check, a code row) and
    POST /token (PKCE, the code spent, the family and issue rows, an access token and an ID token:
    two RS256 signatures). The form's GET before them is timed apart: (b') is all three.
(c) refresh: POST /token with the last refresh token (user re-checked, rotation, two signatures)

The three alternate one operation at a time (a, b, c, a, b, c, ...), so that they share whatever
load the machine has. One client connection (keep-alive, http.client); the users file uses cheap argon2 parameters
so that the figures show authsvc's work rather than the password hash (the default profile costs
~50-100 ms per check, the same in (a) and (b)).

    .venv/bin/python bench/oidc.py [--count 200] [--rounds 3]

The ratio line is (b)/(a); the target is >= 0.5.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
import yaml

from authsvc.init.steps import initialize_home
from authsvc.login.users_file import StaticUser, hash_password, write_users
from authsvc.settings import Settings
from tests.components.support import free_port
from tests.login.fixtures import CHEAP_HASHER

AUTHSVC = Path(sys.executable).with_name("authsvc")
USER, PASSWORD, CLIENT = "bench-user", "bench-password-123", "kubectl"
REDIRECT = "http://127.0.0.1:40000/callback"


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    settings = {
        "server": {"public_url": url, "workers": 2},
        "tokens": {"user_issuer": f"{url}/users"},
        "login": {"backends": ["users"], "max_failures_per_user": 1000, "max_failures_per_address": 1000},
        "oidc": {"clients": [{"id": CLIENT, "type": "public", "redirect_uris": ["http://127.0.0.1/callback"]}]},
        "audit": {"enabled": False},
    }
    home = root / "home"
    home.mkdir(mode=0o700)
    (home / "authsvc.yaml").write_text(yaml.safe_dump(settings))
    initialized = initialize_home(home, Settings.model_validate(settings), environ={}).home
    user = StaticUser(USER, "bench-uid", ("bench",), hash_password(PASSWORD, CHEAP_HASHER))
    write_users(initialized.layout.path("users.csv"), [user])
    initialized.stores.engine.dispose()
    log = (root / "serve.log").open("wb")
    args = [str(AUTHSVC), f"--home={home}", "serve", f"--bind=127.0.0.1:{port}", "--insecure-no-client-cert"]
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ca = str(home / "pki" / "ca.crt")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", verify=ca, timeout=2).status_code == 200:
                return process, url
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"authsvc serve did not start: see {root / 'serve.log'}")


class Client:
    """One keep-alive HTTPS connection (http.client: a few µs per request where requests costs
    about a millisecond, which would count against the path with more requests) and its cookies."""

    def __init__(self, url: str, ca: str) -> None:
        parts = urlsplit(url)
        context = ssl.create_default_context(cafile=ca)
        self.connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        sent = dict(headers or {})
        body = None
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.connection.request(method, path, body, sent)
        response = self.connection.getresponse()
        data = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response.status, response, data


BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def login(c: Client) -> None:
    status, _, body = c.request("POST", "/login", headers={"Authorization": BASIC, "Content-Length": "0"})
    assert status == 200, body


def code_flow(c: Client, timing: dict[str, float] | None = None) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "scope": "openid profile groups",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    started = time.perf_counter()
    status, _, page = c.request("GET", "/authorize?" + urlencode(params))
    if timing is not None:
        timing["get"] += time.perf_counter() - started
    assert status == 200, page
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.decode())
    form = {name: html.unescape(value) for name, value in hidden}
    form.update(username=USER, password=PASSWORD)
    status, answer, body = c.request("POST", "/authorize", form)
    assert status == 302, body
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT,
        "code_verifier": verifier,
    }
    status, _, body = c.request("POST", "/token", data)
    assert status == 200, body
    refresh_token: str = json.loads(body)["refresh_token"]
    return refresh_token


def refresh(c: Client, token: str) -> str:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": CLIENT}
    status, _, body = c.request("POST", "/token", data)
    assert status == 200, body
    new: str = json.loads(body)["refresh_token"]
    return new


def timed(run: object) -> float:
    started = time.perf_counter()
    run()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-oidc-"))
    process, url = start_server(root)
    try:
        c = Client(url, str(root / "home" / "pki" / "ca.crt"))
        holder = {"token": code_flow(c)}
        login(c)  # warm both paths

        def refresh_once() -> None:
            holder["token"] = refresh(c, holder["token"])

        rows: dict[str, list[float]] = {"login": [], "flow": [], "with_get": [], "refresh": []}
        for _ in range(options.rounds):
            # Interleaved one by one: the machine's load moves (other processes share its 2
            # cores), and both paths must see the same load for their ratio to mean anything.
            spent = {"login": 0.0, "flow": 0.0, "get": 0.0, "refresh": 0.0}
            for _ in range(options.count):
                spent["login"] += timed(lambda: login(c))
                timing = {"get": 0.0}
                spent["flow"] += timed(lambda timing=timing: code_flow(c, timing)) - timing["get"]
                spent["get"] += timing["get"]
                spent["refresh"] += timed(refresh_once)
            rows["login"].append(options.count / spent["login"])
            rows["flow"].append(options.count / spent["flow"])
            rows["with_get"].append(options.count / (spent["flow"] + spent["get"]))
            rows["refresh"].append(options.count / spent["refresh"])
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in rows.items()}
    print(f"{'':48}{'per second (median of ' + str(options.rounds) + ' rounds)':>36}")
    print(f"{'(a) POST /login':48}{median['login']:>12.1f}   {_spread(rows['login'])}")
    print(f"{'(b) code flow: POST /authorize + POST /token':48}{median['flow']:>12.1f}   {_spread(rows['flow'])}")
    print(f"{'(b) with the GET of the form':48}{median['with_get']:>12.1f}   {_spread(rows['with_get'])}")
    print(f"{'(c) refresh: POST /token (rotation)':48}{median['refresh']:>12.1f}   {_spread(rows['refresh'])}")
    ratios = [flow / login for flow, login in zip(rows["flow"], rows["login"], strict=True)]
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"ratio (b)/(a): {statistics.median(ratios):.2f} (rounds {shown}; target >= 0.5)")


def _spread(values: list[float]) -> str:
    return "rounds " + ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()
