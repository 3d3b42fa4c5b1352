"""`authsvc init` steps for authsvc's own TLS: the webhook's and the proxy's serving
certificates and the webhook callers' CA.

- `pki/authsvc/serving.crt|key`: server certificate of `authsvc serve`, signed by the cluster
  CA, SANs from `server.serving_sans` (the API server's webhook kubeconfig trusts pki/ca.crt);
- `pki/authsvc/proxy.crt|key`: server certificate of `authsvc proxy`, signed by the cluster CA,
  SANs from `proxy.serving_sans` (kubeconfigs of `authsvc issue --via-proxy` trust pki/ca.crt);
- `pki/authsvc/webhook-client-ca.crt|key`: a CA of its own for the webhook's callers, so that a
  person's client certificate from the cluster CA cannot call the webhook;
- `pki/authsvc/apiserver-webhook-client.crt|key`: the API server's client certificate for the
  webhook, signed by that CA (`authsvc webhook-config` embeds it).

Each step is idempotent: an existing pair is kept, half a pair is an error naming the fix.
As for kubeadm's leaves, the two leaf keys are written in clear even when
`pki.key_passphrase_*` is set: granian cannot read an encrypted PKCS#8 key (it panics), and
the API server cannot decrypt one either. The client CA's key follows the passphrase setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from authsvc.errors import HomeError
from pki.keys import generate_private_key, private_key_to_pem
from pki.names import SubjectAltNames, common_name_subject
from pki.profiles import CLIENT, SERVER, Profile
from pki.store import CERT_MODE, KEY_MODE, PendingFile, atomic_write_many, certs_to_pem

if TYPE_CHECKING:
    from authsvc.init.steps import InitContext

WEBHOOK_CLIENT_CA = "authsvc/webhook-client-ca"
APISERVER_WEBHOOK_CLIENT = "authsvc/apiserver-webhook-client"
SERVING_NAME = "authsvc/serving"
SERVING_CN = "authsvc"
PROXY_SERVING_NAME = "authsvc/proxy"
PROXY_SERVING_CN = "authsvc-proxy"
APISERVER_CLIENT_CN = "kube-apiserver-authsvc-webhook"


def serving_cert_step(ctx: InitContext) -> None:
    server = ctx.home.settings.server
    _ensure_leaf(
        ctx,
        ctx.home.layout.path(server.tls_cert),
        ctx.home.layout.path(server.tls_key),
        ca_name="ca",
        name=SERVING_NAME,
        common_name=SERVING_CN,
        profile=SERVER,
        sans=SubjectAltNames.parse(server.serving_sans),
    )


def proxy_serving_cert_step(ctx: InitContext) -> None:
    proxy = ctx.home.settings.proxy
    _ensure_leaf(
        ctx,
        ctx.home.layout.path(proxy.tls_cert),
        ctx.home.layout.path(proxy.tls_key),
        ca_name="ca",
        name=PROXY_SERVING_NAME,
        common_name=PROXY_SERVING_CN,
        profile=SERVER,
        sans=SubjectAltNames.parse(proxy.serving_sans),
    )


def webhook_client_ca_step(ctx: InitContext) -> None:
    from authsvc.init.steps import ensure_ca  # setup imports this module for INIT_STEPS

    if _uses_own_client_ca(ctx):
        ensure_ca(ctx, WEBHOOK_CLIENT_CA, "authsvc-webhook-client-ca")


def apiserver_webhook_client_step(ctx: InitContext) -> None:
    if not _uses_own_client_ca(ctx):
        return  # the operator brought the callers' CA: their client certificates come from it too
    _ensure_leaf(
        ctx,
        ctx.home.layout.cert_path(APISERVER_WEBHOOK_CLIENT),
        ctx.home.layout.key_path(APISERVER_WEBHOOK_CLIENT),
        ca_name=WEBHOOK_CLIENT_CA,
        name=APISERVER_WEBHOOK_CLIENT,
        common_name=APISERVER_CLIENT_CN,
        profile=CLIENT,
        sans=SubjectAltNames(),
    )


def _uses_own_client_ca(ctx: InitContext) -> bool:
    return ctx.home.layout.path(ctx.home.settings.server.client_ca) == ctx.home.layout.cert_path(WEBHOOK_CLIENT_CA)


def _ensure_leaf(
    ctx: InitContext,
    cert_file: Path,
    key_file: Path,
    *,
    ca_name: str,
    name: str,
    common_name: str,
    profile: Profile,
    sans: SubjectAltNames,
) -> None:
    if cert_file.exists() and key_file.exists():
        return
    if cert_file.exists() or key_file.exists():
        raise HomeError(f"{cert_file} or {key_file} exists without the other: restore it or remove both")
    described = f" ({', '.join(sans.as_strings())})" if sans else ""
    if not ctx.plan(f"create {name} certificate CN={common_name}{described}, signed by {ca_name}"):
        return
    home, now = ctx.home, ctx.now
    ca = home.stores.load_ca(ca_name)
    key = generate_private_key(home.settings.pki.key_type)
    cert = ca.issue(
        subject=common_name_subject(common_name),
        public_key=key.public_key(),
        profile=profile,
        now=now,
        ttl=home.settings.pki.server_ttl,
        sans=sans,
    )
    ctx.written += atomic_write_many(
        [
            PendingFile(key_file, private_key_to_pem(key), KEY_MODE),  # clear: see the module docstring
            PendingFile(cert_file, certs_to_pem([cert]), CERT_MODE),
        ]
    )
    # auto_renew: `authsvc rotate` renews both leaves (same key) before they expire.
    home.stores.inventory.record(
        cert, profile=profile.name, now=now, requester="init", name=name, ca_name=ca_name, auto_renew=True
    )


def webhook_pki_step(ctx: InitContext) -> None:
    """The four above, in order (the client certificate needs its CA)."""
    serving_cert_step(ctx)
    proxy_serving_cert_step(ctx)
    webhook_client_ca_step(ctx)
    apiserver_webhook_client_step(ctx)
