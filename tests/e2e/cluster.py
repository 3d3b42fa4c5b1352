"""One real control plane wired to authsvc exactly as an operator would do it.

    authsvc init  →  kubeadm tree (cluster CA, apiserver serving cert, sa.key, admin.conf, ...)
    authsvc serve →  the TokenReview webhook (granian, TLS, mTLS with the webhook client CA)
    authsvc webhook-config / keys export-public → the apiserver's webhook kubeconfig and SA keys
    etcd + kube-apiserver v1.20.2 started with those files; RBAC on; bootstrap tokens read natively
    authsvc cluster bootstrap (with super-admin.conf) → kubeadm's objects: admin.conf works

`start_cluster` builds it (the session fixture in conftest.py calls it once); `E2ECluster` is
what the tests get: the CLI, kubectl, the admin kubeconfig and small RBAC helpers.
"""

from __future__ import annotations

import base64
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from authsvc.redact import token_fingerprint
from tests.components.kube_apiserver import REPO_ROOT, ControlPlane, ControlPlaneFiles, free_ports, write_kubeconfig
from tests.components.support import log_tail
from tests.e2e.harness import AuthsvcCli, AuthsvcServer, Kubectl, Result, child_env, eventually

# A ClusterRole the tests bind people to: enough to list namespaces, nothing else. (On 1.20
# without a controller-manager the aggregated view/edit/admin roles are empty.)
NAMESPACE_READER = "e2e:namespace-reader"
# kube-apiserver's service range in ControlPlane; init gets the same, so the serving cert's
# first service IP matches the `kubernetes` Service the apiserver creates.
SERVICE_CIDR = "10.0.0.0/24"
# tokens.issuer: kube-apiserver's --service-account-issuer and --api-audiences (kubeadm's value).
ISSUER = "https://kubernetes.default.svc.cluster.local"
# The OpenID Connect provider (docs/oidc.md): its issuer is the user issuer on the public
# listener, and kube-apiserver verifies its ID tokens itself (--oidc-* from `apiserver-config`).
OIDC_CLIENT = "kubernetes"  # kube-apiserver's --oidc-client-id
OIDC_OTHER_CLIENT = "e2e-other-app"  # another public client: its ID tokens are not for the API server
OIDC_REDIRECT = "http://127.0.0.1/callback"  # loopback, any port (RFC 8252)
OIDC_USER, OIDC_PASSWORD, OIDC_GROUP = "olivia", "olivia-e2e-password", "oidc-team"
STATIC_TOKEN = "e2e-static-token-5c1b7f0e9a2d4c38b6e1"
STATIC_USER = "static-sam"
STATIC_GROUP = "static-team"
# The API server's own audit log (JSON lines) under the policy authsvc ships, for `rbac suggest`.
AUDIT_POLICY = REPO_ROOT / "config" / "apiserver" / "audit-policy.yaml"
APISERVER_AUDIT_LOG = "apiserver-audit.log"


def home_settings(apiserver_port: int, webhook_port: int, public_port: int) -> dict[str, Any]:
    """authsvc.yaml written before `authsvc init` (init completes it and keeps these)."""
    webhook = f"127.0.0.1:{webhook_port}"
    public = f"127.0.0.1:{public_port}"
    return {
        # What `init --control-plane-endpoint 127.0.0.1:PORT --service-cidr ...` would record: in
        # the file, because init refuses flags that differ from an existing authsvc.yaml. The
        # endpoint is the server of kubeadm's kubeconfigs (admin.conf); cluster.server, of
        # `authsvc issue`'s.
        "cluster": {
            "control_plane_endpoint": f"127.0.0.1:{apiserver_port}",
            "server": f"https://127.0.0.1:{apiserver_port}",
            "service_cidr": SERVICE_CIDR,
        },
        # Two listeners, as deployed: the webhook (mTLS, kube-apiserver only) and the public one
        # (/login, discovery, JWKS) that people and verifiers reach without a client certificate.
        "server": {"bind": webhook, "public_bind": public, "public_url": f"https://{public}", "workers": 1},
        "tokens": {
            "issuer": ISSUER,
            # User tokens and the OIDC provider's ID tokens carry an issuer of their own, served
            # on the public listener: kube-apiserver's --oidc-issuer-url.
            "user_issuer": f"https://{public}/users",
            # Revocations reach the webhook's key cache within a second (the default is 5 s).
            "cache_refresh": "1s",
            # kube-apiserver verifies service-account tokens itself (sa.pub is in its
            # --service-account-key-file) and also checks that the account and pod still exist;
            # the webhook must not accept the ones it refused.
            "webhook_service_accounts": False,
        },
        "authn": {
            "chain": ["tokenfile", "bootstrap", "authsvc"],
            # No result cache in the webhook either (the apiserver's webhook cache TTL is 0s):
            # a revocation is refused as soon as kube-apiserver's own 10 s success cache lets
            # it (see test_webhook_tokens.py).
            "cache_size": 0,
            "tokenfile": {"path": "tokens.csv"},
        },
        # The decisions the webhook made, one JSON line each: how a test proves whether a token
        # went through the webhook at all.
        "audit": {"path": "audit.log", "flush_ms": 0},  # each line written before the answer: tests read it
        # Browser sign-in (/authorize) with the users file (`authsvc users add` in start_cluster).
        "login": {"backends": ["users"]},
        "oidc": {
            "clients": [
                {"id": OIDC_CLIENT, "type": "public", "redirect_uris": [OIDC_REDIRECT]},
                {"id": OIDC_OTHER_CLIENT, "type": "public", "redirect_uris": [OIDC_REDIRECT]},
            ]
        },
    }


