"""`tokens:` section: the issuer and keys of the tokens authsvc signs."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from authsvc.settings.types import Duration, Section


class TokenSettings(Section):
    issuer: str = "https://kubernetes.default.svc.cluster.local"
    algorithm: Literal["RS256", "ES256"] = "RS256"
    sa_ttl: Duration = dt.timedelta(hours=1)
    user_ttl: Duration = dt.timedelta(hours=8)
    max_ttl: Duration = dt.timedelta(days=1)
    # Audience of user tokens; SA tokens default to the issuer, as kube-apiserver's --api-audiences.
    user_audience: str = "authsvc"
    leeway: Duration = dt.timedelta(seconds=30)
