"""`authsvc proxy` in front of the session's real kube-apiserver 1.20.

The control plane runs with kubeadm's request-header flags (cluster.py: the front-proxy CA as
--requestheader-client-ca-file, `front-proxy-client` allowed, X-Remote-* headers), so the
proxy in request-header mode works with init's front-proxy client certificate as it is. The
impersonation proxy forwards as a service account bound to `impersonate`; its twin, an account
without that binding, is Forbidden.

What arrives is checked where the API server says it: RBAC's denials name the user, and the
API server's own audit log (Metadata level) records `user` (and `impersonatedUser`).
Each person's kubeconfig comes from `authsvc issue ... --via-proxy URL`.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml

from tests.components.kube_apiserver import free_ports
from tests.components.slapd import CAROL
from tests.e2e.cluster import E2ECluster
from tests.e2e.harness import AuthsvcProxy, eventually
from tests.e2e.test_ldap_login import LDAP_GROUP, login_env
from tests.e2e.test_ldap_login import login_url as login_url  # the module's slapd + /login fixture

NAMESPACE = "e2e-proxy"
TEAM = "proxy-team"  # group bound to read namespaces and pods in NAMESPACE
READER_ROLE = "e2e:proxy-reader"


def start_proxy(cluster: E2ECluster, name: str, *extra: str) -> AuthsvcProxy:
    port, metrics_port = free_ports(2)
    proxy = AuthsvcProxy(cluster.authsvc, port, metrics_port, cluster.path(f"{name}.log"), extra)
    proxy.start()
    return proxy


@pytest.fixture(scope="module")
def rbac(cluster: E2ECluster) -> None:
    cluster.admin("create", "namespace", NAMESPACE)
    cluster.admin(
        "create", "clusterrole", READER_ROLE, "--verb=get,list,watch", "--resource=namespaces,pods,configmaps"
    )
    cluster.admin(
        "create", "clusterrolebinding", "e2e:proxy-team-reads", f"--clusterrole={READER_ROLE}", f"--group={TEAM}"
    )
    # Pods need their namespace's `default` account to exist (no controller-manager makes it).
    cluster.admin("create", "serviceaccount", "default", "-n", NAMESPACE)


@pytest.fixture(scope="module")
def proxy(cluster: E2ECluster, rbac: None) -> Iterator[AuthsvcProxy]:
    running = start_proxy(cluster, "proxy-request-header")
    try:
        yield running
    finally:
        running.stop()


def issue(cluster: E2ECluster, proxy: AuthsvcProxy, user: str, *args: str) -> Path:
    out = cluster.path(f"{user}-via-{proxy.port}.kubeconfig")
    cluster.authsvc.ok("issue", user, *args, "--via-proxy", proxy.url, "-o", str(out), "--force")
    return out


def apiserver_users(cluster: E2ECluster, uri_part: str) -> list[tuple[str, str | None]]:
    """(user, impersonated user) of the API server's audit events whose requestURI has `uri_part`."""
    found = []
    for line in cluster.apiserver_audit_log.read_text().splitlines():
        event = json.loads(line)
        if uri_part in event.get("requestURI", ""):
            impersonated = (event.get("impersonatedUser") or {}).get("username")
            found.append((event["user"]["username"], impersonated))
    return found


def can_i_list(cluster: E2ECluster, kubeconfig: Path, env: dict[str, str] | None = None) -> str:
    result = cluster.kubectl(kubeconfig, "auth", "can-i", "--list", "-n", NAMESPACE, env=env)
    assert result.ok, result.describe()
    return result.stdout


