"""`rotation:` section: what `authsvc rotate` (the daily cron job) renews, advances and reports, and when."""

from __future__ import annotations

import datetime as dt
from typing import Self

from pydantic import Field, model_validator

from authsvc.settings.fields import Duration, Section


class KeyScheduleSettings(Section):
    """When rotate moves the token signing key through prepare → activate → retire.

    activate: once the active key has signed for `rotate_every`, and only after the prepared
    key was published for `tokens.publish_before_activate` (relying parties cache the JWKS);
    prepare: `prepare_before` ahead of that, so the new public key reaches sa.pub, the JWKS and
    (after a restart) kube-apiserver in time; retire: as soon as the last token the old key
    signed has expired (plus `tokens.leeway`), and never before `tokens.retire_min_wait`.
    """

    # None: rotate never starts a key rotation (it still finishes one an operator started).
    rotate_every: Duration | None = dt.timedelta(days=90)
    prepare_before: Duration = dt.timedelta(days=7)

    @model_validator(mode="after")
    def _prepare_inside_period(self) -> Self:
        if self.rotate_every is not None and self.prepare_before >= self.rotate_every:
            raise ValueError("prepare_before must be shorter than rotate_every")
        return self


class RotationSettings(Section):
    # Renew automatic certificates (kubeadm tree, serving certificates) this long before they
    # expire (at most half their lifetime); report people's certificates inside the same window.
    renew_before: Duration = dt.timedelta(days=30)
    # A CA that expires sooner than this needs a rollover (`authsvc ca rotate`): exit status 3.
    ca_warn_within: Duration = dt.timedelta(days=365)
    keys: KeyScheduleSettings = KeyScheduleSettings()
    # `ca rotate --phase switch` refuses to run sooner than this after prepare (without --force):
    # every API server, etcd member and kubeconfig must trust the new bundle before it signs.
    ca_publish_before_switch: Duration = dt.timedelta(days=1)
    # Re-sign a CA's CRL (pki/<ca>.crl, when there is one) this long before its nextUpdate.
    crl_refresh_before: Duration = dt.timedelta(days=2)
    # Forget certificates and token records that expired longer ago than this, and delete the
    # backups/<time>/ runs taken longer ago than this (they hold replaced private keys).
    retention: Duration = dt.timedelta(days=90)
    # How long a second run waits for the first one's lock before it gives up (exit 1).
    lock_timeout: Duration = dt.timedelta(minutes=5)
    # node_exporter textfile collector output (e.g. /var/lib/node_exporter/textfile_collector/
    # authsvc_rotate.prom); relative paths are relative to the home. None: not written.
    textfile: str | None = None
    # The file `authsvc webhook-config -o FILE` wrote (absolute, or relative to the home): rotate
    # keeps its CA data and the API server's client certificate in it current.
    webhook_kubeconfig: str | None = None
    # How many past runs the inventory keeps (what `serve`'s /metrics reports the last of).
    history: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _positive_windows(self) -> Self:
        for name in ("renew_before", "crl_refresh_before", "retention"):
            if getattr(self, name) <= dt.timedelta(0):
                raise ValueError(f"{name} must be positive")
        return self
