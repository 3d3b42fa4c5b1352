"""`authsvc rotate` reissues a certificate that drifted from the settings that shape it, due or
not, and a kubeconfig that embeds it follows; the next run has nothing to do."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from authsvc.home.opened import Home
from pki.names import SubjectAltNames
from pki.store import load_certificates
from tests.conftest import run_cli
from tests.rotate.support import T0

NEW_SANS = ["DNS:localhost", "IP:127.0.0.1", "DNS:authsvc.rotate.test"]


def rotate(home: Home) -> tuple[int, list[dict[str, Any]]]:
    result = run_cli(["--now", T0.isoformat(), "rotate", "-o", "json"], home=home.root)
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)["actions"]


def test_rotate_reissues_a_drifted_certificate_once(home_copy: Callable[..., Home]) -> None:
    home = home_copy(server={"serving_sans": NEW_SANS}, rotation={"webhook_kubeconfig": "webhook.conf"})
    code, actions = rotate(home)
    assert code == 0, actions
    (reissue,) = [a for a in actions if a["kind"] == "reissue"]
    assert reissue["target"] == "authsvc/serving" and reissue["status"] == "done"
    assert "drift: SANs lack DNS:authsvc.rotate.test" in reissue["reason"]
    assert reissue["detail"].startswith("reissued to match the configuration (SANs): serial ")
    cert = load_certificates(home.layout.cert_path("authsvc/serving"))[0]
    assert set(SubjectAltNames.from_certificate_like(cert.extensions).as_strings()) == set(NEW_SANS)
    assert rotate(home) == (0, []), "the twin: nothing drifted any more"


def test_a_reissued_webhook_client_certificate_reaches_the_webhook_kubeconfig(home_copy: Callable[..., Home]) -> None:
    home = home_copy(rotation={"webhook_kubeconfig": "webhook.conf"})
    assert run_cli(["webhook-config", "-o", str(home.root / "webhook.conf")], home=home.root).exit_code == 0
    config = yaml.safe_load((home.root / "authsvc.yaml").read_text())
    config["pki"]["key_type"] = "ecdsa-p384"  # the webhook client certificate's key type drifts
    (home.root / "authsvc.yaml").write_text(yaml.safe_dump(config))
    code, actions = rotate(home)
    assert code == 0, actions
    kinds = [(a["kind"], a["target"]) for a in actions]
    assert ("reissue", "authsvc/apiserver-webhook-client") in kinds and ("kubeconfig", "webhook.conf") in kinds
    embedded = yaml.safe_load((home.root / "webhook.conf").read_text())["users"][0]["user"]["client-certificate-data"]
    import base64

    assert base64.b64decode(embedded) == home.layout.cert_path("authsvc/apiserver-webhook-client").read_bytes()
