"""config/apiserver/audit-policy.yaml: what `rbac suggest` needs, and no request or response body.

kube-apiserver loads it in the e2e suite (tests/e2e/cluster.py); this checks its content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

POLICY = Path(__file__).resolve().parents[2] / "config" / "apiserver" / "audit-policy.yaml"


def bodies_recorded(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules that would put request or response bodies (a Secret's data) into the log."""
    return [rule for rule in policy["rules"] if rule["level"] not in ("None", "Metadata")]


def test_the_policy_records_everything_at_metadata_and_no_body() -> None:
    policy = yaml.safe_load(POLICY.read_text())

    assert (policy["apiVersion"], policy["kind"]) == ("audit.k8s.io/v1", "Policy")
    assert bodies_recorded(policy) == []
    # The last rule catches every request the ones before let through: at Metadata.
    assert policy["rules"][-1] == {"level": "Metadata"}
    # RequestReceived only doubles the log; ResponseStarted is an open watch's only stage.
    assert policy["omitStages"] == ["RequestReceived"]


def test_a_request_level_rule_would_be_caught() -> None:
    policy = yaml.safe_load(POLICY.read_text())
    policy["rules"].insert(0, {"level": "RequestResponse", "resources": [{"group": "", "resources": ["secrets"]}]})

    assert len(bodies_recorded(policy)) == 1
