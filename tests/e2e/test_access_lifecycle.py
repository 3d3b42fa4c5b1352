"""Issue 18 on the real API server: who has access, `access revoke` everywhere, `access restore`.

alice and bob (both in the real slapd) each get a certificate kubeconfig, a token kubeconfig,
an exec-cert kubeconfig (a short-lived certificate per login) and an LDAP login (exec mode),
and a grant of a ClusterRole the test creates (configmaps in one namespace); alice also has a
RoleBinding authsvc does not manage. After `authsvc access revoke alice`:

- her token kubeconfig and her LDAP login's token are Unauthorized within tokens.cache_refresh
  plus kube-apiserver's own 10 s success cache (the webhook's result cache is on here, 30 s:
  every cached answer is checked again), measured and printed;
- her certificate still authenticates (the API server never reads a CRL) but is Forbidden:
  the grant is gone; the binding authsvc does not manage is listed, and left;
- her exec-cert credential keeps working only as long as its certificate (minutes), Forbidden
  meanwhile; renewing it takes a login, which is refused;
- `issue alice` and her LDAP login are refused; bob (the twin) keeps every credential;
- `access restore alice` writes the grant back, and new credentials work.

The audit trail has a line per action, in order, and none of the secrets the test used.
The API server's webhook cache is off (--authentication-token-webhook-cache-ttl=0s).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from tests.components.slapd import ALICE, BOB
from tests.e2e.cluster import E2ECluster
from tests.e2e.directory import directory_logins
from tests.e2e.harness import AUTHSVC, Result, eventually, run

NAMESPACE = "e2e-access"
ROLE = "e2e:access-lifecycle"  # get/list configmaps: nothing else in the suite grants that
LEGACY = "legacy-alice"  # a RoleBinding authsvc does not manage
UNAUTHORIZED, FORBIDDEN = "(Unauthorized)", "(Forbidden)"
# kube-apiserver's success cache (10 s, no flag) + tokens.cache_refresh (1 s) + margin.
REFUSAL_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def access_cluster(cluster: E2ECluster) -> Iterator[E2ECluster]:
    """slapd for /login, the webhook's result cache on (30 s), the role and the namespace; undone after."""
    # The result cache on, as by default: a revocation must not wait for it.
    with directory_logins(cluster, {"authn": {"cache_size": 10000, "cache_ttl": "30s"}}):
        cluster.admin("create", "namespace", NAMESPACE)
        cluster.admin("create", "clusterrole", ROLE, "--verb=get,list", "--resource=configmaps")
        cluster.admin("create", "role", "e2e:pod-reader", "-n", NAMESPACE, "--verb=get,list", "--resource=pods")
        cluster.admin("create", "rolebinding", LEGACY, "-n", NAMESPACE, "--role=e2e:pod-reader", "--user=alice")
        try:
            yield cluster
        finally:
            cluster.authsvc("access", "restore", "alice", *connected(cluster))  # if a test stopped halfway


def connected(cluster: E2ECluster) -> tuple[str, str]:
    return ("--kubeconfig", str(cluster.admin_kubeconfig))


def login_env(cluster: E2ECluster, name: str, user: str, password: str) -> dict[str, str]:
    """Credentials for `authsvc login` (kubectl starts it) and a plugin cache of this case's own."""
    cache = cluster.path(f"access-cache-{name}")
    cache.mkdir(mode=0o700, exist_ok=True)
    return {"AUTHSVC_USERNAME": user, "AUTHSVC_PASSWORD": password, "XDG_CACHE_HOME": str(cache)}