@dataclass
class E2ECluster:
    """The running control plane and authsvc, and what tests need to drive them."""

    home: Path
    workdir: Path
    authsvc: AuthsvcCli
    kubectl: Kubectl
    control_plane: ControlPlane
    webhook: AuthsvcServer
    issuer: str
    sa_key_bundle: Path
    webhook_context: ssl.SSLContext
    # `kubectl get namespaces` with admin.conf before `authsvc cluster bootstrap` ran: the twin of
    # its success afterwards, observed once on the fresh control plane (test_cluster_bootstrap.py).
    admin_before_bootstrap: Result | None = None

    # ----------------------------------------------------------------- files

    @property
    def server(self) -> str:
        return self.control_plane.url

    @property
    def public_url(self) -> str:
        """authsvc's public listener (no client certificate): /login, discovery, JWKS."""
        return str(self.settings()["server"]["public_url"])

    def settings(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load((self.home / "authsvc.yaml").read_text())
        return data

    @property
    def ca_file(self) -> Path:
        return self.home / "pki" / "ca.crt"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.home / "admin.conf"

    @property
    def super_admin_kubeconfig(self) -> Path:
        return self.home / "super-admin.conf"

    @property
    def audit_log(self) -> Path:
        return self.home / "audit.log"

    @property
    def apiserver_audit_log(self) -> Path:
        """kube-apiserver's audit log (--audit-log-path), under config/apiserver/audit-policy.yaml."""
        return self.workdir / APISERVER_AUDIT_LOG

    @property
    def config_file(self) -> Path:
        return self.home / "authsvc.yaml"

    def path(self, name: str) -> Path:
        """A fresh file name in the session's work folder."""
        return self.workdir / name

    def token_kubeconfig(self, name: str, token: str) -> Path:
        return write_kubeconfig(self.path(f"{name}.kubeconfig"), self.server, self.ca_file, token=token)

    def reconfigure(self, sections: dict[str, dict[str, Any]]) -> None:
        """Merge `sections` into authsvc.yaml (one level deep) and restart `authsvc serve` on it."""
        settings = yaml.safe_load(self.config_file.read_text())
        for name, values in sections.items():
            settings[name] = {**settings.get(name, {}), **values}
        self.write_config(yaml.safe_dump(settings))

    def write_config(self, text: str) -> None:
        """Replace authsvc.yaml and restart the webhook server so that it reads it."""
        self.config_file.write_text(text)
        self.webhook.stop()
        self.webhook.start(self.webhook_context)

    # ----------------------------------------------------------------- kubectl

    def admin(self, *args: str) -> str:
        """kubectl as the cluster admin (init's admin.conf); the test fails unless it succeeds."""
        result = self.kubectl(self.admin_kubeconfig, *args)
        assert result.ok, result.describe()
        return result.stdout

    def bind(self, name: str, role: str = NAMESPACE_READER, **subject: str) -> None:
        """ClusterRoleBinding `name` of `role` to user=/group=/serviceaccount= (as kubectl's flags)."""
        flags = [f"--{kind}={value}" for kind, value in subject.items()]
        self.admin("create", "clusterrolebinding", name, f"--clusterrole={role}", *flags)

    def can_list_namespaces(self, kubeconfig: Path) -> Result:
        """`kubectl get namespaces`, retried while a fresh binding reaches the authorizer."""
        return eventually(lambda: self.kubectl(kubeconfig, "get", "namespaces", "-o", "name"), lambda r: r.ok)

    # ----------------------------------------------------------------- diagnostics

    def audit_lines(self) -> list[dict[str, Any]]:
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]

    def audit_records(self) -> list[dict[str, Any]]:
        """The TokenReview decisions in the audit trail (`"action": "tokenreview"`)."""
        return [line for line in self.audit_lines() if line["action"] == "tokenreview"]

    def login_records(self) -> list[dict[str, Any]]:
        """The audit trail's lines about /login attempts (with the reason of each refusal)."""
        return [line for line in self.audit_lines() if line["action"] == "login"]

    def webhook_decisions(self, token: str) -> list[dict[str, Any]]:
        """The audit records of every TokenReview authsvc answered for `token` (found by its fingerprint)."""
        fingerprint = token_fingerprint(token)
        return [record for record in self.audit_records() if record["ids"].get("token") == fingerprint]

    def log_summary(self) -> str:
        """Where every log is, with the tails of the two servers' logs (shown when a test fails)."""
        cp = self.control_plane
        logs = {
            "kube-apiserver": cp.apiserver_log,
            "etcd": cp.etcd_log,
            "authsvc serve": self.webhook.log_path,
            "authsvc audit": self.audit_log,
            "kube-apiserver audit": self.apiserver_audit_log,
        }
        lines = [f"{what}: {path}" for what, path in logs.items()]
        for what in ("kube-apiserver", "authsvc serve"):
            path = logs[what]
            if path is not None:
                lines += [f"--- last lines of {what} log", log_tail(path, 25)]
        return "\n".join(lines)

    def stop(self) -> None:
        try:
            self.control_plane.stop()
        finally:
            self.webhook.stop()


