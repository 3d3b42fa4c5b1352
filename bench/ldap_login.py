"""LDAP logins per second and p99, authsvc against a bare ldap3 loop, on the same real slapd.

(a) bare ldap3: one service connection and one bind connection (get_info=NONE), per login:
    search the user by uid, rebind the bind connection as the DN found, search the groups
    `(member=<dn>)`. The yardstick (~1,000-1,300/s measured on a quiet machine of this kind).
(b) authsvc: LDAPLoginBackend.authenticate (authsvc.ldap: escaped filter, pooled service and
    bind connections, result checks, failover plumbing, group resolution), every login a
    different user so that the group cache misses.
(c) authsvc with group cache hits: the same users again within ldap.group_cache_ttl: user
    search + bind, groups from the cache.
(d) full POST /login (Flask test client), each user once per round (group cache misses): (b)
    + the rate-limit read in SQLite + an RS256 token recorded in the inventory + Flask, measured
    in the same rounds as (a)-(c).

    .venv/bin/python bench/ldap_login.py [--users 1000] [--rounds 3] [--token-algorithm RS256|ES256]

With --ad the same rows (a)-(c) run against a real Active Directory DC (Samba, provisioned for
the run on 127.0.0.1:389/636 as tests/components/samba_ad.py does: the ports must be free),
over LDAPS, with `ldap.flavor: active-directory`: the bare loop searches by sAMAccountName,
binds, and resolves groups with one in-chain search; authsvc does the same through its preset
(plus the account-state attributes and the objectGUID it reads with the user).

    .venv/bin/python bench/ldap_login.py --ad [--users 100] [--rounds 3]

The ratio lines are (b)/(a), target >= 0.7, and (d)/(b), what /login adds to the directory's
work, target >= 0.8.
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
from authsvc.ldap.connections import VerifiedTls
from authsvc.login.backends import LDAPLoginBackend
from authsvc.runtime import build_runtime
from authsvc.settings import Settings
from authsvc.web.app import create_app
from pki.clock import system_clock
from tests.components import samba_ad
from tests.components.samba_ad import DEFAULT_AD_GROUPS, DEFAULT_AD_USERS, ADGroup, SambaAD, ad_user
from tests.components.slapd import GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd
from tests.ldap.fixtures import ENVIRON, ad_settings, issue_serving_certificate, ldap_service, ldap_settings

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


def bare_ad_loop(server: SambaAD, users: int) -> Callable[[int], object]:
    """What an AD login costs with ldap3 alone: search, bind, one in-chain group search, over LDAPS."""

    def connection() -> ldap3.Connection:
        tls = VerifiedTls(str(server.ca_file), server.host)
        return ldap3.Connection(ldap3.Server(server.ldaps_url, get_info=ldap3.NONE, tls=tls))

    search = connection()
    search.open()
    assert search.rebind(samba_ad.SERVICE_DN, samba_ad.SERVICE_PASSWORD)
    binder = connection()
    binder.open()

    def login(i: int) -> object:
        user = ad_user(f"user{i % users:04d}")
        search.search(
            samba_ad.PEOPLE_DN,
            f"(&(objectClass=user)(sAMAccountName={user.name}))",
            attributes=["sAMAccountName", "objectGUID"],
        )
        dn = search.response[0]["dn"]
        assert binder.rebind(dn, user.password)
        search.search(
            samba_ad.GROUPS_DN, f"(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={dn}))", attributes=["cn"]
        )
        return [e["attributes"]["cn"] for e in search.response if e.get("type") == "searchResEntry"]

    return login


def authsvc_ad_backend(server: SambaAD, users: int) -> tuple[Callable[[int], object], Callable[[], None]]:
    service = ldap_service(ad_settings(server, pool_size=1), clock=system_clock)
    backend = LDAPLoginBackend(service)

    def login(i: int) -> object:
        user = ad_user(f"user{i % users:04d}")
        verdict = backend.authenticate(user.name, user.password)
        assert verdict.identity is not None and "ad:k8s-admins" in verdict.identity.groups, verdict
        return verdict

    return login, service.cache.clear


def run_ad(users: int, rounds: int) -> dict[str, list[Row]]:
    """Rows (a)-(c) against a Samba AD DC of the run's own; its users are in `ops`, nested 3 levels."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-ad-"))
    bulk = [ad_user(f"user{i:04d}") for i in range(users)]
    groups = [
        ADGroup(g.name, (*g.members, *(u.name for u in bulk))) if g.name == "ops" else g for g in DEFAULT_AD_GROUPS
    ]
    cert, key, ca = issue_serving_certificate(workdir, ["IP:127.0.0.1"])
    rows: dict[str, list[Row]] = {"bare": [], "miss": [], "hit": []}
    with SambaAD(tls_cert=cert, tls_key=key, tls_ca=ca, users=[*DEFAULT_AD_USERS, *bulk], groups=groups) as server:
        print(
            f"Samba AD DC: provisioned in {server.timings.provision:.1f} s, accounts written in "
            f"{server.timings.seed:.1f} s, started in {server.timings.start:.1f} s",
            file=sys.stderr,
        )
        bare = bare_ad_loop(server, users)
        ours, clear_cache = authsvc_ad_backend(server, users)
        bare(0), ours(0)  # connections open
        for _ in range(rounds):
            rows["bare"].append(measure(bare, users))
            clear_cache()
            rows["miss"].append(measure(ours, users))
            rows["hit"].append(measure(ours, users))
    shutil.rmtree(workdir, ignore_errors=True)
    return rows


