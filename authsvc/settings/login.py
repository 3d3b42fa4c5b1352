"""`login:` section: the /login endpoint, its backends and rate limits."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator

from authsvc.settings.fields import Duration, Section

LoginBackendName = Literal["ldap", "users"]


class LoginSettings(Section):
    # Tried in this order; the first backend that knows the user decides (no fall-through on
    # a wrong password). Empty: /login is switched off (404).
    backends: tuple[LoginBackendName, ...] = ()
    # Lifetime of the tokens /login hands out; unset: tokens.user_ttl.
    token_ttl: Duration | None = None
    # Lifetime of the client certificates /login signs (`authsvc login --credential certificate`,
    # kubeconfigs from `authsvc issue --mode exec-cert`): the API server never checks revocation,
    # so this is how long a revoked person's certificate can still be used. At most 1 day.
    certificate_ttl: Duration = dt.timedelta(minutes=15)
    # Static users file (backend "users"), relative to the home; `authsvc users add` manages it.
    users_file: str = "users.csv"
    # Failed logins allowed per user name and per client address within `failure_window`;
    # one more and every attempt (even a correct one) gets 429 until the window ends.
    max_failures_per_user: int = Field(5, ge=1)
    max_failures_per_address: int = Field(20, ge=1)
    failure_window: Duration = dt.timedelta(minutes=15)
    # Longer names are refused before the directory is asked (no directory has such names).
    max_username_length: int = Field(256, ge=1, le=4096)

    @field_validator("certificate_ttl")
    @classmethod
    def _check_certificate_ttl(cls, ttl: dt.timedelta) -> dt.timedelta:
        if not dt.timedelta(minutes=1) <= ttl <= dt.timedelta(days=1):
            raise ValueError("must be between 1m and 24h: a login's certificate is meant to be short-lived")
        return ttl

    @field_validator("backends")
    @classmethod
    def _check_unique(cls, backends: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(backends)) != len(backends):
            raise ValueError("each backend may be listed once")
        return backends
