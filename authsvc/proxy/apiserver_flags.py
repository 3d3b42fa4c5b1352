"""The kube-apiserver flags that make it trust `authsvc proxy` in request-header mode.

    --requestheader-client-ca-file         the CA that signed the proxy's client certificate
    --requestheader-allowed-names          that certificate's CN (only it may set the headers)
    --requestheader-username-headers       proxy.request_header.username_header
    --requestheader-group-headers          proxy.request_header.group_header
    --requestheader-extra-headers-prefix   proxy.request_header.extra_header_prefix

kubeadm sets all five, with kubeadm's front-proxy CA, `front-proxy-client` and the X-Remote-*
names, which are authsvc's defaults: on a kubeadm control plane nothing needs changing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from authsvc.errors import HomeError

if TYPE_CHECKING:
    from authsvc.home.opened import Home


def requestheader_flags(home: Home) -> list[str]:
    """Raises HomeError when the client certificate is not from the home's front-proxy CA."""
    from pki.issued_by import issued_by
    from pki.names import subject_user
    from pki.store import load_certificates

    rh = home.settings.proxy.request_header
    cert_file = home.layout.path(rh.client_cert)
    client = load_certificates(cert_file, what="proxy client certificate")[0]
    ca_file = home.layout.cert_path("front-proxy-ca")
    cas = load_certificates(ca_file, what="front-proxy CA certificate") if ca_file.is_file() else []
    if not any(issued_by(client, ca) for ca in cas):
        raise HomeError(
            f"{cert_file} (proxy.request_header.client_cert) is not signed by {ca_file}: give the API server the CA "
            "that signed it as --requestheader-client-ca-file"
        )
    common_name, _ = subject_user(client.subject)
    return [
        f"--requestheader-client-ca-file={ca_file.resolve()}",
        f"--requestheader-allowed-names={common_name}",
        f"--requestheader-username-headers={rh.username_header}",
        f"--requestheader-group-headers={rh.group_header}",
        f"--requestheader-extra-headers-prefix={rh.extra_header_prefix}",
    ]