def assert_reaches_as(cluster: E2ECluster, kubeconfig: Path, user: str, env: dict[str, str] | None = None) -> None:
    """RBAC-bound get works, can-i --list shows the team's rules, a denial names `user`."""
    listed = eventually(
        lambda: cluster.kubectl(kubeconfig, "get", "pods", "-n", NAMESPACE, "-o", "name", env=env), lambda r: r.ok
    )
    assert listed.ok, listed.describe()
    rules = can_i_list(cluster, kubeconfig, env)
    assert "pods" in rules and "configmaps" in rules, rules
    denied = cluster.kubectl(kubeconfig, "get", "secrets", "-n", NAMESPACE, env=env)
    assert not denied.ok and f'User "{user}" cannot list resource "secrets"' in denied.stderr, denied.describe()


# ---------------------------------------------------------------- who arrives


def test_a_user_token_reaches_the_api_server_as_its_user(cluster: E2ECluster, proxy: AuthsvcProxy) -> None:
    kubeconfig = issue(cluster, proxy, "dana", "--mode", "token", "-g", TEAM)

    assert_reaches_as(cluster, kubeconfig, "dana")
    assert ("dana", None) in apiserver_users(cluster, f"/api/v1/namespaces/{NAMESPACE}/secrets")
    lines = [
        line for line in cluster.audit_lines() if line.get("action") == "proxy.request" and line["subject"] == "dana"
    ]
    assert any(line["verb"] == "list" and line["path"] == f"/api/v1/namespaces/{NAMESPACE}/pods" for line in lines)


def test_a_client_certificate_reaches_the_api_server_as_cn_and_o(cluster: E2ECluster, proxy: AuthsvcProxy) -> None:
    kubeconfig = issue(cluster, proxy, "erin", "-g", TEAM)

    assert_reaches_as(cluster, kubeconfig, "erin")


def test_a_user_outside_the_team_is_forbidden_as_herself(cluster: E2ECluster, proxy: AuthsvcProxy) -> None:
    kubeconfig = issue(cluster, proxy, "fay", "--mode", "token", "-g", "other-team")

    denied = cluster.kubectl(kubeconfig, "get", "pods", "-n", NAMESPACE)

    assert not denied.ok and 'User "fay" cannot list resource "pods"' in denied.stderr, denied.describe()


def test_no_or_a_wrong_credential_is_401_and_never_reaches_the_api_server(
    cluster: E2ECluster, proxy: AuthsvcProxy
) -> None:
    canary = "/api/v1/namespaces/proxy-canary-401/pods"
    ca = str(cluster.ca_file)

    anonymous = requests.get(proxy.url + canary, verify=ca, timeout=10)
    wrong = requests.get(proxy.url + canary, headers={"Authorization": "Bearer nobody-knows-me"}, verify=ca, timeout=10)
    kubeconfig = cluster.path("wrong-token-via-proxy.kubeconfig")
    config = yaml.safe_load(issue(cluster, proxy, "gus", "--mode", "token").read_text())
    config["users"][0]["user"]["token"] = "a-token-nobody-issued"
    kubeconfig.write_text(yaml.safe_dump(config))
    by_kubectl = cluster.kubectl(kubeconfig, "get", "pods", "-n", NAMESPACE)

    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert anonymous.json()["reason"] == "Unauthorized"
    assert not by_kubectl.ok and "(Unauthorized)" in by_kubectl.stderr, by_kubectl.describe()
    assert apiserver_users(cluster, "proxy-canary-401") == []


def test_identity_headers_from_the_client_change_nothing(cluster: E2ECluster, proxy: AuthsvcProxy) -> None:
    kubeconfig = issue(cluster, proxy, "hal", "--mode", "token", "-g", TEAM)
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    hostile = {
        "Authorization": f"Bearer {token}",
        "X-Remote-User": "admin",
        "X-Remote-Group": "system:masters",
        "Impersonate-User": "admin",
        "Impersonate-Group": "system:masters",
    }

    answer = requests.get(
        proxy.url + "/api/v1/namespaces/kube-system/secrets", headers=hostile, verify=str(cluster.ca_file), timeout=10
    )

    assert answer.status_code == 403, answer.text
    assert 'User "hal" cannot list resource "secrets"' in answer.json()["message"]
    assert ("hal", None) in apiserver_users(cluster, "/api/v1/namespaces/kube-system/secrets")


