"""Client certificates: kubeconfigs from `authsvc issue` (cert mode) and init's admin.conf.

kube-apiserver checks them against --client-ca-file (authsvc's cluster CA) and reads CN as the
user and O as the groups; RBAC then decides. Each success has its twin: a user with no binding
is Forbidden (authenticated, not authorized), a certificate from another CA is Unauthorized.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pki.ca import CertificateAuthority
from pki.clock import system_clock
from pki.keys import generate_private_key
from pki.names import user_subject
from pki.profiles import CLIENT
from pki.store import write_certificates, write_private_key
from tests.components.kube_apiserver import write_kubeconfig
from tests.e2e.cluster import E2ECluster

UNAUTHORIZED = "(Unauthorized)"


def issue_cert_kubeconfig(cluster: E2ECluster, user: str, *groups: str) -> Path:
    out = cluster.path(f"{user}.kubeconfig")
    group_flags = [flag for group in groups for flag in ("-g", group)]
    cluster.authsvc.ok("issue", user, *group_flags, "-o", str(out))
    return out


def test_issued_cert_lists_namespaces_once_its_group_is_bound(cluster: E2ECluster) -> None:
    alice = issue_cert_kubeconfig(cluster, "alice", "dev")
    unbound = cluster.kubectl(alice, "get", "namespaces")
    assert not unbound.ok and 'User "alice" cannot list resource "namespaces"' in unbound.stderr, unbound.describe()

    cluster.bind("e2e:dev-reads-namespaces", group="dev")

    listed = cluster.can_list_namespaces(alice)
    assert listed.ok, listed.describe()
    assert "namespace/default" in listed.stdout.split()
    # The group grants namespaces only: whatever else alice asks for names her as the user.
    secrets = cluster.kubectl(alice, "get", "secrets", "-A")
    assert not secrets.ok and 'User "alice" cannot list resource "secrets"' in secrets.stderr, secrets.describe()


def test_user_without_binding_is_authenticated_but_forbidden(cluster: E2ECluster) -> None:
    bob = issue_cert_kubeconfig(cluster, "bob", "qa")

    result = cluster.kubectl(bob, "get", "namespaces")

    assert not result.ok
    assert "(Forbidden)" in result.stderr and 'User "bob" cannot list' in result.stderr, result.describe()


def test_cert_from_another_ca_is_unauthorized(cluster: E2ECluster) -> None:
    now = system_clock()
    other_ca = CertificateAuthority.create_root("kubernetes", now=now, ttl=dt.timedelta(days=1))
    key = generate_private_key()
    # Same subject as a bound user's: only the issuer differs.
    cert = other_ca.issue(subject=user_subject("alice", ["dev"]), public_key=key.public_key(), profile=CLIENT, now=now)
    cert_file = write_certificates(cluster.path("forged-alice.crt"), [cert])
    key_file = write_private_key(cluster.path("forged-alice.key"), key)
    forged = write_kubeconfig(
        cluster.path("forged-alice.kubeconfig"), cluster.server, cluster.ca_file, cert_file, key_file
    )
    cluster.bind("e2e:forged-alice-check", user="alice")

    result = cluster.kubectl(forged, "get", "namespaces")

    assert not result.ok and UNAUTHORIZED in result.stderr, result.describe()


def test_init_admin_conf_is_cluster_admin(cluster: E2ECluster) -> None:
    assert cluster.admin("auth", "can-i", "*", "*", "--all-namespaces").strip() == "yes"
    cluster.admin("create", "namespace", "e2e-admin-made")
    cluster.admin("create", "secret", "generic", "s", "-n", "e2e-admin-made", "--from-literal=k=v")
    assert cluster.admin("get", "secrets", "-n", "e2e-admin-made", "-o", "name").split() == ["secret/s"]


def test_admin_name_without_the_admin_group_is_forbidden(cluster: E2ECluster) -> None:
    # admin.conf's power is the group kubeadm:cluster-admins (bound by the fixture as kubeadm
    # does), not the user name: the same CN without that O may do nothing.
    impostor = issue_cert_kubeconfig(cluster, "kubernetes-admin")

    result = cluster.kubectl(impostor, "get", "secrets", "-A")

    assert not result.ok, result.describe()
    assert 'User "kubernetes-admin" cannot list resource "secrets"' in result.stderr, result.describe()
