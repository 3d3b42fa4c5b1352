"""Kubernetes exec probe: GET a health path of the webhook in this pod, over TLS with mTLS.

granian verifies client certificates during the TLS handshake, so kubelet's own httpGet probe
(which presents none) is refused before /healthz is reached. This presents a certificate from
the webhook's client CA (the Secret authsvc-probe-client, deployment.yaml) and verifies the
serving certificate against the cluster CA. Exit 0 on HTTP 200; 1 otherwise, with the reason on
stderr (kubelet shows it in the pod's events). kustomization.yaml ships it as a ConfigMap.

    python probe.py /readyz [--url https://localhost:8443] [--ca FILE] [--cert FILE] [--key FILE]
"""

from __future__ import annotations

import argparse
import ssl
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "https://localhost:8443"
DEFAULT_CA = "/var/lib/authsvc/pki/ca.crt"
DEFAULT_CERT = "/var/run/authsvc-probe/tls.crt"
DEFAULT_KEY = "/var/run/authsvc-probe/tls.key"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", choices=["/healthz", "/readyz"])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the webhook's base URL [{DEFAULT_URL}]")
    parser.add_argument("--ca", default=DEFAULT_CA, help="CA of the serving certificate")
    parser.add_argument("--cert", default=DEFAULT_CERT, help="client certificate (PEM)")
    parser.add_argument("--key", default=DEFAULT_KEY, help="its key (PEM, unencrypted)")
    parser.add_argument("--timeout", type=float, default=3.0)
    return parser.parse_args(argv)


def probe(url: str, context: ssl.SSLContext, timeout: float) -> str | None:
    """None when the answer is 200; the reason otherwise."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as response:  # noqa: S310 (https only)
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}: {e.read(200).decode(errors='replace').strip()}"
    except (urllib.error.URLError, OSError) as e:
        return str(getattr(e, "reason", e))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.url.startswith("https://"):
        print(f"probe: --url {args.url} must be https://", file=sys.stderr)
        return 2
    try:
        context = ssl.create_default_context(cafile=args.ca)
        context.load_cert_chain(args.cert, args.key)
    except (OSError, ssl.SSLError) as e:
        print(f"probe: cannot load the probe's TLS files: {e}", file=sys.stderr)
        return 1
    reason = probe(args.url.rstrip("/") + args.path, context, args.timeout)
    if reason is not None:
        print(f"probe: {args.path}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