# ---------------------------------------------------------------- fidelity


def test_get_pods_watch_streams_through_the_proxy(cluster: E2ECluster, proxy: AuthsvcProxy) -> None:
    kubeconfig = issue(cluster, proxy, "ivy", "--mode", "token", "-g", TEAM)
    eventually(lambda: cluster.kubectl(kubeconfig, "get", "pods", "-n", NAMESPACE), lambda r: r.ok)
    command = [str(cluster.kubectl.binary), f"--kubeconfig={kubeconfig}", "get", "pods", "-n", NAMESPACE, "-w"]
    command += ["-o", "name"]
    watcher = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(cluster.kubectl.env)
    )
    try:
        # Pods made once the watch is open (its audit line written) can only come as its events.
        opened = eventually(
            cluster.audit_lines,
            lambda lines: any(line.get("subject") == "ivy" and line.get("verb") == "watch" for line in lines),
        )
        assert any(line.get("subject") == "ivy" and line.get("verb") == "watch" for line in opened)
        names = [f"watched-{n}" for n in range(3)]
        for name in names:
            _create_pod(cluster, name)
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while len(seen) < len(names) and time.monotonic() < deadline:
            line = watcher.stdout.readline() if watcher.stdout else ""
            if not line:
                break
            if line.strip().removeprefix("pod/") in names and line.strip() not in seen:
                seen.append(line.strip())
        assert sorted(seen) == [f"pod/{n}" for n in names], seen
        assert watcher.poll() is None  # still watching: the events came while the answer was open
    finally:
        watcher.terminate()
        watcher.wait(10)


def _pod(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"automountServiceAccountToken": False, "containers": [{"name": "web", "image": "web:1"}]},
        }
    )


def _create_pod(cluster: E2ECluster, name: str, node: str | None = None) -> None:
    manifest = yaml.safe_load(_pod(name))
    if node:
        manifest["spec"]["nodeName"] = node
    path = cluster.path(f"pod-{name}.yaml")
    path.write_text(yaml.safe_dump(manifest))
    cluster.admin("create", "-f", str(path))


def test_a_list_of_5000_objects_arrives_intact(cluster: E2ECluster, proxy: AuthsvcProxy) -> None:
    namespace = "e2e-proxy-big"
    cluster.admin("create", "namespace", namespace)
    _create_configmaps(cluster, namespace, 5000)
    try:
        kubeconfig = issue(cluster, proxy, "jo", "--mode", "token", "-g", TEAM)
        direct = cluster.admin("get", "configmaps", "-n", namespace, "-o", "name", "--chunk-size=0").split()
        paged = cluster.kubectl(kubeconfig, "get", "configmaps", "-n", namespace, "-o", "name")
        whole = cluster.kubectl(kubeconfig, "get", "configmaps", "-n", namespace, "-o", "json", "--chunk-size=0")

        assert paged.ok and whole.ok, (paged.describe(), whole.describe())
        made = {f"configmap/big-{n:04d}" for n in range(5000)}
        assert set(direct) >= made
        assert paged.stdout.split() == direct
        items = json.loads(whole.stdout)["items"]
        assert [f"configmap/{item['metadata']['name']}" for item in items] == direct
        assert all(
            item["data"] == {"n": item["metadata"]["name"][4:]}
            for item in items
            if item["metadata"]["name"].startswith("big-")
        )
    finally:
        cluster.admin("delete", "configmaps", "--all", "-n", namespace, "--wait=false")


