"""External issuers with `groups_from_ldap`: directory groups added at review time, real slapd.

Every review goes through create_app (the chain is built before the login wiring registers
the directory group lookup) and POST /authenticate.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from authsvc.authn.base import ChainContext
from authsvc.authn.chain import build_chain
from authsvc.errors import ConfigError
from authsvc.home.opened import Home
from authsvc.settings import settings_from_mapping
from tests.components.slapd import Group, Slapd, user_dn
from tests.login.fixtures import MakeHome
from tests.webhook.jwks import Issuer
from tests.webhook.support import review_body

IDP = "https://idp.example"  # groups_from_ldap: true
TWIN = "https://twin.example"  # the same mappings, groups_from_ldap: false
AppFor = Callable[[Home], Flask]


@dataclasses.dataclass
class World:
    home: Home
    idp: Issuer  # IDP's signing keys
    twin: Issuer


def issuer_home(make_home: MakeHome, server: Slapd, *, ldap: dict[str, Any] | None = None, **login: Any) -> World:
    """A login home (the directory, fast caches) whose webhook trusts IDP and TWIN (static JWKS)."""
    base = make_home(server, ldap=ldap, **login)
    signers, issuers = [], []
    for url, from_ldap in ((IDP, True), (TWIN, False)):
        signers.append(Issuer(url))
        jwks = f"{url.removeprefix('https://')}-jwks.json"
        (base.root / jwks).write_text(json.dumps(signers[-1].jwks()))
        issuers.append(
            {
                "url": url,
                "audiences": ["kubernetes"],
                "jwks_file": jwks,
                "username_prefix": "oidc:",
                "groups_prefix": "oidc:",
                "groups_from_ldap": from_ldap,
            }
        )
    config = base.settings.model_dump(mode="json")
    config["authn"]["issuers"] = issuers
    return World(dataclasses.replace(base, settings=settings_from_mapping(config)), *signers)


def review(app: Flask, token: str) -> dict[str, Any]:
    response = app.test_client().post("/authenticate", json=review_body(token))
    assert response.status_code == 200, response.data
    status: dict[str, Any] = response.get_json()["status"]
    return status


def groups(status: dict[str, Any]) -> list[str]:
    assert status["authenticated"] is True, status
    user: dict[str, Any] = status["user"]
    return list(user["groups"])


@pytest.fixture
def world(make_home: MakeHome, directory_server: Slapd) -> World:
    """On the shared directory (read only)."""
    return issuer_home(make_home, directory_server)


def test_directory_groups_follow_the_token_groups(world: World, app_for: AppFor) -> None:
    app, idp, twin = app_for(world.home), world.idp, world.twin
    status = review(app, idp.token({"sub": "alice", "groups": ["team-a"]}))
    # Looked up as "alice" (the claim, before username_prefix); no groups_prefix on "dev".
    assert status["user"]["username"] == "oidc:alice"
    assert groups(status) == ["oidc:team-a", "dev"]
    assert groups(review(app, twin.token({"sub": "alice", "groups": ["team-a"]}))) == ["oidc:team-a"]
    assert groups(review(app, idp.token({"sub": "carol"}))) == ["ops"]


def test_a_user_unknown_to_the_directory_keeps_the_token_groups(world: World, app_for: AppFor) -> None:
    status = review(app_for(world.home), world.idp.token({"sub": "stranger", "groups": ["team-a"]}))
    assert status["user"]["username"] == "oidc:stranger"
    assert groups(status) == ["oidc:team-a"]


def test_reserved_directory_groups_are_not_added(make_home: MakeHome, private_slapd: Slapd, app_for: AppFor) -> None:
    private_slapd.add_groups(Group("system:masters", (user_dn("alice"),)))
    world = issuer_home(make_home, private_slapd)
    assert groups(review(app_for(world.home), world.idp.token({"sub": "alice", "groups": ["team-a"]}))) == [
        "oidc:team-a",
        "dev",
    ]


def test_the_directory_down_fails_the_review_closed(make_home: MakeHome, private_slapd: Slapd, app_for: AppFor) -> None:
    world = issuer_home(make_home, private_slapd)
    app, idp, twin = app_for(world.home), world.idp, world.twin
    private_slapd.stop()
    status = review(app, idp.token({"sub": "alice", "groups": ["team-a"]}))
    assert status["authenticated"] is False
    assert "issuers" in status["error"]
    assert "user" not in status or not status["user"]
    # Only the issuer that asks the directory is affected.
    assert groups(review(app, twin.token({"sub": "alice", "groups": ["team-a"]}))) == ["oidc:team-a"]
    private_slapd.start()
    assert groups(review(app, idp.token({"sub": "alice", "groups": ["team-a"]}))) == ["oidc:team-a", "dev"]


def test_groups_from_ldap_without_ldap_refuses_to_start(
    make_home: MakeHome, directory_server: Slapd, app_for: AppFor
) -> None:
    home = issuer_home(make_home, directory_server, ldap={"enabled": False}, backends=("users",)).home
    for build in (lambda: build_chain(ChainContext.of(home)), lambda: app_for(home)):
        with pytest.raises(ConfigError) as raised:
            build()
        message = str(raised.value)
        assert IDP in message and "ldap.enabled" in message and "\n" not in message