class Person:
    """One person's four kubeconfigs and the environment their exec plugins run in."""

    def __init__(self, cluster: E2ECluster, user: str, password: str) -> None:
        self.cluster, self.user, self.password = cluster, user, password
        self.cert = self._issue("cert", "-g", "e2e-people")
        self.token = self._issue("token", "--mode", "token", "-g", "e2e-people")
        self.exec_cert = self._issue("exec-cert", "--mode", "exec-cert")
        self.ldap = self._issue("ldap", "--mode", "exec")
        self.exec_cert_env = login_env(cluster, f"{user}-exec-cert", user, password)
        self.ldap_env = login_env(cluster, f"{user}-ldap", user, password)

    def _issue(self, name: str, *args: str) -> Path:
        out = self.cluster.path(f"access-{self.user}-{name}.kubeconfig")
        self.cluster.authsvc.ok("issue", self.user, *args, "-o", str(out))
        return out

    def kubeconfigs(self) -> dict[str, tuple[Path, dict[str, str] | None]]:
        return {
            "cert": (self.cert, None),
            "token": (self.token, None),
            "exec-cert": (self.exec_cert, self.exec_cert_env),
            "ldap": (self.ldap, self.ldap_env),
        }

    def configmaps(self, which: str) -> Result:
        """What the grant gives (revoke removes it)."""
        kubeconfig, env = self.kubeconfigs()[which]
        return self.cluster.kubectl(kubeconfig, "get", "configmaps", "-n", NAMESPACE, env=env)

    def pods(self, which: str) -> Result:
        """What alice's binding authsvc does not manage gives (revoke leaves it): shows authentication alone."""
        kubeconfig, env = self.kubeconfigs()[which]
        return self.cluster.kubectl(kubeconfig, "get", "pods", "-n", NAMESPACE, env=env)

    def secrets(self) -> list[str]:
        """Every secret this person's kubeconfigs and plugin caches hold (the audit trail must hold none)."""
        found = [self.password]
        for kubeconfig in (self.cert, self.token):
            user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
            for field in ("token", "client-key-data"):
                if field in user:
                    found += (
                        [user[field], base64.b64decode(user[field]).decode()] if field != "token" else [user[field]]
                    )
        for env in (self.exec_cert_env, self.ldap_env):
            cache = Path(env["XDG_CACHE_HOME"]) / "authsvc" / "tokens.json"
            for server in json.loads(cache.read_text())["servers"].values():
                found += [entry["token"] for entry in server["tokens"].values()]
                found += [entry["key"] for entry in server["certificates"].values()]
        return found