def _create_configmaps(cluster: E2ECluster, namespace: str, count: int) -> None:
    """`count` ConfigMaps through the API, 8 at a time (kubectl would send them one by one)."""
    user = yaml.safe_load(cluster.super_admin_kubeconfig.read_text())["users"][0]["user"]
    import base64

    cert, key = cluster.path("big-admin.crt"), cluster.path("big-admin.key")
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.touch(mode=0o600)
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    session = requests.Session()
    session.cert = (str(cert), str(key))
    ca = str(cluster.ca_file)  # per request: a session's `verify` loses to REQUESTS_CA_BUNDLE
    url = f"{cluster.server}/api/v1/namespaces/{namespace}/configmaps"

    def create(n: int) -> int:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"big-{n:04d}"},
            "data": {"n": f"{n:04d}"},
        }
        return session.post(url, json=body, verify=ca, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(create, range(count)))
    assert set(codes) == {201}, sorted(set(codes))


# ---------------------------------------------------------------- impersonation mode


def _impersonator(cluster: E2ECluster, name: str, *, bound: bool) -> Path:
    cluster.admin("create", "serviceaccount", name, "-n", NAMESPACE)
    uid = cluster.admin("get", "serviceaccount", name, "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}")
    if bound:
        cluster.admin("create", "clusterrolebinding", f"e2e:{name}", "--clusterrole=e2e:impersonator",
                      f"--serviceaccount={NAMESPACE}:{name}")  # fmt: skip
    token = cluster.authsvc.ok(
        "token", "create", "-n", NAMESPACE, "--serviceaccount", name, "--uid", uid, "--ttl", "1h"
    )
    path = cluster.path(f"{name}.token")
    path.touch(mode=0o600)
    path.write_text(token.strip() + "\n")
    return path


