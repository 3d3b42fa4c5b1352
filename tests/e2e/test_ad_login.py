"""Active Directory login end to end: kubectl, `authsvc login`, /login against a real AD DC, RBAC by a nested group.

The directory is the session's Samba AD DC (tests/components/samba_ad.py, LDAPS with a
certificate authsvc issued): carol is a direct member of `ops` only, and `ops` is nested in
admins -> platform -> k8s-admins. authsvc runs with `ldap.flavor: active-directory` (in-chain
group resolution), so the token carries `ad:k8s-admins` and a ClusterRoleBinding on that group
lets carol list namespaces; bob (in `dev` only) is authenticated but forbidden, and a disabled
account gets no credential at all.

The session's `authsvc serve` is reconfigured for the module (as test_ldap_login.py does for
slapd) and put back after it: no second control plane, no second webhook.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.components import samba_ad
from tests.components.samba_ad import SambaAD
from tests.components.support import free_port
from tests.e2e.cluster import E2ECluster
from tests.e2e.harness import AuthsvcServer, eventually
from tests.e2e.test_ldap_login import exec_kubeconfig, login_env

pytestmark = pytest.mark.samba
NESTED_GROUP = "ad:k8s-admins"  # three levels above carol's direct group


@pytest.fixture(scope="module")
def ad_login_url(cluster: E2ECluster, active_directory: SambaAD) -> Iterator[str]:
    original = cluster.config_file.read_text()
    password_file = cluster.home / "ad-bind-password"
    password_file.touch(mode=0o600)
    password_file.write_text(samba_ad.SERVICE_PASSWORD)
    login_server = AuthsvcServer(
        cluster.authsvc,
        f"127.0.0.1:{free_port()}",
        cluster.path("authsvc-ad-login.log"),
        ["--insecure-no-client-cert"],
    )
    cluster.reconfigure(
        {
            "ldap": {
                "enabled": True,
                "flavor": "active-directory",
                "servers": [active_directory.ldaps_url],
                "ca_file": str(active_directory.ca_file),
                "bind_dn": samba_ad.SERVICE_DN,
                "bind_password_file": str(password_file),
                "user_base": samba_ad.PEOPLE_DN,
                "group_base": samba_ad.GROUPS_DN,
                "group_prefix": "ad:",
            },
            "login": {"backends": ["ldap"]},
            "server": {"public_url": login_server.url},
        }
    )
    try:
        login_server.start(cluster.webhook_context)
        yield f"{login_server.url}/login"
    finally:
        login_server.stop()
        cluster.write_config(original)


def test_an_ad_user_is_authorised_by_a_binding_on_a_nested_group(
    cluster: E2ECluster, ad_login_url: str, active_directory: SambaAD
) -> None:
    carol = active_directory.user("carol")
    kubeconfig = exec_kubeconfig(cluster, carol.name, "ad-carol-exec")
    assert (
        ad_login_url
        in cluster.kubectl(kubeconfig, "config", "view", "-o", "jsonpath={.users[0].user.exec.args}").stdout
    )
    cluster.bind("e2e:ad-k8s-admins-read-namespaces", group=NESTED_GROUP)
    env = login_env(cluster, "ad-carol", carol.name, carol.password)  # the kubeconfig's --username wins

    listed = eventually(lambda: cluster.kubectl(kubeconfig, "get", "namespaces", "-o", "name", env=env), lambda r: r.ok)

    assert listed.ok, listed.describe()
    assert "namespace/default" in listed.stdout
    # The webhook said who she is: the sAMAccountName, with the group three levels up.
    allowed = eventually(
        cluster.audit_records,
        lambda records: any(r["outcome"] == "allow" and r["subject"] == "carol" for r in records),
    )
    decision = next(r for r in allowed if r["outcome"] == "allow" and r["subject"] == "carol")
    assert NESTED_GROUP in decision["groups"] and "ad:ops" in decision["groups"]
    denied = cluster.kubectl(kubeconfig, "get", "secrets", "-A", env=env)
    assert not denied.ok and 'User "carol" cannot list resource "secrets"' in denied.stderr, denied.describe()


def test_an_ad_user_outside_the_nested_group_is_forbidden(
    cluster: E2ECluster, ad_login_url: str, active_directory: SambaAD
) -> None:
    bob = active_directory.user("bob")
    kubeconfig = exec_kubeconfig(cluster, bob.name, "ad-bob-exec")
    env = login_env(cluster, "ad-bob", bob.name, bob.password)

    result = cluster.kubectl(kubeconfig, "get", "namespaces", env=env)

    # Logged in (a token, so kubectl reached the API server), but no binding on his groups.
    assert not result.ok and 'User "bob" cannot list resource "namespaces"' in result.stderr, result.describe()


def test_a_disabled_ad_account_gets_no_credential(
    cluster: E2ECluster, ad_login_url: str, active_directory: SambaAD
) -> None:
    disabled = active_directory.user("disabled")
    kubeconfig = exec_kubeconfig(cluster, disabled.name, "ad-disabled-exec")
    env = login_env(cluster, "ad-disabled", disabled.name, disabled.password)

    result = cluster.kubectl(kubeconfig, "get", "namespaces", env=env)

    assert not result.ok and "getting credentials" in result.stderr, result.describe()
    # The operator learns why; kubectl's user only that the login failed.
    refused = eventually(cluster.login_records, lambda lines: any(line["subject"] == "disabled" for line in lines))
    # (kubectl may run the plugin more than once for one command: every attempt says the same.)
    assert {line["reason"] for line in refused if line["subject"] == "disabled"} == {"account disabled (AD data 533)"}
