"""The cluster commands without a cluster: what they print, refuse and leave alone.

(With a cluster: tests/e2e/test_cluster_*.py, against a real kube-apiserver.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from authsvc.authn.bootstrap import BootstrapAuthenticator, BootstrapTokenStore
from authsvc.home.opened import Home
from pki.clock import FixedClock
from tests.conftest import run_cli

NO_CONNECTION = "error: no cluster connection: set cluster.api.kubeconfig or --kubeconfig\n"


def test_cluster_bootstrap_needs_a_connection(home: Home) -> None:
    result = run_cli(["cluster", "bootstrap"], home=home.root)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", NO_CONNECTION)


def test_cluster_bootstrap_dry_run_prints_the_objects(home: Home) -> None:
    result = run_cli(["cluster", "bootstrap", "--dry-run", "-o", "yaml"], home=home.root)

    assert result.exit_code == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    names = [(d["kind"], d["metadata"]["name"]) for d in documents]
    assert ("ClusterRoleBinding", "kubeadm:cluster-admins") in names and len(names) == 9
    [info] = [d for d in documents if d["kind"] == "ConfigMap"]
    assert list(info["data"]) == ["kubeconfig"]  # no Secrets to sign with: not connected
    assert "without jws-kubeconfig-* signatures" in result.stderr
    listed = json.loads(run_cli(["cluster", "bootstrap", "--dry-run", "-o", "json"], home=home.root).stdout)
    assert listed["kind"] == "List" and [(i["kind"], i["metadata"]["name"]) for i in listed["items"]] == names


def test_a_kubeconfig_in_the_environment_is_used(home: Home, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.conf"
    result = run_cli(["token", "bootstrap", "list"], home=home.root, env={"KUBECONFIG": str(missing)})
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot use KUBECONFIG={missing} to reach the cluster: no such file\n"


def test_grant_dry_run_without_a_connection_prints_the_binding(home: Home) -> None:
    args = ["access", "grant", "--user", "bob", "--clusterrole", "view", "-n", "team-a", "--dry-run", "-o", "yaml"]
    result = run_cli(args, home=home.root)

    assert result.exit_code == 0, result.stderr
    body = yaml.safe_load(result.stdout)
    assert body["kind"] == "RoleBinding" and body["metadata"]["namespace"] == "team-a"
    assert run_cli(args[:-3], home=home.root).stderr == NO_CONNECTION


def test_grant_usage_and_policy_refusals(home: Home) -> None:
    both = run_cli(["access", "grant", "--user", "a", "--group", "b", "--clusterrole", "view"], home=home.root)
    no_role = run_cli(["access", "grant", "--user", "a"], home=home.root)
    masters = run_cli(["access", "grant", "--group", "system:masters", "--clusterrole", "view"], home=home.root)

    assert both.exit_code == 2 and "exactly one of --user, --group, --serviceaccount" in both.stderr
    assert no_role.exit_code == 2 and "exactly one of --clusterrole, --role" in no_role.stderr
    # The policy is checked first: refused even before the missing connection is.
    assert masters.exit_code == 1 and "system:masters" in masters.stderr and masters.stderr.count("\n") == 1


def test_issue_with_clusterrole_needs_a_connection_and_issues_nothing(home: Home, tmp_path: Path) -> None:
    out = tmp_path / "bob.kubeconfig"
    refused = run_cli(["issue", "bob", "--clusterrole", "view", "-o", str(out)], home=home.root)
    dry = run_cli(["issue", "bob", "--clusterrole", "view", "-o", str(out), "--dry-run"], home=home.root)

    assert refused.stderr == NO_CONNECTION and refused.exit_code == 1
    assert dry.exit_code == 0 and "not checked: no cluster connection" in dry.stdout
    assert "name: authsvc:user:bob:clusterrole:view" in dry.stdout
    assert not out.exists()
    listed = run_cli(["certs", "list", "-o", "json"], home=home.root)
    assert '"bob"' not in listed.stdout


def test_sa_token_without_a_uid_or_a_connection_is_refused(home: Home) -> None:
    base = ["token", "create", "-n", "ci", "--serviceaccount", "deployer"]
    no_uid = run_cli(base, home=home.root)
    empty_uid = run_cli([*base, "--uid", ""], home=home.root)
    no_pod_uid = run_cli([*base, "--uid", "u-1", "--bound-pod", "web-0"], home=home.root)
    pod_uid_alone = run_cli([*base, "--uid", "u-1", "--bound-pod-uid", "p-1"], home=home.root)

    for result in (no_uid, empty_uid, no_pod_uid, pod_uid_alone):
        assert result.exit_code == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result
    assert "kubectl get serviceaccount deployer -n ci -o jsonpath={.metadata.uid}" in no_uid.stderr
    assert "kubectl get pod web-0 -n ci -o jsonpath={.metadata.uid}" in no_pod_uid.stderr
    assert "--bound-pod-uid needs --bound-pod" in pod_uid_alone.stderr


def test_verify_warns_about_a_token_without_uid(home: Home) -> None:
    # The library still signs one (a verifier other than kube-apiserver may not care): verify says
    # what kube-apiserver will do with it.
    service = home.stores.token_service
    token = service.issue_service_account_token("ci", "deployer").token
    service.flush()

    result = run_cli(["token", "verify", token, "-o", "json"], home=home.root)

    assert result.exit_code == 0
    warning = "the token names no service account UID: kube-apiserver refuses it"
    assert json.loads(result.stdout)["warnings"] == [f"{warning} (ServiceAccount UID (...) does not match claim ())"]
    assert result.stderr.startswith(f"warning: {warning}")
    with_uid = service.issue_service_account_token("ci", "deployer", uid="u-1").token
    service.flush()
    checked = run_cli(["token", "verify", with_uid], home=home.root)
    assert checked.exit_code == 0 and checked.stderr == ""


def test_bootstrap_token_defaults_are_kubeadms_and_usages_are_checked(home: Home, clock: FixedClock) -> None:
    created = run_cli(["token", "bootstrap", "create", "-o", "json"], home=home.root)
    signing_only = run_cli(["token", "bootstrap", "create", "--usages", "signing"], home=home.root)
    bogus = run_cli(["token", "bootstrap", "create", "--usages", "signing,bogus"], home=home.root)
    none = run_cli(["token", "bootstrap", "create", "--usages", ""], home=home.root)

    entry = json.loads(created.stdout)
    assert entry["groups"] == ["system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token"]
    assert entry["usages"] == ["authentication", "signing"]
    assert bogus.exit_code == 1 and "bogus" in bogus.stderr and bogus.stderr.count("\n") == 1
    assert none.exit_code == 1 and "at least one usage" in none.stderr
    # A token that may only sign cluster-info does not log in (as kube-apiserver's authenticator).
    authenticator = BootstrapAuthenticator(BootstrapTokenStore(home.stores.engine), clock)
    assert authenticator.authenticate(entry["token"]) is not None
    assert authenticator.authenticate(signing_only.stdout.strip()) is None
    listed = run_cli(["token", "bootstrap", "list"], home=home.root)
    assert re.search(rf"^{entry['id']}\s.*\sauthsvc\s", listed.stdout, re.MULTILINE), listed.stdout
    assert "no cluster connection" in listed.stderr
