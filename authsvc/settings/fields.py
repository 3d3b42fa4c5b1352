"""Field types shared by the configuration sections."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from pki.durations import parse_duration


def _to_timedelta(value: Any) -> Any:
    if isinstance(value, str):
        # "0s" must read back what _from_timedelta writes; fields that need > 0 say so with gt=.
        return parse_duration(value, allow_zero=True)
    if isinstance(value, int | float):
        return dt.timedelta(seconds=value)
    return value


def _from_timedelta(value: dt.timedelta) -> str:
    """The largest exact unit, so authsvc.yaml reads `365d`, not `31536000s`."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def https_url(value: str, what: str) -> str:
    """An issuer or key URL: https, a host, no query or fragment (what OIDC discovery requires)."""
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{what} {value!r} must be an https:// URL without query or fragment")
    return value


Duration = Annotated[dt.timedelta, BeforeValidator(_to_timedelta), PlainSerializer(_from_timedelta, return_type=str)]


class Section(BaseModel):
    """Every configuration model is frozen and refuses unknown keys (typos are errors, not no-ops)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
