"""In-memory stand-ins for the API server's Lease and CertificateSigningRequest endpoints.

For the logic that a real API server cannot make deterministic (two replicas racing for a
lease at an exact instant, a 409 between a read and a write, a 410 mid-watch): they keep
resourceVersions and answer 404/409 the way kube-apiserver does (as the client's
ApiException), so `ClusterClient.call` translates them as in production. Everything the
real API server can show is shown by tests/e2e/test_csr_signer.py instead.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from authsvc.cluster.connection import ClusterClient, ClusterSource

_VERSIONS = itertools.count(100)


def not_found(what: str) -> ApiException:
    error = ApiException(status=404, reason="Not Found")
    error.body = f'{{"kind":"Status","message":"{what} not found","reason":"NotFound","code":404}}'
    return error


def conflict(what: str) -> ApiException:
    error = ApiException(status=409, reason="Conflict")
    error.body = (
        f'{{"kind":"Status","message":"Operation cannot be fulfilled on {what}: the object has been modified",'
        '"reason":"Conflict","code":409}'
    )
    return error


def _as_dict(body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        return copy.deepcopy(body)
    return client.ApiClient().sanitize_for_serialization(body)  # type: ignore[no-any-return]


class FakeLeases:
    """coordination.k8s.io/v1 Leases, with resourceVersion checks on update."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.fail: Exception | None = None  # raised by every call while set (an outage)
        # Writers wait here before writing: two replicas that read the same version both write.
        self.barrier: threading.Barrier | None = None

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> Any:
        with self.lock:
            if self.fail is not None:
                raise self.fail
            if (namespace, name) not in self.objects:
                raise not_found(f"leases {name}")
            return client.V1Lease.from_dict(copy.deepcopy(self.objects[(namespace, name)]))

    def create_namespaced_lease(self, namespace: str, body: Any, **_: Any) -> Any:
        data = _as_dict(body)
        with self.lock:
            if self.fail is not None:
                raise self.fail
            name = data["metadata"]["name"]
            if (namespace, name) in self.objects:
                raise conflict(f"leases {name}")
            data["metadata"]["resourceVersion"] = str(next(_VERSIONS))
            self.objects[(namespace, name)] = data
            return client.V1Lease.from_dict(copy.deepcopy(data))

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any, **_: Any) -> Any:
        data = _as_dict(body)
        if self.barrier is not None:
            self.barrier.wait(timeout=5)
        with self.lock:
            if self.fail is not None:
                raise self.fail
            current = self.objects.get((namespace, name))
            if current is None:
                raise not_found(f"leases {name}")
            if data["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise conflict(f"leases {name}")
            data["metadata"]["resourceVersion"] = str(next(_VERSIONS))
            self.objects[(namespace, name)] = data
            return client.V1Lease.from_dict(copy.deepcopy(data))

    def spec(self, name: str = "authsvc-csr-signer", namespace: str = "kube-system") -> dict[str, Any]:
        return dict(self.objects[(namespace, name)]["spec"])


class FakeCertificates:
    """certificates.k8s.io/v1 CertificateSigningRequests: approval and status subresources with
    resourceVersion checks, a list, and a scripted watch."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.writes: list[tuple[str, str]] = []  # (subresource, name)
        # Called before a status write: a test changes the object there to provoke a 409.
        self.before_status_write: Callable[[str], None] | None = None

    def add(self, name: str, spec: dict[str, Any], conditions: list[dict[str, Any]] | None = None) -> Any:
        data = {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": str(next(_VERSIONS))},
            "spec": spec,
            "status": {"conditions": conditions or []},
        }
        with self.lock:
            self.objects[name] = data
        return self.model(name)

    def model(self, name: str) -> Any:
        return client.V1CertificateSigningRequest.from_dict(copy.deepcopy(self.objects[name]))

    def touch(self, name: str) -> None:
        """Someone else changed the object (a label): its resourceVersion moves on."""
        with self.lock:
            self.objects[name]["metadata"]["resourceVersion"] = str(next(_VERSIONS))

    def read_certificate_signing_request(self, name: str, **_: Any) -> Any:
        with self.lock:
            if name not in self.objects:
                raise not_found(f"certificatesigningrequests {name}")
        return self.model(name)

    def list_certificate_signing_request(self, **_: Any) -> Any:
        with self.lock:
            items = [copy.deepcopy(o) for o in self.objects.values()]
        return client.V1CertificateSigningRequestList.from_dict(
            {"items": items, "metadata": {"resourceVersion": str(next(_VERSIONS))}}
        )

    def _update(self, subresource: str, name: str, body: Any) -> Any:
        data = _as_dict(body)
        if subresource == "status" and self.before_status_write is not None:
            self.before_status_write(name)
        with self.lock:
            current = self.objects.get(name)
            if current is None:
                raise not_found(f"certificatesigningrequests {name}")
            if data["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise conflict(f"certificatesigningrequests {name}")
            current["status"] = data.get("status") or {}
            current["metadata"]["resourceVersion"] = str(next(_VERSIONS))
            self.writes.append((subresource, name))
        return self.model(name)

    def replace_certificate_signing_request_approval(self, name: str, body: Any, **_: Any) -> Any:
        return self._update("approval", name, body)

    def replace_certificate_signing_request_status(self, name: str, body: Any, **_: Any) -> Any:
        return self._update("status", name, body)


class FakeNodes:
    def __init__(self) -> None:
        self.nodes: dict[str, Any] = {}

    def add(self, name: str, addresses: list[tuple[str, str]]) -> None:
        self.nodes[name] = client.V1Node.from_dict(
            {
                "metadata": {"name": name},
                "status": {"addresses": [{"type": kind, "address": value} for kind, value in addresses]},
            }
        )

    def read_node(self, name: str, **_: Any) -> Any:
        if name not in self.nodes:
            raise not_found(f"nodes {name}")
        return self.nodes[name]


class ScriptedWatch:
    """A kubernetes.watch.Watch stand-in: yields the scripted events (or raises), records its calls."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[dict[str, Any]] = []
        self.resource_version: str | None = None
        self.stopped = False

    def stream(self, method: Callable[..., Any], **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(kwargs)
        for entry in self.script:
            # A callable makes its event when the watch delivers it (an object created after the list).
            item = entry() if callable(entry) else entry
            if isinstance(item, Exception):
                raise item
            obj = item["object"]
            if hasattr(obj, "metadata"):
                self.resource_version = obj.metadata.resource_version
            yield item
            if self.stopped:
                return

    def stop(self) -> None:
        self.stopped = True


class FakeApiClient:
    configuration = type("Configuration", (), {"host": "https://fake:6443"})()

    def close(self) -> None:
        return None


def fake_client(
    *,
    leases: FakeLeases | None = None,
    certificates: FakeCertificates | None = None,
    nodes: FakeNodes | None = None,
) -> ClusterClient:
    """A real ClusterClient (its error translation included) over the fakes."""
    cluster = ClusterClient(FakeApiClient(), ClusterSource("--kubeconfig", "fake.kubeconfig", None, 5.0))
    cluster.__dict__["coordination"] = leases or FakeLeases()
    cluster.__dict__["certificates"] = certificates or FakeCertificates()
    cluster.__dict__["core"] = nodes or FakeNodes()
    return cluster