def http_login(server: Slapd, root: Path, algorithm: str) -> tuple[Callable[[int], object], Callable[[], None]]:
    settings = with_public_listener(  # as `authsvc init` writes it: the app's discovery needs it
        Settings.model_validate(
            {
                "ldap": ldap_settings(server, pool_size=1).model_dump(),
                "login": {"backends": ["ldap"], "max_failures_per_address": 10**9},
                "tokens": {"algorithm": algorithm},
            }
        )
    )
    initialize_home(root, Settings.model_validate({"tokens": {"algorithm": algorithm}}), environ=ENVIRON)
    home = Home.of(HomeLayout.at(root), settings, clock=system_clock, environ=ENVIRON)
    runtime = build_runtime(home)
    client = create_app(runtime).test_client()
    assert runtime.login.ldap is not None

    def login(i: int) -> object:
        uid = f"user{i % 1000:04d}"
        auth = base64.b64encode(f"{uid}:{uid}-pw".encode()).decode()
        response = client.post("/login", headers={"Authorization": f"Basic {auth}"})
        assert response.status_code == 200, response.data
        return response

    return login, runtime.login.ldap.cache.clear


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=None, help="bulk users, logins per round (1000; --ad: 100)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--token-algorithm", choices=("RS256", "ES256"), default="RS256",
        help="the home's signing key for (d) (RS256, kubeadm's and authsvc's default; ES256 signs ~20x faster)",
    )  # fmt: skip
    parser.add_argument("--ad", action="store_true", help="against a Samba AD DC (LDAPS, flavor active-directory)")
    args = parser.parse_args()
    if args.ad:
        report(run_ad(args.users or 100, args.rounds), "AD DC over LDAPS, in-chain groups")
        return
    report(run_slapd(args.users or 1000, args.rounds, args.token_algorithm), "slapd", args.token_algorithm)


def run_slapd(users: int, rounds: int, algorithm: str) -> dict[str, list[Row]]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-ldap-"))
    with Slapd(bulk_users=users) as server:
        bare = bare_loop(server)
        ours, clear_cache = authsvc_backend(server, users)
        full, clear_full_cache = http_login(server, workdir / "home", algorithm)
        bare(0), ours(0), full(0)  # connections open
        rows: dict[str, list[Row]] = {"bare": [], "miss": [], "hit": [], "http": []}
        for _ in range(rounds):  # interleaved, so that load changes hit every row alike
            rows["bare"].append(measure(bare, users))
            clear_cache()
            rows["miss"].append(measure(ours, users))
            rows["hit"].append(measure(ours, users))
            clear_full_cache()
            rows["http"].append(measure(full, users))
    shutil.rmtree(workdir, ignore_errors=True)
    return rows


def report(rows: dict[str, list[Row]], against: str, algorithm: str = "RS256") -> None:
    def best(name: str) -> Row:
        rate, p99, cpu = (statistics.median(row[i] for row in rows[name]) for i in range(3))
        return rate, p99, cpu

    labels = {
        "bare": "(a) bare ldap3 search + bind + group search",
        "miss": "(b) authsvc LDAP login, group cache miss",
        "hit": "(c) authsvc LDAP login, group cache hit",
        "http": f"(d) POST /login: (b) + rate limit + {algorithm} token",
    }
    print(f"{'against ' + against:48} {'logins/s':>10} {'p99 ms':>8} {'CPU ms/login':>13}")
    for name, label in labels.items():
        if name not in rows:
            continue
        rate, p99, cpu = best(name)
        print(f"{label:48} {rate:10.0f} {p99:8.2f} {cpu:13.2f}")
    ratio = best("miss")[0] / best("bare")[0]
    print(f"ratio (b)/(a): {ratio:.2f} (target >= 0.7); (c)/(a): {best('hit')[0] / best('bare')[0]:.2f}")
    if "http" in rows:
        print(f"ratio (d)/(b): {best('http')[0] / best('miss')[0]:.2f} (target >= 0.8)")
    print(f"client CPU per login (a)/(b): {best('bare')[2] / best('miss')[2]:.2f}")


if __name__ == "__main__":
    main()
