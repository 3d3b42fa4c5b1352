"""The session's one control plane (see cluster.py for the wiring): a plugin listed in tests/conftest.py.

tests/e2e and tests/deploy share it: ask for `cluster` by name. Importing the fixture into a
module would start a second kube-apiserver and etcd for that module.

Under CI=true a missing kube-apiserver, etcd or kubectl fails the suite; elsewhere it is
skipped with the reason. When a test that used it fails, its report names every log
(apiserver, etcd, authsvc serve, the webhook's audit log) and shows the servers' last lines.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.components.kube_apiserver import ControlPlaneError, kube_apiserver_binary, kubeadm_binary
from tests.components.support import is_ci, require_binary
from tests.e2e.cluster import E2ECluster, start_cluster

KUBECTL = "/usr/bin/kubectl"


def require_apiserver_binary() -> Path:
    """scripts/kube-apiserver.sh's binary ($KUBE_APISERVER when scripts/test.sh exported it)."""
    try:
        return kube_apiserver_binary()
    except ControlPlaneError as exc:
        message = f"no kube-apiserver binary: {exc}"
        if is_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
        raise  # unreachable: skip raises


def require_kubeadm_binary() -> Path:
    """scripts/kubeadm.sh's binary ($KUBEADM when scripts/test.sh exported it)."""
    try:
        return kubeadm_binary()
    except ControlPlaneError as exc:
        message = f"no kubeadm binary: {exc}"
        if is_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
        raise  # unreachable: skip raises


@pytest.fixture(scope="session")
def kubeadm() -> Path:
    """The real kubeadm v1.20.2, from the same Debian source package as the test kube-apiserver."""
    return require_kubeadm_binary()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    kubectl = require_binary(KUBECTL)
    etcd = require_binary("etcd")
    apiserver = require_apiserver_binary()
    running = start_cluster(tmp_path_factory.mktemp("e2e"), kubectl, apiserver, etcd)
    try:
        yield running
    finally:
        running.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    running = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and isinstance(running, E2ECluster):
        report.sections.append(("e2e logs", running.log_summary()))
    return report
