"""LDAP logins per second and p99, authsvc against a bare ldap3 loop, on the same real slapd.

(a) bare ldap3: one service connection and one bind connection (get_info=NONE), per login:
    search the user by uid, rebind the bind connection as the DN found, search the groups
    `(member=<dn>)`. The yardstick (~1,000-1,300/s measured on a quiet machine of this kind).
(b) authsvc: LDAPLoginBackend.authenticate (authsvc.ldap: escaped filter, pooled service and
    bind connections, result checks, failover plumbing, group resolution), every login a
    different user so that the group cache misses.
(c) authsvc with group cache hits: the same users again within ldap.group_cache_ttl: user
    search + bind, groups from the cache.
(d) full POST /login (Flask test client), each user once (group cache misses): (b) + the
    rate-limit read in SQLite + an RS256 token recorded in the inventory + Flask.

    .venv/bin/python bench/ldap_login.py [--users 1000] [--rounds 3]

The ratio line is (b)/(a), the target is >= 0.7.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ldap3

from authsvc.home.layout import HomeLayout
from authsvc.home.opened import Home
from authsvc.init.steps import initialize_home, with_public_listener
from authsvc.login.backends import LDAPLoginBackend
from authsvc.runtime import build_runtime
from authsvc.settings import Settings
from authsvc.web.app import create_app
from pki.clock import system_clock
from tests.components.slapd import GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd
from tests.ldap.fixtures import ENVIRON, ldap_service, ldap_settings

Row = tuple[float, float, float]  # logins per second, p99 ms, this process's CPU ms per login


def measure(login: Callable[[int], object], count: int) -> Row:
    """Over `count` logins: wall-clock rate, p99 latency, and client CPU time per login (the
    last is what authsvc adds on top of ldap3, and barely moves when the machine is busy)."""
    latencies = []
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        t0 = time.perf_counter()
        login(i)
        latencies.append(time.perf_counter() - t0)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return count / elapsed, statistics.quantiles(latencies, n=100)[98] * 1000, cpu / count * 1000


def bare_loop(server: Slapd) -> Callable[[int], object]:
    search = ldap3.Connection(
        ldap3.Server(server.url, get_info=ldap3.NONE), SERVICE_DN, SERVICE_PASSWORD, auto_bind=True
    )
    binder = ldap3.Connection(ldap3.Server(server.url, get_info=ldap3.NONE))
    binder.open()

    def login(i: int) -> object:
        uid = f"user{i % 1000:04d}"
        search.search(PEOPLE_DN, f"(&(objectClass=inetOrgPerson)(uid={uid}))", attributes=["uid", "entryUUID"])
        dn = search.response[0]["dn"]
        assert binder.rebind(dn, f"{uid}-pw")
        search.search(GROUPS_DN, f"(&(objectClass=groupOfNames)(member={dn}))", attributes=["cn"])
        return [e["attributes"]["cn"] for e in search.response]

    return login


def authsvc_backend(server: Slapd, users: int) -> tuple[Callable[[int], object], Callable[[], None]]:
    service = ldap_service(ldap_settings(server, pool_size=1), clock=system_clock)
    backend = LDAPLoginBackend(service)

    def login(i: int) -> object:
        uid = f"user{i % users:04d}"
        verdict = backend.authenticate(uid, f"{uid}-pw")
        assert verdict.identity is not None
        return verdict

    return login, service.cache.clear


def http_login(server: Slapd, root: Path) -> Callable[[int], object]:
    settings = with_public_listener(  # as `authsvc init` writes it: the app's discovery needs it
        Settings.model_validate(
            {
                "ldap": ldap_settings(server, pool_size=1).model_dump(),
                "login": {"backends": ["ldap"], "max_failures_per_address": 10**9},
            }
        )
    )
    initialize_home(root, Settings(), environ=ENVIRON)
    home = Home.of(HomeLayout.at(root), settings, clock=system_clock, environ=ENVIRON)
    client = create_app(build_runtime(home)).test_client()

    def login(i: int) -> object:
        uid = f"user{i % 1000:04d}"
        auth = base64.b64encode(f"{uid}:{uid}-pw".encode()).decode()
        response = client.post("/login", headers={"Authorization": f"Basic {auth}"})
        assert response.status_code == 200, response.data
        return response

    return login


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000, help="bulk users (logins per round)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-ldap-"))
    with Slapd(bulk_users=args.users) as server:
        bare = bare_loop(server)
        ours, clear_cache = authsvc_backend(server, args.users)
        bare(0), ours(0)  # connections open
        rows: dict[str, list[Row]] = {"bare": [], "miss": [], "hit": []}
        for _ in range(args.rounds):  # interleaved, so that load changes hit every row alike
            rows["bare"].append(measure(bare, args.users))
            clear_cache()
            rows["miss"].append(measure(ours, args.users))
            rows["hit"].append(measure(ours, args.users))
        full = http_login(server, workdir / "home")
        full(0)
        rows["http"] = [measure(full, args.users)]
    shutil.rmtree(workdir, ignore_errors=True)

    def best(name: str) -> Row:
        rate, p99, cpu = (statistics.median(row[i] for row in rows[name]) for i in range(3))
        return rate, p99, cpu

    labels = {
        "bare": "(a) bare ldap3 search + bind + group search",
        "miss": "(b) authsvc LDAP login, group cache miss",
        "hit": "(c) authsvc LDAP login, group cache hit",
        "http": "(d) POST /login: (b) + rate limit + RS256 token",
    }
    print(f"{'':48} {'logins/s':>10} {'p99 ms':>8} {'CPU ms/login':>13}")
    for name, label in labels.items():
        rate, p99, cpu = best(name)
        print(f"{label:48} {rate:10.0f} {p99:8.2f} {cpu:13.2f}")
    ratio = best("miss")[0] / best("bare")[0]
    print(f"ratio (b)/(a): {ratio:.2f} (target >= 0.7); (c)/(a): {best('hit')[0] / best('bare')[0]:.2f}")
    print(f"client CPU per login (a)/(b): {best('bare')[2] / best('miss')[2]:.2f}")


if __name__ == "__main__":
    main()
