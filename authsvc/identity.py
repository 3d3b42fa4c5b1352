"""Who a credential belongs to: the value every authenticator returns."""

from __future__ import annotations

import unicodedata
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
    # The id of the credential that vouched (an authsvc token's jti), checked against the
    # revocation set on every review, cached or not; never part of the TokenReview answer.
    credential_id: str = ""

    def as_tokenreview_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"username": self.username, "groups": list(self.groups)}
        if self.uid:
            user["uid"] = self.uid
        if self.extra:
            user["extra"] = {k: list(v) for k, v in self.extra.items()}
        return user


def fold_username(name: str) -> str:
    """One spelling per account: directories match names case-insensitively, ignoring extra
    spaces and (slapd's caseIgnoreMatch, RFC 4518) Unicode compatibility forms, so alice in
    fullwidth letters (U+FF41...) is alice. NFKC + casefold gives those spellings one key: a
    login budget, a ban.
    """
    return unicodedata.normalize("NFKC", " ".join(unicodedata.normalize("NFKC", name).split()).casefold())
