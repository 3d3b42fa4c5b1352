"""The one place that decides how to reach the API server and builds the kubernetes client.

Where the connection comes from, first match wins:

1. `--kubeconfig FILE` on the command line (relative to the working directory);
2. `cluster.api.kubeconfig` in authsvc.yaml (relative to the home);
3. the `KUBECONFIG` environment variable (a list of files, merged as kubectl merges them);
4. the pod's service account, when running in a pod and `cluster.api.in_cluster` is on.

`~/.kube/config` is never used implicitly: a personal kubeconfig lying around must not turn
`authsvc token bootstrap create` into a write to whatever cluster it points at.

Resolving the source (`resolve_source`) imports nothing heavy; only `connect` imports the
kubernetes client (~250 ms), so commands that end up with no connection never pay for it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from authsvc.cluster.errors import NO_CONNECTION, NoClusterConnection, api_error, unreachable

if TYPE_CHECKING:
    from authsvc.home.opened import Home
    from authsvc.settings.cluster import ClusterAPISettings

T = TypeVar("T")

KUBECONFIG_ENV = "KUBECONFIG"
# What a pod's environment and files look like (client-go's rest.InClusterConfig reads the same).
SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


@dataclass(frozen=True, slots=True)
class ClusterSource:
    """Where the connection comes from; `kubeconfig` is None for the pod's service account."""

    origin: str
    kubeconfig: str | None
    context: str | None
    request_timeout: float

    def describe(self) -> str:
        if self.kubeconfig is None:
            return "the pod's service account (in-cluster)"
        where = f"KUBECONFIG={self.kubeconfig}" if self.origin == KUBECONFIG_ENV else f"{self.origin} {self.kubeconfig}"
        return f"{where}, context {self.context}" if self.context else where


def resolve_source(
    *,
    option: str | None,
    context: str | None,
    settings: ClusterAPISettings,
    home_root: Path,
    environ: Mapping[str, str],
    in_cluster_token: Path = IN_CLUSTER_TOKEN,
) -> ClusterSource | None:
    """The connection the command line, the settings and the environment ask for, or None."""
    timeout = settings.request_timeout.total_seconds()
    chosen_context = context or settings.context
    if option:
        return ClusterSource("--kubeconfig", str(Path(option).expanduser()), chosen_context, timeout)
    if settings.kubeconfig:
        path = home_root / Path(settings.kubeconfig).expanduser()
        return ClusterSource("cluster.api.kubeconfig", str(path), chosen_context, timeout)
    listed = environ.get(KUBECONFIG_ENV, "")
    if any(part for part in listed.split(os.pathsep)):
        return ClusterSource(KUBECONFIG_ENV, listed, chosen_context, timeout)
    if settings.in_cluster and environ.get(SERVICE_HOST_ENV) and in_cluster_token.is_file():
        return ClusterSource("in-cluster", None, None, timeout)
    return None


def home_source(
    home: Home, environ: Mapping[str, str], *, option: str | None = None, context: str | None = None
) -> ClusterSource | None:
    """`resolve_source` for an opened home (its cluster.api settings; relative paths from its root)."""
    return resolve_source(
        option=option, context=context, settings=home.settings.cluster.api, home_root=home.root, environ=environ
    )


def require_source(source: ClusterSource | None) -> ClusterSource:
    if source is None:
        raise NoClusterConnection(NO_CONNECTION)
    return source


def connect(source: ClusterSource) -> ClusterClient:
    """A client for `source`; NoClusterConnection when the kubeconfig cannot be used.

    Nothing is sent to the API server here: the first call says whether it answers.
    """
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if source.kubeconfig is None:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            _check_files_exist(source)
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=source.kubeconfig,
                context=source.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except yaml.YAMLError as e:
        detail = f"not valid YAML ({str(e).splitlines()[0]})"
        raise NoClusterConnection(f"cannot use {source.describe()} to reach the cluster: {detail}") from None
    except (ConfigException, OSError, ValueError, TypeError) as e:
        detail = " ".join(str(e).split()) or type(e).__name__
        raise NoClusterConnection(f"cannot use {source.describe()} to reach the cluster: {detail}") from None
    # The client's own retries would repeat a refused connection three times before saying so.
    configuration.retries = False
    return ClusterClient(client.ApiClient(configuration), source)


def _check_files_exist(source: ClusterSource) -> None:
    """The client's message for a missing file is "Invalid kube-config file. No configuration found"."""
    assert source.kubeconfig is not None
    paths = [p for p in source.kubeconfig.split(os.pathsep) if p]
    if not any(Path(p).is_file() for p in paths):
        raise NoClusterConnection(f"cannot use {source.describe()} to reach the cluster: no such file")


class ClusterClient:
    """The kubernetes client's ApiClient and typed APIs, with every call's errors translated.

    `call(action, method, ...)` is how every request goes out: `action` ("create Secret
    kube-system/bootstrap-token-abcdef") goes into the error message, the request carries the
    configured timeout (a watch passes its own `_request_timeout`), and an `ApiException` or
    urllib3 error comes back as a ClusterError. Each API is a cached property: `core`, `rbac`,
    `certificates` (CSRs), `coordination` (Leases).
    """

    def __init__(self, api_client: Any, source: ClusterSource) -> None:
        self.api_client = api_client
        self.source = source

    @property
    def server(self) -> str:
        return str(self.api_client.configuration.host)

    @property
    def where(self) -> str:
        return f"{self.server} ({self.source.describe()})"

    @cached_property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @cached_property
    def rbac(self) -> Any:
        from kubernetes import client

        return client.RbacAuthorizationV1Api(self.api_client)

    @cached_property
    def certificates(self) -> Any:
        """certificates.k8s.io/v1: CertificateSigningRequests and their approval and status subresources."""
        from kubernetes import client

        return client.CertificatesV1Api(self.api_client)

    @cached_property
    def coordination(self) -> Any:
        """coordination.k8s.io/v1: the Leases replicas elect a leader on."""
        from kubernetes import client

        return client.CoordinationV1Api(self.api_client)

    def call(self, action: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        kwargs.setdefault("_request_timeout", self.source.request_timeout)
        with self.translating(action):
            return method(*args, **kwargs)

    def stream(self, action: str, watcher: Any, method: Callable[..., Any], **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The events of `watcher.stream(method, **kwargs)` (a kubernetes.watch.Watch), with the
        same typed errors as `call`; kwargs carry the watch's timeout_seconds and _request_timeout.
        An ERROR event (410 Gone when the resourceVersion is too old) raises like an HTTP error."""
        with self.translating(action):
            yield from watcher.stream(method, **kwargs)

    @contextlib.contextmanager
    def translating(self, action: str) -> Iterator[None]:
        """An ApiException or urllib3 error inside becomes the ClusterError saying so."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except ApiException as e:
            if not e.status:
                raise unreachable(e, self.where) from None
            raise api_error(e.status, e.body or e.reason, action, self.where) from None
        except (HTTPError, OSError) as e:
            raise unreachable(e, self.where) from None

    def close(self) -> None:
        self.api_client.close()
