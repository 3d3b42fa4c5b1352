"""kubelet's probes against the real `authsvc serve` (granian), run as the Deployment runs it.

config/kubernetes/deployment.yaml has kubelet GET /healthz (startup, liveness) and /readyz
(readiness) over HTTPS on the public port, with no client certificate and no server
verification (tests/components/kubelet_probe.py). Here: those probes pass on the public
listener and cannot pass on the webhook listener; /readyz turns 503 while a backend cannot
answer and back without a restart, while /healthz stays 200; and the public listener does not
outlive the webhook listener's process, even when that is killed outright (PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.components.kubelet_probe import kubelet_https_get, probe_succeeds
from tests.components.support import eventually, free_port
from tests.conftest import run_cli
from tests.serve.support import authsvc_serve

SETTLE = 15.0  # a deadline for re-reads and shutdowns, not a sleep
DEPLOYMENT = Path(__file__).resolve().parents[2] / "config" / "kubernetes" / "deployment.yaml"


@dataclass
class Serve:
    home: Path
    process: subprocess.Popen[bytes]
    webhook: int
    public: int

    def probe(self, port: int, path: str) -> int | str:
        return kubelet_https_get("127.0.0.1", port, path)


def deployment_probe_paths() -> dict[str, str]:
    """{probe kind: path} as the Deployment asks them, so the test follows the manifest."""
    container = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]["containers"][0]
    return {kind: container[kind]["httpGet"]["path"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}


@contextlib.contextmanager
def serving(home_template: Path, root: Path) -> Iterator[Serve]:
    """`authsvc serve --bind --public-bind` with a users file (a backend /readyz checks)."""
    home = root / "home"
    shutil.copytree(home_template, home)
    config = home / "authsvc.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["login"]["backends"] = ["users"]  # a backend /readyz checks, easy to break and mend
    config.write_text(yaml.safe_dump(settings))
    added = run_cli(["users", "add", "carol", "--password-stdin"], home=home, input="carol-pw\n")
    assert added.exit_code == 0, added.stderr
    webhook, public = free_port(), free_port()
    with authsvc_serve(home, root / "serve.log", webhook=webhook, public=public) as process:
        yield Serve(home, process, webhook, public)


@pytest.fixture(scope="module")
def server(home_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    with serving(home_template, tmp_path_factory.mktemp("probes")) as served:
        yield served


def test_kubelet_probes_pass_on_the_public_listener(server: Serve) -> None:
    for kind, path in deployment_probe_paths().items():
        answer = server.probe(server.public, path)
        assert answer == 200 and probe_succeeds(answer), (kind, path, answer)


def test_kubelet_probes_cannot_pass_on_the_webhook_listener(server: Serve) -> None:
    """The failing twin: kubelet has no client certificate, so the handshake is refused before
    any path is read. This is why the Deployment probes the public port."""
    for path in set(deployment_probe_paths().values()):
        answer = server.probe(server.webhook, path)
        assert isinstance(answer, str) and not probe_succeeds(answer), (path, answer)  # no HTTP status at all


def test_readyz_fails_while_a_backend_cannot_answer_and_recovers_without_restart(server: Serve) -> None:
    """Readiness takes the pod out of the Service; liveness does not restart it meanwhile."""
    users = server.home / "users.csv"
    good = users.read_bytes()
    try:
        users.write_bytes(b"\x00 this is not a users file \x00\n")
        answer = eventually(lambda: server.probe(server.public, "/readyz"), lambda a: a == 503, timeout=SETTLE)
        assert answer == 503 and not probe_succeeds(answer)
        assert server.probe(server.public, "/healthz") == 200
    finally:
        users.write_bytes(good)
    assert eventually(lambda: server.probe(server.public, "/readyz"), probe_succeeds, timeout=SETTLE) == 200
    assert server.process.poll() is None


def test_public_listener_dies_with_the_webhook_listener(home_template: Path, tmp_path: Path) -> None:
    """SIGKILL leaves the parent no chance to stop its child: PDEATHSIG does (deployment.yaml
    relies on it, with the container's PID 1 as a second line)."""
    with serving(home_template, tmp_path) as served:
        assert served.probe(served.public, "/healthz") == 200
        served.process.kill()
        served.process.wait(timeout=10)
        answer = eventually(
            lambda: served.probe(served.public, "/healthz"), lambda a: not probe_succeeds(a), timeout=10
        )
        assert not probe_succeeds(answer), answer
