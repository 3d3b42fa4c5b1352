"""Create-or-update, idempotently, and all-or-nothing as far as the API server lets us know.

`plan` reads each object and decides: create it, update it (only when a field authsvc owns
differs: running twice writes nothing, resourceVersions stay), leave it, or refuse (an object
of the same name that authsvc does not manage and that differs, unless `adopt`).
`execute` first sends every write as a server-side dry run (`dryRun=All`: admission, RBAC
and its escalation checks, validation; nothing stored), and writes only when all of them
passed. So a kubeconfig without the rights, or an invalid object, changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from authsvc.cluster import objects
from authsvc.cluster.errors import ClusterConflict, ClusterNotFound
from authsvc.cluster.objects import MANAGED_BY, MANAGED_BY_LABEL, ObjectRef

if TYPE_CHECKING:
    from authsvc.cluster.connection import ClusterClient


class Action(StrEnum):
    """What happens to one object; the values are kubectl's words."""

    CREATE = "created"
    UPDATE = "configured"
    RECREATE = "replaced"
    UNCHANGED = "unchanged"
    DELETE = "deleted"
    ABSENT = "already absent"

    @property
    def writes(self) -> bool:
        return self in (Action.CREATE, Action.UPDATE, Action.RECREATE, Action.DELETE)


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    ref: ObjectRef
    # The object to write (an update carries the resourceVersion it was planned against).
    body: Any | None = None
    note: str = ""

    def describe(self, *, dry_run: bool = False) -> str:
        where = f" -n {self.ref.namespace}" if self.ref.namespace else ""
        suffix = " (dry run)" if dry_run and self.action.writes else ""
        note = f" ({self.note})" if self.note else ""
        return f"{self.ref.kubectl_name}{where} {self.action.value}{suffix}{note}"


def plan(client: ClusterClient, desired: Sequence[Any], *, adopt: bool = False) -> list[Change]:
    """One Change per desired object; ClusterConflict before anything is written when one is foreign."""
    return [_plan_one(client, obj, adopt=adopt) for obj in desired]


def _plan_one(client: ClusterClient, obj: Any, *, adopt: bool) -> Change:
    ref = ObjectRef.of(obj)
    existing = objects.read(client, ref)
    if existing is None:
        return Change(Action.CREATE, ref, obj)
    current, wanted = objects.serialize(existing), objects.serialize(obj)
    differing = [
        field
        for field in ref.kind.owned
        if objects.owned_fields(ref.kind, current).get(field) != objects.owned_fields(ref.kind, wanted).get(field)
    ]
    managed = objects.is_managed(current)
    if not differing:
        labels_ok = _labels(wanted).items() <= _labels(current).items()
        if labels_ok or not managed:
            # An identical object someone else made is left as it is (no label added either).
            return Change(Action.UNCHANGED, ref, note="" if managed else "exists, not managed by authsvc")
    elif not managed and not adopt:
        raise ClusterConflict(
            f"{ref} exists and is not managed by authsvc (no {MANAGED_BY_LABEL}={MANAGED_BY} label); "
            f"its {', '.join(differing)} differ from what authsvc writes: remove it, or run with --adopt to replace it"
        )
    if any(field in ref.kind.immutable for field in differing):
        return Change(Action.RECREATE, ref, obj)
    return Change(Action.UPDATE, ref, _update_body(obj, existing))


def plan_delete(client: ClusterClient, refs: Sequence[ObjectRef]) -> list[Change]:
    return [Change(Action.DELETE if objects.read(client, ref) is not None else Action.ABSENT, ref) for ref in refs]


def _labels(serialized: Any) -> dict[str, str]:
    return dict((serialized.get("metadata") or {}).get("labels") or {})


def _update_body(desired: Any, existing: Any) -> Any:
    """The desired object over the existing one's metadata: its resourceVersion (so a concurrent
    change is a 409, not lost), its labels and annotations plus ours."""
    body = desired.model_copy(deep=True)
    meta = existing.metadata
    body.metadata.resource_version = meta.resource_version
    body.metadata.labels = {**(meta.labels or {}), **(body.metadata.labels or {})}
    body.metadata.annotations = {**(meta.annotations or {}), **(body.metadata.annotations or {})} or None
    return body


def execute(client: ClusterClient, changes: Sequence[Change], *, dry_run: bool = False) -> None:
    """`check` every write, then (unless `dry_run`) `write` them."""
    check(client, changes)
    if not dry_run:
        write(client, changes)


def check(client: ClusterClient, changes: Sequence[Change]) -> None:
    """Send every write as a server-side dry run: the API server's refusal, if any, before anything is stored."""
    for change in changes:
        try:
            _write(client, change, dry_run=True)
        except ClusterNotFound:
            # A binding's dry run fails when its Role is created by this same batch (the dry
            # run of the Role stored nothing); the real run creates the Role first.
            if not _role_created_in(change, changes):
                raise


def write(client: ClusterClient, changes: Sequence[Change]) -> None:
    """The writes, in order (after `check`)."""
    for change in changes:
        _write(client, change, dry_run=False)


def _write(client: ClusterClient, change: Change, *, dry_run: bool) -> None:
    if change.action is Action.CREATE:
        objects.create(client, change.body, dry_run=dry_run)
    elif change.action is Action.UPDATE:
        objects.replace(client, change.body, dry_run=dry_run)
    elif change.action is Action.DELETE:
        objects.delete(client, change.ref, dry_run=dry_run)
    elif change.action is Action.RECREATE:
        objects.delete(client, change.ref, dry_run=dry_run)
        if not dry_run:  # a dry-run create would find the object its dry-run delete left in place
            objects.create(client, change.body)


def _role_created_in(change: Change, changes: Sequence[Change]) -> bool:
    role_ref = getattr(change.body, "role_ref", None)
    if role_ref is None:
        return False
    return any(
        other.action is Action.CREATE
        and other.ref.kind.name == role_ref.kind
        and other.ref.name == role_ref.name
        and (other.ref.namespace or None) == (change.ref.namespace if role_ref.kind == "Role" else None)
        for other in changes
    )
