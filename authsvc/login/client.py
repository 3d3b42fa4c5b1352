"""`authsvc login` and `authsvc logout`: the kubectl exec credential plugin.

kubectl runs `authsvc login --server URL [--ca-data B64] [--username NAME]` before each
command (client-go credential plugins). With a cached token that is still valid this
prints it at once; otherwise it asks for the user name and password on the terminal (or
reads AUTHSVC_USERNAME / AUTHSVC_PASSWORD), POSTs them to URL over TLS (HTTP Basic),
caches the token and prints an ExecCredential (client.authentication.k8s.io/v1) with its
expirationTimestamp.

With `--credential certificate` (kubeconfigs from `authsvc issue --mode exec-cert`) the
credential is a client certificate instead, as Pinniped hands out: a new login generates a
P-256 key here, sends a CSR with the credentials, and gets a certificate for the key valid for
minutes (the server's login.certificate_ttl); the ExecCredential carries
clientCertificateData and clientKeyData. The key never leaves this machine but for the cache
file. A revoked person's certificate then ends with its short life, although the API server
never checks revocation: renewing it takes a login, which is refused.

Cache: one JSON file, mode 0600, in $XDG_CACHE_HOME/authsvc (default ~/.cache/authsvc),
keyed by login URL and user name (tokens and certificates with their keys apart). An
exclusive flock on a lock file beside it is held from the cache read to the cache write, so
ten kubectl commands started together with an empty cache make one login: the other nine
wait for the lock and find the fresh token.

Standard library only, and only what the cached path needs is imported up front (json,
fcntl): kubectl pays this start-up before every command. TLS, HTTP, the password prompt and
(for a certificate) the key generation are imported when a login is actually needed.
"""

# os.path rather than pathlib: pathlib (with re, fnmatch) costs ~10 ms to import, more than
# everything else on the cached path.
# ruff: noqa: PTH103, PTH105, PTH108, PTH110, PTH111, PTH112, PTH118

from __future__ import annotations

import fcntl
import json
import os
import sys
import time

from authsvc.login.execcredential import exec_credential, exec_credential_certificate

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, TextIO

CACHE_NAME = "tokens.json"
LOCK_NAME = "tokens.lock"
CACHE_VERSION = 1
# A token this close to its expiry is replaced: a command started now must not fail halfway.
EXPIRY_MARGIN_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 30
USER_ENV, PASSWORD_ENV, EXEC_INFO_ENV = "AUTHSVC_USERNAME", "AUTHSVC_PASSWORD", "KUBERNETES_EXEC_INFO"
# What `--credential` may ask for, and where each is kept in a server's cache entry.
CREDENTIALS = {"token": "tokens", "certificate": "certificates"}
# A cache file larger than this is not ours (a thousand tokens take about 1 MiB): it counts as empty.
MAX_CACHE_BYTES = 4 << 20
# 10000-01-01T00:00:00Z: no RFC 3339 expirationTimestamp is later.
MAX_EXPIRES = 253402300800


class LoginError(Exception):
    """Shown as one line `error: ...` on stderr, exit status 1."""


class LoginOptions:
    """What `authsvc login` was asked to do (options, environment, clock, terminal)."""

    __slots__ = (
        "ask_password",
        "ca_data",
        "ca_file",
        "credential",
        "environ",
        "now",
        "server",
        "stderr",
        "stdin",
        "username",
    )

    def __init__(
        self,
        server: str,
        *,
        username: str | None = None,
        ca_file: str | None = None,
        ca_data: str | None = None,
        environ: Mapping[str, str] | None = None,
        now: Callable[[], float] = time.time,
        stdin: TextIO | None = None,
        stderr: TextIO | None = None,
        ask_password: Callable[[str], str] | None = None,
        credential: str = "token",
    ) -> None:
        if credential not in CREDENTIALS:
            raise LoginError(f"--credential {credential!r}: one of {', '.join(CREDENTIALS)}")
        self.credential = credential
        self.server = login_url(server)
        self.username = username
        self.ca_file = ca_file
        self.ca_data = ca_data
        self.environ = os.environ if environ is None else environ
        self.now = now
        self.stdin = stdin or sys.stdin
        self.stderr = stderr or sys.stderr
        self.ask_password = ask_password or self._getpass

    def _getpass(self, prompt: str) -> str:
        import getpass  # reads the terminal (/dev/tty) with echo off

        return getpass.getpass(prompt, stream=self.stderr)