@pytest.fixture(scope="module")
def impersonation_proxies(cluster: E2ECluster, rbac: None) -> Iterator[tuple[AuthsvcProxy, AuthsvcProxy]]:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "e2e:impersonator"},
        "rules": [
            {"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]},
            {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/*"], "verbs": ["impersonate"]},
        ],
    }
    path = cluster.path("impersonator-role.yaml")
    path.write_text(yaml.safe_dump(role))
    cluster.admin("create", "-f", str(path))
    allowed = _impersonator(cluster, "impersonator", bound=True)
    refused = _impersonator(cluster, "not-an-impersonator", bound=False)
    with_binding = start_proxy(cluster, "proxy-impersonation", "--mode=impersonation", f"--token-file={allowed}")
    without = start_proxy(cluster, "proxy-impersonation-twin", "--mode=impersonation", f"--token-file={refused}")
    try:
        yield with_binding, without
    finally:
        with_binding.stop()
        without.stop()


def test_impersonation_mode_reaches_the_api_server_as_the_person(
    cluster: E2ECluster, impersonation_proxies: tuple[AuthsvcProxy, AuthsvcProxy]
) -> None:
    proxy, _ = impersonation_proxies
    kubeconfig = issue(cluster, proxy, "kim", "--mode", "token", "-g", TEAM)

    assert_reaches_as(cluster, kubeconfig, "kim")
    impersonator = f"system:serviceaccount:{NAMESPACE}:impersonator"
    assert (impersonator, "kim") in apiserver_users(cluster, f"/api/v1/namespaces/{NAMESPACE}/secrets")


def test_impersonation_without_the_binding_is_forbidden(
    cluster: E2ECluster, impersonation_proxies: tuple[AuthsvcProxy, AuthsvcProxy]
) -> None:
    _, twin = impersonation_proxies
    kubeconfig = issue(cluster, twin, "lou", "--mode", "token", "-g", TEAM)

    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]

    denied = cluster.kubectl(kubeconfig, "get", "pods", "-n", NAMESPACE)
    answer = requests.get(
        f"{twin.url}/api/v1/namespaces/{NAMESPACE}/pods",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(cluster.ca_file),
        timeout=10,
    )

    assert not denied.ok and "Forbidden" in denied.stderr, denied.describe()
    assert answer.status_code == 403, answer.text
    account = f"system:serviceaccount:{NAMESPACE}:not-an-impersonator"
    assert f'User "{account}" cannot impersonate resource "users"' in answer.json()["message"]


# ---------------------------------------------------------------- exec, port-forward


def test_kubectl_exec_and_port_forward_upgrade_requests_reach_the_api_server(
    cluster: E2ECluster, proxy: AuthsvcProxy
) -> None:
    """No kubelet here: the API server refuses to upgrade (the pod has no node) and kubectl must
    say exactly what it says without the proxy. The 101 and the bytes both ways are tested
    against an upstream that answers the same upgrade (tests/proxy/test_forwarding.py)."""
    cluster.admin(
        "create", "clusterrole", "e2e:proxy-exec", "--verb=get,create", "--resource=pods,pods/exec,pods/portforward"
    )
    cluster.admin("create", "clusterrolebinding", "e2e:proxy-exec", "--clusterrole=e2e:proxy-exec", "--user=max")
    _create_pod(cluster, "web")
    # kubectl port-forward asks only a Running pod for a stream (no kubelet here to make it so).
    cluster.admin(
        "patch", "pod", "web", "-n", NAMESPACE, "--subresource=status", "-p", '{"status":{"phase":"Running"}}'
    )
    via_proxy = issue(cluster, proxy, "max", "--mode", "token")
    direct = cluster.path("max-direct.kubeconfig")
    cluster.authsvc.ok("issue", "max", "--mode", "token", "-o", str(direct))

    for command in (
        ["exec", "web", "-n", NAMESPACE, "--", "true"],
        ["port-forward", "-n", NAMESPACE, "pod/web", ":80"],
    ):
        proxied = eventually(
            lambda args=command: cluster.kubectl(via_proxy, *args), lambda r: "forbidden" not in r.stderr
        )
        straight = cluster.kubectl(direct, *command)
        assert not proxied.ok and not straight.ok
        assert _last_error(proxied.stderr) == _last_error(straight.stderr), (proxied.describe(), straight.describe())
        assert "does not have a host assigned" in proxied.stderr, proxied.describe()
    upgrades = [u for u in apiserver_users(cluster, f"/namespaces/{NAMESPACE}/pods/web/") if u[0] == "max"]
    assert upgrades, "the upgrade requests never reached the API server as max"


def _last_error(stderr: str) -> str:
    return [line for line in stderr.strip().splitlines() if line.strip()][-1]


# ---------------------------------------------------------------- LDAP through the exec plugin


@pytest.fixture(scope="module")
def ldap_proxy(cluster: E2ECluster, rbac: None, request: pytest.FixtureRequest) -> Iterator[AuthsvcProxy]:
    """slapd and /login configured (test_ldap_login's fixture), then a proxy that reads that
    configuration: it re-checks /login tokens in the same directory, as the webhook does."""
    request.getfixturevalue("login_url")
    running = start_proxy(cluster, "proxy-ldap")
    try:
        yield running
    finally:
        running.stop()


def test_an_ldap_user_logs_in_through_the_exec_plugin_and_reaches_the_api_server_as_herself(
    cluster: E2ECluster, ldap_proxy: AuthsvcProxy
) -> None:
    cluster.bind("e2e:proxy-ldap-ops", READER_ROLE, group=LDAP_GROUP)
    kubeconfig = issue(cluster, ldap_proxy, CAROL.uid, "--mode", "exec")
    env = login_env(cluster, "carol-via-proxy", CAROL.uid, CAROL.password)

    assert_reaches_as(cluster, kubeconfig, CAROL.uid, env)
    assert (CAROL.uid, None) in apiserver_users(cluster, f"/api/v1/namespaces/{NAMESPACE}/secrets")


def test_an_ldap_login_with_a_wrong_password_gets_nothing_through(
    cluster: E2ECluster, ldap_proxy: AuthsvcProxy
) -> None:
    kubeconfig = issue(cluster, ldap_proxy, CAROL.uid, "--mode", "exec")
    env = login_env(cluster, "carol-via-proxy-wrong", CAROL.uid, "not-" + CAROL.password)

    result = cluster.kubectl(kubeconfig, "get", "pods", "-n", NAMESPACE, env=env)

    assert not result.ok and "getting credentials" in result.stderr, result.describe()
