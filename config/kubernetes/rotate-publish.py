"""Publish what `authsvc rotate` renewed into the Secrets that the webhook pods mount.

The second step of the rotate CronJob (cronjob-rotate.yaml), run with the authsvc image's
Python and its kubernetes client; kustomization.yaml ships it as the ConfigMap
authsvc-rotate-publish. A Secret is written only when its content differs; when any did, the
webhook Deployment is restarted the way `kubectl rollout restart` does it (a pod-template
annotation), so the PodDisruptionBudget and maxUnavailable 0 keep it serving. Exits with
rotate's status (read from --rotate-status), so a rotate failure still fails the Job.

    python rotate-publish.py --home DIR --namespace NS [--deployment authsvc]
        [--rotate-status FILE] [--kubeconfig FILE] [--now ISO]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pki.clock import system_clock  # the image's authsvc installation

# Secret name -> (type, {key: (path in the home, required)}). The paths are kubeadm's layout
# and the defaults of server.tls_cert / tls_key / client_ca; deployment.yaml mounts them back.
# Never the API server's webhook client key (pki/authsvc/apiserver-webhook-client.key): a
# Secret in this namespace is readable by whoever may read Secrets here, and that key lets its
# holder call the webhook as the API server. Its webhook kubeconfig lives on the control-plane
# nodes, not here.
SECRETS: dict[str, tuple[str, dict[str, tuple[str, bool]]]] = {
    "authsvc-serving": (
        "kubernetes.io/tls",
        {
            "tls.crt": ("pki/authsvc/serving.crt", True),
            "tls.key": ("pki/authsvc/serving.key", True),
            "ca.crt": ("pki/ca.crt", True),
        },
    ),
    "authsvc-webhook-client-ca": ("Opaque", {"ca.crt": ("pki/authsvc/webhook-client-ca.crt", True)}),
    "authsvc-signing-keys": (
        "Opaque",
        {"sa.key": ("pki/sa.key", True), "sa.pub": ("pki/sa.pub", True), "sa-next.key": ("pki/sa-next.key", False)},
    ),
}
RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
PUBLISH_STATUSES = {0, 3}  # rotate succeeded (3: and a human must act)


class PublishError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class DesiredSecret:
    name: str
    type: str
    data: dict[str, str]  # base64, as the API stores it


def desired_secrets(home: Path) -> list[DesiredSecret]:
    """The Secrets as the home says they should be (pure: reads files, calls no API)."""
    wanted = []
    for name, (secret_type, keys) in SECRETS.items():
        data = {}
        for key, (relative, required) in keys.items():
            path = home / relative
            if not path.is_file():
                if required:
                    raise PublishError(f"{path} is missing: is the authsvc-home volume an initialised home?")
                continue
            data[key] = base64.b64encode(path.read_bytes()).decode()
        wanted.append(DesiredSecret(name, secret_type, data))
    return wanted


def publish(core: Any, namespace: str, wanted: list[DesiredSecret]) -> list[str]:
    """Create or replace each Secret whose data differs; returns the names written."""
    from kubernetes.client import V1ObjectMeta, V1Secret
    from kubernetes.client.exceptions import ApiException

    written = []
    for secret in wanted:
        try:
            current = core.read_namespaced_secret(secret.name, namespace)
        except ApiException as e:
            if e.status != 404:
                raise
            body = V1Secret(metadata=V1ObjectMeta(name=secret.name), type=secret.type, data=secret.data)
            core.create_namespaced_secret(namespace, body)
            written.append(secret.name)
            continue
        if (current.data or {}) != secret.data:
            current.data = secret.data
            core.replace_namespaced_secret(secret.name, namespace, current)
            written.append(secret.name)
    return written


def restart(apps: Any, namespace: str, deployment: str, now: dt.datetime) -> None:
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: stamp}}}}}
    apps.patch_namespaced_deployment(deployment, namespace, patch)


def rotate_status(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as e:
        raise PublishError(f"cannot read rotate's exit status from {path}: {e}") from e


def api_clients(kubeconfig: str | None) -> tuple[Any, Any]:
    from kubernetes import client, config

    if kubeconfig:
        config.load_kube_config(kubeconfig)  # type: ignore[no-untyped-call]
    else:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.CoreV1Api(), client.AppsV1Api()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--deployment", default="authsvc")
    parser.add_argument("--rotate-status", type=Path, default=None)
    parser.add_argument("--kubeconfig", default=None, help="default: the pod's in-cluster credentials")
    parser.add_argument("--now", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        status = rotate_status(args.rotate_status)
        if status not in PUBLISH_STATUSES:
            print(f"rotate-publish: authsvc rotate failed (exit {status}); nothing published", file=sys.stderr)
            return status
        core, apps = api_clients(args.kubeconfig)
        written = publish(core, args.namespace, desired_secrets(args.home))
        if written:
            now = dt.datetime.fromisoformat(args.now) if args.now else system_clock()
            restart(apps, args.namespace, args.deployment, now)
            print(f"rotate-publish: updated {', '.join(written)}; restarted deployment/{args.deployment}")
        else:
            print("rotate-publish: the Secrets are current; nothing to do")
    except PublishError as e:
        print(f"rotate-publish: error: {e}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