def login_url(server: str) -> str:
    """The URL to POST to: `--server` as given, with /login added to a bare https://host:port."""
    if not server.lower().startswith("https://"):
        raise LoginError(f"--server {server!r} must be an https:// URL: a password is never sent in clear")
    rest = server[len("https://") :]
    if "/" not in rest.rstrip("/"):
        return server.rstrip("/") + "/login"
    return server


def check_issuer(issuer: str) -> str:
    if not issuer.lower().startswith("https://"):
        raise LoginError(f"--issuer {issuer!r} must be an https:// URL")
    return issuer


def cache_dir(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "authsvc")


# -- the commands ---------------------------------------------------------------------------


def login(options: LoginOptions) -> dict[str, object]:
    """The ExecCredential for `options.server`: cached if valid, else from a new login."""
    directory = cache_dir(options.environ)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    kept = CREDENTIALS[options.credential]
    with CacheLock(directory):
        cache = read_cache(directory)
        server = cache["servers"].setdefault(options.server, {"last_user": "", "tokens": {}, "certificates": {}})
        username = options.username or options.environ.get(USER_ENV) or server["last_user"]
        cached = server[kept].get(username) if username else None
        if cached and cached["expires"] - EXPIRY_MARGIN_SECONDS > options.now():
            return as_exec_credential(cached)
        username, password = credentials(options, username)
        answer = post_login(options, username, password)
        server["last_user"] = username
        server[kept][username] = answer
        write_cache(directory, cache)
    return as_exec_credential(answer)


def as_exec_credential(entry: dict[str, Any]) -> dict[str, object]:
    if "certificate" in entry:
        return exec_credential_certificate(entry["certificate"], entry["key"], entry["expirationTimestamp"])
    return exec_credential(entry["token"], entry["expirationTimestamp"])


def logout(environ: Mapping[str, str], server: str | None = None) -> int:
    """Forget cached tokens (of one login URL, or all); returns how many were dropped."""
    directory = cache_dir(environ)
    if not os.path.isdir(directory):
        return 0
    with CacheLock(directory):
        cache = read_cache(directory)
        servers = cache["servers"]
        names = [login_url(server)] if server else list(servers)
        gone = [servers.pop(name, {}) for name in names]
        dropped = sum(len(entry.get(kept, {})) for entry in gone for kept in CREDENTIALS.values())
        write_cache(directory, cache)
    return dropped


# -- the cache ------------------------------------------------------------------------------


