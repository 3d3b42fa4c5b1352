"""config/systemd and config/apiserver: the units verify, the API server snippets name the
flags and files that authsvc really produces."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from authsvc.cli.webhook_config import webhook_flags
from tests.components.support import require_binary

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "config" / "systemd"
APISERVER = REPO / "config" / "apiserver"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((SYSTEMD / name).read_text())
    return parser


@pytest.mark.parametrize(
    ("name", "command"),
    [
        # both listeners: the public one (/login, discovery, probes) is not optional on a host
        ("authsvc.service", "authsvc serve --bind 127.0.0.1:8443 --public-bind 0.0.0.0:8444"),
        ("authsvc-rotate.service", "authsvc rotate"),
    ],
)
def test_services_run_authsvc_unprivileged_and_hardened(name: str, command: str) -> None:
    service = unit(name)["Service"]
    assert service["ExecStart"].endswith(command)
    assert service["User"] not in ("root", "0")
    assert service["Environment"] == "AUTHSVC_HOME=/var/lib/authsvc"
    assert service["EnvironmentFile"].startswith("-/etc/authsvc/")  # secrets live outside the unit
    for key, value in HARDENING.items():
        assert service[key] == value, key


def test_rotate_timer_runs_daily_and_catches_up() -> None:
    timer = unit("authsvc-rotate.timer")["Timer"]
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", timer["OnCalendar"])
    assert timer["Persistent"] == "yes"
    assert unit("authsvc-rotate.timer")["Install"]["WantedBy"] == "timers.target"


def verify(units: list[Path]) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # a linter here, not a component the suite runs against
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run([analyze, "verify", "--man=no", *map(str, units)], capture_output=True, text=True)


def installed_copy(tmp_path: Path, name: str, text: str | None = None) -> Path:
    """The unit with ExecStart pointing at this checkout's authsvc (verify checks the binary)."""
    authsvc = Path(sys.executable).parent / "authsvc"
    copy = tmp_path / name
    copy.write_text((text or (SYSTEMD / name).read_text()).replace("/opt/authsvc/bin/authsvc", str(authsvc)))
    return copy


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    names = ["authsvc.service", "authsvc-rotate.service", "authsvc-rotate.timer"]
    result = verify([installed_copy(tmp_path, name) for name in names])
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_systemd_analyze_catches_a_bad_directive(tmp_path: Path) -> None:
    text = (SYSTEMD / "authsvc.service").read_text().replace("ProtectSystem=strict", "ProtectSystem=bogus")
    result = verify([installed_copy(tmp_path, "authsvc.service", text)])
    assert "protect system value" in result.stderr and "bogus" in result.stderr


def flags() -> dict[str, str]:
    lines = (APISERVER / "kube-apiserver.flags").read_text().splitlines()
    pairs = [line.removeprefix("--").split("=", 1) for line in lines if line.startswith("--")]
    return dict((k, v) for k, v in pairs)


def test_apiserver_flags_cover_the_wiring() -> None:
    assert {
        "authentication-token-webhook-config-file",
        "authentication-token-webhook-version",
        "authentication-token-webhook-cache-ttl",
        "client-ca-file",
        "service-account-key-file",
        "service-account-signing-key-file",
        "service-account-issuer",
    } <= flags().keys()
    assert flags()["authentication-token-webhook-version"] == "v1"


def test_apiserver_flags_are_what_webhook_config_prints() -> None:
    import datetime as dt

    ours = flags()
    printed = webhook_flags(ours["authentication-token-webhook-config-file"], dt.timedelta(seconds=30))
    for flag in printed:
        name, value = flag.removeprefix("--").split("=", 1)
        assert ours[name] == value


def test_kubeadm_snippet_sets_the_same_flags() -> None:
    document = yaml.safe_load((APISERVER / "kubeadm-apiserver.yaml").read_text())
    extra_args = document["apiServer"]["extraArgs"]
    assert extra_args.items() <= flags().items()
    mounted = {v["mountPath"] for v in document["apiServer"]["extraVolumes"]}
    assert extra_args["authentication-token-webhook-config-file"] in mounted


@pytest.mark.kubectl
def test_webhook_config_template_is_a_kubeconfig_kubectl_reads() -> None:
    kubectl = require_binary("kubectl")
    template = APISERVER / "webhook-config.template.yaml"
    result = subprocess.run(
        [str(kubectl), "config", "view", "--kubeconfig", str(template), "-o", "jsonpath={.clusters[0].cluster.server}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://") and result.stdout.endswith("/authenticate")
    document = yaml.safe_load(template.read_text())
    assert document["users"][0]["user"]["client-certificate"].endswith("apiserver-webhook-client.crt")
