"""At review time a /login token gets the user's groups as they are now, under the signing policy
that applied when it was issued: a privileged group added since then refuses the token."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from authsvc.authn.refreshers import UsersFileIdentityRefresher
from authsvc.identity import UserInfo
from pki.policy import SigningPolicy


class OneUser:
    """The users file's look-up, for one user whose groups the test sets."""

    def __init__(self, groups: tuple[str, ...]) -> None:
        self.entry = SimpleNamespace(uid="1001", groups=groups)

    def lookup(self, name: str) -> Any:
        return self.entry if name == "dana" else None


@pytest.mark.parametrize(
    ("groups", "allowed"),
    [
        (("dev", "ops"), True),
        (("dev", "system:masters"), False),
        (("system:nodes",), False),
        (("kubeadm:cluster-admins",), False),
    ],
)
def test_the_users_file_refresher_applies_the_signing_policy(groups: tuple[str, ...], allowed: bool) -> None:
    refresher = UsersFileIdentityRefresher(OneUser(groups), SigningPolicy())  # type: ignore[arg-type]
    refreshed = refresher(UserInfo("dana", "1001", ("dev",), {}, (), backend="authsvc"))
    assert (refreshed is not None) is allowed
    if refreshed is not None:
        assert refreshed.groups == groups