class CacheLock:
    """An exclusive flock on <dir>/tokens.lock (released when the file is closed, even on a crash)."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, LOCK_NAME)
        self.fd = -1

    def __enter__(self) -> CacheLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *_exc: object) -> None:
        os.close(self.fd)  # closing releases the lock


def read_cache(directory: str) -> dict[str, Any]:
    """The cache document, rebuilt from what in the file has the cache's shape.

    The file is the user's (to edit, to break, to share with another tool): an absent,
    unreadable, oversized, corrupt or foreign file counts as empty, and an entry of the wrong
    shape as absent. A broken cache costs a login, never a traceback.
    """
    try:
        with open(os.path.join(directory, CACHE_NAME), "rb") as handle:
            data = handle.read(MAX_CACHE_BYTES + 1)  # bounded: the path may even name /dev/zero
        document = json.loads(data) if len(data) <= MAX_CACHE_BYTES else None
    except (OSError, ValueError, RecursionError):  # ValueError: not UTF-8 or not JSON; deep nesting
        document = None
    if not isinstance(document, dict) or document.get("version") != CACHE_VERSION:
        document = {}
    return {"version": CACHE_VERSION, "servers": cached_servers(document.get("servers"))}


def cached_servers(servers: object) -> dict[str, Any]:
    """{login URL: {"last_user": str, "tokens": {user name: entry}, "certificates": {...}}},
    keeping only well-formed parts."""
    if not isinstance(servers, dict):
        return {}
    clean: dict[str, Any] = {}
    for url, server in servers.items():
        if not isinstance(server, dict):
            continue
        last_user = server.get("last_user")
        clean[url] = {"last_user": last_user if isinstance(last_user, str) else ""}
        for kept in CREDENTIALS.values():
            entries = server.get(kept)
            clean[url][kept] = (
                {user: entry for user, entry in entries.items() if is_cached_entry(entry, kept)}
                if isinstance(entries, dict)
                else {}
            )
    return clean


def is_cached_entry(entry: object, kept: str) -> bool:
    if not is_token_entry(entry, member="token" if kept == "tokens" else "certificate"):
        return False
    return kept == "tokens" or (isinstance(entry, dict) and isinstance(entry.get("key"), str) and bool(entry["key"]))


def is_token_entry(entry: object, *, member: str = "token") -> bool:
    """What `parse_answer` writes: a token (or a certificate), its RFC 3339 expiry, and that expiry in seconds."""
    if not isinstance(entry, dict):
        return False
    token, stamp, expires = entry.get(member), entry.get("expirationTimestamp"), entry.get("expires")
    if not (isinstance(token, str) and token and isinstance(stamp, str)):
        return False
    # bool is an int; NaN and infinities fail the range (an "Infinity" entry would never expire).
    return isinstance(expires, int | float) and not isinstance(expires, bool) and 0 < expires < MAX_EXPIRES


def write_cache(directory: str, document: dict[str, Any]) -> None:
    """Write 0600 (set before the first byte) and rename over the old file; the lock is held."""
    final = os.path.join(directory, CACHE_NAME)
    temporary = final + ".tmp"
    if os.path.exists(temporary):
        os.unlink(temporary)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)


# -- a new login (the slow path: imports happen here) ----------------------------------------


def credentials(options: LoginOptions, username: str) -> tuple[str, str]:
    """User name and password from the environment, else asked on the terminal (on stderr:
    kubectl reads the plugin's stdout)."""
    password = options.environ.get(PASSWORD_ENV, "")
    if username and password:
        return username, password
    if not interactive(options):
        raise LoginError(
            f"no valid cached token and no terminal to ask for a password: set {USER_ENV} and {PASSWORD_ENV}, "
            "or run a kubectl command in a terminal"
        )
    if not username:
        options.stderr.write("Username: ")
        options.stderr.flush()
        username = options.stdin.readline().strip()
    if not password:
        password = options.ask_password(f"Password for {username}: ")
    if not username or not password:
        raise LoginError("a user name and a password are needed")
    return username, password


def interactive(options: LoginOptions) -> bool:
    info = exec_info(options.environ)
    spec = info.get("spec") if isinstance(info.get("spec"), dict) else {}
    if isinstance(spec, dict) and spec.get("interactive") is False:
        return False
    return options.stdin.isatty()


def exec_info(environ: Mapping[str, str]) -> dict[str, Any]:
    try:
        info = json.loads(environ.get(EXEC_INFO_ENV) or "{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def post_login(options: LoginOptions, username: str, password: str) -> dict[str, Any]:
    """POST /login with HTTP Basic over verified TLS; the cache entry for the token it returns
    (or, for `--credential certificate`, for the certificate and the key made for it)."""
    import base64
    import http.client
    import urllib.parse

    key_pem, body = "", b""
    headers = {"Content-Length": "0"}
    if options.credential == "certificate":
        key_pem, csr = new_key_and_csr(username)
        body = json.dumps({"certificateSigningRequest": csr}).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    url = urllib.parse.urlsplit(options.server)
    basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    connection = http.client.HTTPSConnection(
        url.hostname or "", url.port or 443, context=tls_context(options), timeout=HTTP_TIMEOUT_SECONDS
    )
    path = (url.path or "/login") + ("?" + url.query if url.query else "")
    try:
        connection.request("POST", path, body=body, headers={"Authorization": f"Basic {basic}", **headers})
        response = connection.getresponse()
        body = response.read(1 << 20)
    except OSError as e:
        raise LoginError(f"cannot reach {options.server}: {e}") from None
    finally:
        connection.close()
    answer = parse_answer(options.server, response.status, response.getheader("Retry-After"), body)
    if key_pem:
        if "certificate" not in answer:
            raise LoginError(f"{options.server} answered without a certificate: does it sign certificates at login?")
        answer["key"] = key_pem
    return answer


def new_key_and_csr(username: str) -> tuple[str, str]:
    """A P-256 key made here (PEM) and a CSR signed by it; the server uses only its key."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from pki.csr import build_csr, csr_pem
    from pki.keys import generate_private_key, private_key_to_pem

    key = generate_private_key()
    # The server names the identity the login established; the CN only helps whoever reads the CSR.
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, username[:64] or "authsvc-login")])
    return private_key_to_pem(key).decode(), csr_pem(build_csr(key, subject)).decode()


def parse_answer(server: str, status: int, retry_after: str | None, body: bytes) -> dict[str, Any]:
    if status == 401:
        raise LoginError("login failed: invalid user name or password")
    if status == 429:
        raise LoginError(f"login refused: too many failed attempts, retry in {retry_after or 'a few'} seconds")
    try:
        document = json.loads(body)
    except ValueError:
        document = {}
    if status != 200:
        detail = document.get("error") if isinstance(document, dict) else None
        raise LoginError(f"login failed: {server} answered HTTP {status}" + (f": {detail}" if detail else ""))
    if isinstance(document, dict) and isinstance(document.get("clientCertificateData"), str):
        stamp = str(document.get("expirationTimestamp"))
        return {"certificate": document["clientCertificateData"], "expirationTimestamp": stamp,
                "expires": rfc3339_seconds(stamp)}  # fmt: skip
    try:
        token, stamp = str(document["token"]), str(document["expirationTimestamp"])
    except (KeyError, TypeError):
        raise LoginError(f"{server} answered without a token: is it an authsvc /login endpoint?") from None
    return {"token": token, "expirationTimestamp": stamp, "expires": rfc3339_seconds(stamp)}


def rfc3339_seconds(stamp: str) -> float:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise LoginError(f"the login answer's expirationTimestamp {stamp!r} is not RFC 3339") from None


def tls_context(options: LoginOptions) -> Any:
    """Verifies the server against --ca-file, --ca-data, the cluster CA kubectl passes in
    KUBERNETES_EXEC_INFO (provideClusterInfo), or else the system trust store."""
    import base64
    import binascii
    import ssl

    cadata = None
    encoded = options.ca_data or cluster_ca_data(options.environ)
    if encoded and not options.ca_file:
        try:
            cadata = base64.b64decode(encoded, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            raise LoginError("--ca-data (or the cluster's certificate-authority-data) is not base64 PEM") from None
    try:
        return ssl.create_default_context(cafile=options.ca_file, cadata=cadata)
    except (OSError, ssl.SSLError) as e:
        raise LoginError(f"cannot load the CA certificates: {e}") from None


def cluster_ca_data(environ: Mapping[str, str]) -> str | None:
    spec = exec_info(environ).get("spec")
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    value = cluster.get("certificate-authority-data") if isinstance(cluster, dict) else None
    return value if isinstance(value, str) and value else None


# -- the fast path: `authsvc login|logout` without click ------------------------------------

FAST_OPTIONS = {
    "login": ("--server", "--username", "--ca-file", "--ca-data", "--issuer", "--client-id", "--credential"),
    "logout": ("--server",),
}
FAST_FLAGS = {"login": ("--browser",), "logout": ()}


def run(argv: list[str]) -> int | None:
    """Run `login`/`logout` from argv (the part after `authsvc`) with the standard library only.

    Returns the exit status, or None when the arguments need the full command line (--help,
    a global option, a missing or unknown option): the caller then hands them to click,
    which prints the usual usage error or help.
    """
    command = argv[0] if argv else ""
    options = parse_options(argv[1:], FAST_OPTIONS.get(command, ()), FAST_FLAGS.get(command, ()))
    if options is None:
        return None
    browser = "--browser" in options
    if command == "login" and (
        ("--server" not in options) if not browser else ("--issuer" not in options or "--client-id" not in options)
    ):
        return None
    # click says what is wrong with a --credential value, or with one next to --browser.
    if options.get("--credential", "token") not in CREDENTIALS or (browser and "--credential" in options):
        return None
    try:
        if command == "logout":
            dropped = logout(os.environ, options.get("--server"))
            sys.stderr.write(f"removed {dropped} cached token{'' if dropped == 1 else 's'}\n")
            return 0
        if browser:
            check_issuer(options["--issuer"])
        login_options = LoginOptions(
            options.get("--server") or options["--issuer"],
            username=options.get("--username"),
            ca_file=options.get("--ca-file"),
            ca_data=options.get("--ca-data"),
            credential=options.get("--credential", "token"),
        )
        if browser:
            from authsvc.login.browser import browser_login

            credential = browser_login(login_options, options["--issuer"], options["--client-id"])
        else:
            credential = login(login_options)
    except (LoginError, OSError) as e:
        sys.stderr.write(f"error: {' '.join(str(e).split())}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    sys.stdout.write(json.dumps(credential) + "\n")
    return 0


def parse_options(args: list[str], allowed: tuple[str, ...], flags: tuple[str, ...] = ()) -> dict[str, str] | None:
    """`--name value` and `--name=value` pairs of the allowed names, and the allowed flags (value
    ""); None for anything else."""
    if not allowed:
        return None
    options: dict[str, str] = {}
    rest = iter(args)
    for arg in rest:
        if arg in flags:
            options[arg] = ""
            continue
        name, sep, value = arg.partition("=")
        if name not in allowed:
            return None
        if not sep:
            following = next(rest, None)
            if following is None:
                return None
            value = following
        options[name] = value
    return options