def _write_client_cert_of(kubeconfig: Path, out_dir: Path) -> tuple[Path, Path]:
    """The embedded client cert and key of a kubeconfig, as files (for the readiness probe)."""
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    cert, key = out_dir / "probe.crt", out_dir / "probe.key"
    for path, data_field in ((cert, "client-certificate-data"), (key, "client-key-data")):
        path.touch(mode=0o600)
        path.write_bytes(base64.b64decode(user[data_field]))
    return cert, key


def webhook_client_context(home: Path) -> ssl.SSLContext:
    """TLS as kube-apiserver talks to the webhook: verify authsvc's serving cert, present its client cert."""
    context = ssl.create_default_context(cafile=str(home / "pki" / "ca.crt"))
    pki = home / "pki" / "authsvc"
    context.load_cert_chain(str(pki / "apiserver-webhook-client.crt"), str(pki / "apiserver-webhook-client.key"))
    return context


def requestheader_flags(home: Path) -> list[str]:
    pki = home / "pki"
    return [
        f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    ]


def start_cluster(workdir: Path, kubectl_binary: Path, apiserver_binary: Path, etcd_binary: Path) -> E2ECluster:
    """Init a home, start authsvc serve, then etcd + kube-apiserver wired to it."""
    home = workdir / "home"
    home.mkdir(mode=0o700)
    apiserver_port, webhook_port, public_port = free_ports(3)
    (home / "authsvc.yaml").write_text(yaml.safe_dump(home_settings(apiserver_port, webhook_port, public_port)))
    env = child_env(home_dir=workdir)
    cli = AuthsvcCli(home, env)
    cli.ok("init", "--apiserver-advertise-address", "127.0.0.1")

    token_file = home / "tokens.csv"
    token_file.touch(mode=0o600)
    token_file.write_text(f'{STATIC_TOKEN},{STATIC_USER},static-uid-1,"{STATIC_GROUP}"\n')
    webhook_config = workdir / "webhook.kubeconfig"
    cli.ok("webhook-config", "--url", f"https://127.0.0.1:{webhook_port}/authenticate", "-o", str(webhook_config))
    sa_key_bundle = workdir / "sa-public-keys.pem"
    cli.ok("keys", "export-public", "-o", str(sa_key_bundle))
    cli.ok("users", "add", OIDC_USER, "-g", OIDC_GROUP, "--password-stdin", input=OIDC_PASSWORD + "\n")
    oidc_flags = _oidc_flags(cli, workdir)

    context = webhook_client_context(home)
    webhook = AuthsvcServer(cli, f"127.0.0.1:{webhook_port}", workdir / "authsvc-serve.log")
    webhook.start(context)
    probe_cert, probe_key = _write_client_cert_of(home / "super-admin.conf", workdir)
    files = ControlPlaneFiles(
        client_ca_file=home / "pki" / "ca.crt",
        tls_cert_file=home / "pki" / "apiserver.crt",
        tls_private_key_file=home / "pki" / "apiserver.key",
        service_account_key_file=sa_key_bundle,
        service_account_signing_key_file=home / "pki" / "sa.key",
        service_account_issuer=ISSUER,
        api_audiences=[ISSUER],
        webhook_config_file=webhook_config,
        webhook_cache_ttl="0s",
        probe_client_cert_file=probe_cert,
        probe_client_key_file=probe_key,
        extra_args=[
            f"--audit-policy-file={AUDIT_POLICY}",
            f"--audit-log-path={workdir / APISERVER_AUDIT_LOG}",
            "--audit-log-format=json",
            # Each event is written before the API server goes on (not batched): a test that just
            # made a request finds it in the log once its ResponseComplete stage is written.
            "--audit-log-mode=blocking",
            # Bootstrap-token Secrets authenticate natively (authsvc writes them when connected);
            # tokens that are only in authsvc's database still go to the webhook.
            "--enable-bootstrap-token-auth",
            # kube-apiserver 1.20 fetches the issuer's discovery 10 s after it starts, then retries
            # every 10 s: authsvc serve is up before it (above), so ID tokens verify from then on.
            *oidc_flags,
            # `authsvc proxy` in request-header mode (test_proxy.py): the front-proxy CA and the
            # CN of its client certificate, with kubeadm's header names (what
            # `authsvc apiserver-config --proxy` prints).
            *requestheader_flags(home),
            # The CertificateSubjectRestriction admission plugin refuses to create a
            # kube-apiserver-client CSR with O=system:masters (and no other privileged group).
            # Off here, so that what refuses it in test_csr_signer.py is authsvc's signer policy,
            # which must hold on clusters where the plugin is off or the group is another one.
            # No --cluster-signing-* flags either: no controller-manager signs anything here.
            "--disable-admission-plugins=CertificateSubjectRestriction",
        ],
    )
    control_plane = ControlPlane(apiserver_binary, etcd_binary, secure_port=apiserver_port)
    cluster = E2ECluster(
        home, workdir, cli, Kubectl(kubectl_binary, env), control_plane, webhook, ISSUER, sa_key_bundle, context
    )
    try:
        control_plane.start(files, workdir / "control-plane")
        _bootstrap_rbac(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _oidc_flags(cli: AuthsvcCli, workdir: Path) -> list[str]:
    """The --oidc-* flags as `authsvc apiserver-config` prints them (1.20 has no structured authentication)."""
    printed = cli.ok("apiserver-config", "--client-id", OIDC_CLIENT, "-o", str(workdir / "authn-config.yaml"))
    flags = [line for line in printed.splitlines() if line.startswith("--oidc-")]
    assert any(flag.startswith("--oidc-issuer-url=") for flag in flags), printed
    return flags


def _bootstrap_rbac(cluster: E2ECluster) -> None:
    """What kubeadm does at init, and the role the tests bind to.

    kubeadm ≥ 1.29 puts admin.conf's user in the group kubeadm:cluster-admins and creates, at
    init time and with super-admin.conf (system:masters), the ClusterRoleBinding that makes that
    group cluster-admin. kube-apiserver v1.20 has no such built-in binding: `authsvc cluster
    bootstrap` creates it (and the rest of kubeadm's objects) the same way. Before it, admin.conf
    is authenticated but Forbidden everywhere: recorded here, on the fresh control plane, for the
    test that proves both.
    """
    cluster.admin_before_bootstrap = cluster.kubectl(cluster.admin_kubeconfig, "get", "namespaces", "-o", "name")
    cluster.authsvc.ok("cluster", "bootstrap", "--kubeconfig", str(cluster.super_admin_kubeconfig))
    reader = eventually(
        lambda: cluster.kubectl(
            cluster.admin_kubeconfig,
            "create",
            "clusterrole",
            NAMESPACE_READER,
            "--verb=get,list",
            "--resource=namespaces",
        ),
        lambda r: r.ok,
    )
    assert reader.ok, reader.describe()
