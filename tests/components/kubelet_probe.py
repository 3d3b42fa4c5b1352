"""kubelet's httpGet probe with `scheme: HTTPS`, as config/kubernetes/deployment.yaml uses it.

kubelet sends a GET over TLS to the pod's port without a client certificate and without
verifying the server's certificate, and counts 200-399 as success
(https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/).
The tests ask the real `authsvc serve` (granian) exactly that, so that "the probe passes" means
what it will mean in a pod.
"""

from __future__ import annotations

import http.client
import ssl

__all__ = ["kubelet_https_get", "probe_succeeds"]


def kubelet_https_get(host: str, port: int, path: str, timeout: float = 5.0) -> int | str:
    """The HTTP status kubelet would see, or the reason the request failed (a str)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # as kubelet: InsecureSkipVerify
    connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        connection.request("GET", path, headers={"User-Agent": "kube-probe/1.33"})
        return connection.getresponse().status
    except (OSError, http.client.HTTPException) as e:  # refused, reset, TLS alert, timeout
        return f"{type(e).__name__}: {e}"
    finally:
        connection.close()


def probe_succeeds(result: int | str) -> bool:
    return isinstance(result, int) and 200 <= result < 400
