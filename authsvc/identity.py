"""Who a credential belongs to: the value every authenticator returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class UserInfo:
    """The identity in a TokenReview's `status.user` (authentication.k8s.io UserInfo)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Audiences the credential is valid for; empty means "the API server's own" (no audience claim).
    audiences: tuple[str, ...] = ()
    # Which backend vouched for it (metrics, audit); never part of the TokenReview answer.
    backend: str = ""

    def as_tokenreview_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"username": self.username, "groups": list(self.groups)}
        if self.uid:
            user["uid"] = self.uid
        if self.extra:
            user["extra"] = {k: list(v) for k, v in self.extra.items()}
        return user
