"""The `authsvc init` step that makes the first token signing key (pki/sa.key, pki/sa.pub).

Keys live in kubeadm's names (`pki/sa.key`, `pki/sa.pub`, plus `pki/sa-next.key` while a
rotation is prepared); their states, the issued tokens and the denylist in the inventory
(the token service: authsvc/home/stores.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from authsvc.errors import HomeError
from pki.tokens.signing_keys import KeyState

if TYPE_CHECKING:
    from authsvc.init.steps import InitContext


def signing_key_step(ctx: InitContext) -> None:
    """Init step: the first active signing key as pki/sa.key + pki/sa.pub, unless one exists
    (an existing sa.key, e.g. from a kubeadm tree, is adopted as the active key)."""
    files = ctx.home.stores.signing_key_files
    if not files.active_key.exists() and files.public_bundle.exists():
        raise HomeError(f"{files.public_bundle} exists without {files.active_key}: restore it or remove both")
    if files.active_key.exists():
        if not ctx.dry_run:
            ctx.home.stores.token_service.ensure_active_key()
        return
    algorithm = ctx.home.settings.tokens.algorithm
    if not ctx.plan(f"create the token signing key {files.active_key} and {files.public_bundle} ({algorithm})"):
        return
    service = ctx.home.stores.token_service
    active = [k for k in service.key_records() if k.state is KeyState.ACTIVE]
    if active:
        raise HomeError(
            f"the inventory's active signing key {active[0].kid} has no {files.active_key}: restore it from a backup"
        )
    service.ensure_active_key()
    ctx.written += [files.active_key, files.public_bundle]