def access_list(cluster: E2ECluster, user: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(cluster.authsvc.ok("access", "list", user, "-o", "json", *connected(cluster)))
    return document


def audit_lines(cluster: E2ECluster) -> list[dict[str, Any]]:
    return [json.loads(line) for line in cluster.audit_log.read_text().splitlines()]


def test_revoke_a_person_everywhere_then_restore(access_cluster: E2ECluster) -> None:
    cluster = access_cluster
    started = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    for user in ("alice", "bob"):
        cluster.authsvc.ok("access", "grant", "--user", user, "--clusterrole", ROLE, *connected(cluster))
    alice, bob = Person(cluster, "alice", ALICE.password), Person(cluster, "bob", BOB.password)
    for person in (alice, bob):
        for which in person.kubeconfigs():
            works = eventually(lambda p=person, w=which: p.configmaps(w), lambda r: r.ok)  # type: ignore[misc]
            assert works.ok, (person.user, which, works.describe())
    for which in alice.kubeconfigs():
        assert alice.pods(which).ok, which

    # -- who has access ------------------------------------------------------------------------
    before = access_list(cluster, "alice")
    assert before["revoked"] is None
    certificates = {c["requester"].split(":")[0]: c for c in before["certificates"]}
    assert certificates["cli"]["status"] == "valid" and certificates["login"]["status"] == "valid"
    assert {(t["source"], t["status"]) for t in before["tokens"]} == {("cli", "valid"), ("ldap", "valid")}
    assert before["lastLogin"]["backend"] == "ldap" and before["directory"] == {"groups": ["dev"]}
    bindings = {(b["kind"], b["name"]): b for b in before["bindings"]}
    assert bindings[("ClusterRoleBinding", f"authsvc:user:alice:clusterrole:{ROLE}")]["managedByAuthsvc"] is True
    assert bindings[("RoleBinding", LEGACY)]["managedByAuthsvc"] is False
    exec_cert = x509.load_pem_x509_certificate(_cached_certificate(alice).encode())
    lifetime = exec_cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(0) < lifetime <= dt.timedelta(minutes=15)  # minutes, not a year

    # -- bad input changes nothing -------------------------------------------------------------
    trail_size = len(audit_lines(cluster))
    unknown = cluster.authsvc("access", "revoke", "zed", *connected(cluster))
    assert unknown.code == 1 and "no record of user 'zed'" in unknown.stderr, unknown.describe()
    dry = cluster.authsvc.ok("access", "revoke", "alice", "--dry-run", *connected(cluster))
    assert dry.startswith("dry run, nothing changed") and f"RoleBinding {NAMESPACE}/{LEGACY}" in dry
    assert len(audit_lines(cluster)) == trail_size and access_list(cluster, "alice") == before
    assert alice.configmaps("token").ok

    # -- revoke --------------------------------------------------------------------------------
    revoked_at = time.monotonic()
    report = cluster.authsvc.ok("access", "revoke", "alice", "--reason", "e2e: left", *connected(cluster))
    assert "the API server does not check revocation" in report and "done: 1 removed" in report, report
    assert "1 not managed by authsvc still name alice" in report
    assert f"`kubectl delete rolebinding {LEGACY} -n {NAMESPACE}` removes it" in report
    assert "short-lived, from a login: stops working at" in report

    token = eventually(lambda: alice.pods("token"), lambda r: not r.ok, timeout=REFUSAL_TIMEOUT)
    delay = time.monotonic() - revoked_at
    print(f"\nrevoked token refused by kube-apiserver {delay:.1f} s after `access revoke` returned "
          f"(webhook cache 30 s, tokens.cache_refresh 1 s, API server webhook cache 0 s)")  # fmt: skip
    assert UNAUTHORIZED in token.stderr, token.describe()
    assert delay < REFUSAL_TIMEOUT
    ldap = eventually(lambda: alice.pods("ldap"), lambda r: not r.ok, timeout=REFUSAL_TIMEOUT)
    assert UNAUTHORIZED in ldap.stderr, ldap.describe()  # the login's cached token: revoked and banned
    cert = eventually(lambda: alice.configmaps("cert"), lambda r: not r.ok)
    assert FORBIDDEN in cert.stderr and 'User "alice"' in cert.stderr, cert.describe()  # authenticated, no grant
    still = alice.pods("cert")
    assert still.ok, still.describe()  # the binding authsvc does not manage was left, as reported
    exec_cert_now = eventually(lambda: alice.configmaps("exec-cert"), lambda r: not r.ok)
    assert FORBIDDEN in exec_cert_now.stderr, exec_cert_now.describe()  # until its certificate ends
    plugin = [str(AUTHSVC), "login", "--server", f"{cluster.public_url}/login", "--credential", "certificate",
              "--ca-file", str(cluster.ca_file), "--username", "alice"]  # fmt: skip
    env = {**cluster.kubectl.env, **alice.exec_cert_env}
    cached = run(plugin, env={**env, "AUTHSVC_PASSWORD": ""})
    assert cached.ok, cached.describe()  # the certificate it holds is served until its end...
    at_its_end = f"--now={exec_cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
    renewal = run([plugin[0], at_its_end, *plugin[1:]], env=env)
    assert renewal.code == 1 and "403" in renewal.stderr and "is revoked" in renewal.stderr, renewal.describe()
    fresh = login_env(cluster, "alice-after", "alice", ALICE.password)
    refused_login = cluster.kubectl(alice.ldap, "get", "configmaps", "-n", NAMESPACE, env=fresh)
    assert not refused_login.ok and "getting credentials" in refused_login.stderr, refused_login.describe()
    refused_cert = cluster.kubectl(alice.exec_cert, "get", "configmaps", "-n", NAMESPACE,
                                   env={**alice.exec_cert_env, "XDG_CACHE_HOME": fresh["XDG_CACHE_HOME"]})  # fmt: skip
    assert not refused_cert.ok and "getting credentials" in refused_cert.stderr, refused_cert.describe()
    issue = cluster.authsvc("issue", "alice", "-o", str(cluster.path("access-alice-again.kubeconfig")))
    assert issue.code == 1 and "is revoked" in issue.stderr, issue.describe()
    for which in bob.kubeconfigs():  # the twin: bob keeps every credential
        assert bob.configmaps(which).ok, (which, bob.configmaps(which).describe())

    after = access_list(cluster, "alice")
    assert after["revoked"]["bannedBy"] and after["revoked"]["reason"] == "e2e: left"
    assert {c["status"] for c in after["certificates"]} == {"revoked"}
    assert all(c["revocationComment"] == "e2e: left" and c["revokedBy"] for c in after["certificates"])
    assert {t["status"] for t in after["tokens"]} == {"revoked"}
    assert [(b["kind"], b["name"]) for b in after["bindings"]] == [("RoleBinding", LEGACY)]

    # -- restore -------------------------------------------------------------------------------
    restored = cluster.authsvc.ok("access", "restore", "alice", *connected(cluster))
    assert f"clusterrolebinding.rbac.authorization.k8s.io/authsvc:user:alice:clusterrole:{ROLE} created" in restored
    again = Path(cluster.path("access-alice-restored.kubeconfig"))
    cluster.authsvc.ok("issue", "alice", "-o", str(again))
    works = eventually(lambda: cluster.kubectl(again, "get", "configmaps", "-n", NAMESPACE), lambda r: r.ok)
    assert works.ok, works.describe()
    relogin = eventually(lambda: cluster.kubectl(alice.ldap, "get", "configmaps", "-n", NAMESPACE, env=fresh),
                         lambda r: r.ok)  # fmt: skip
    assert relogin.ok, relogin.describe()
    assert UNAUTHORIZED in alice.pods("token").stderr  # a revoked credential stays revoked

    # -- the audit trail -------------------------------------------------------------------------
    text = cluster.audit_log.read_text()
    lines = [line for line in audit_lines(cluster) if line["time"] >= started]
    mine = [(line["action"], line["outcome"]) for line in lines
            if line["subject"] == "alice" and line["action"] != "tokenreview"]  # fmt: skip
    expected = [
        ("grant.create", "ok"), ("cert.issue", "ok"), ("token.issue", "ok"),  # access grant, issue, issue --mode token
        ("kubeconfig.issue", "ok"), ("kubeconfig.issue", "ok"),  # exec-cert and exec kubeconfigs: nothing minted yet
        ("cert.issue", "ok"), ("login", "ok"),  # the exec-cert login
        ("token.issue", "ok"), ("login", "ok"),  # the LDAP login
        ("access.ban", "ok"), ("token.revoke", "ok"), ("token.revoke", "ok"), ("cert.revoke", "ok"),
        ("cert.revoke", "ok"), ("grant.delete", "ok"),
        ("login", "refused"),  # the plugin's renewal, then kubectl's fresh logins (a plugin may be run again)
        ("access.restore", "ok"), ("grant.create", "ok"), ("cert.issue", "ok"), ("token.issue", "ok"), ("login", "ok"),
    ]  # fmt: skip
    collapsed = [entry for i, entry in enumerate(mine) if i == 0 or entry != mine[i - 1] or entry[0] != "login"]
    assert collapsed == expected, mine
    refusal = next(line for line in lines if line["action"] == "login" and line["outcome"] == "refused")
    assert refusal["backend"] == "ldap" and refusal["client"] and "revoked" in refusal["reason"]
    reviews = [line for line in lines if line["action"] == "tokenreview" and line["subject"] == "alice"]
    assert any(line["outcome"] == "deny" and line["reason"] for line in reviews)
    for secret in alice.secrets() + bob.secrets():
        assert secret not in text


def _cached_certificate(person: Person) -> str:
    cache = Path(person.exec_cert_env["XDG_CACHE_HOME"]) / "authsvc" / "tokens.json"
    [server] = json.loads(cache.read_text())["servers"].values()
    certificate: str = server["certificates"][person.user]["certificate"]
    return certificate
