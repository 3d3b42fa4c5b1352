"""`authsvc pki import`: adopt a kubeadm cluster and leave a home from which every command works.

1. Read and check everything first: the PKI tree (pki/kubeadm/import_tree.py), kubeadm's
   kubeconfigs beside it (or in `--kubeconfig-dir`), a kubeadm configuration file when given.
   A problem is one line and nothing is written.
2. Infer the `cluster:` settings (authsvc/adopt/infer.py) and write them into a new authsvc.yaml;
   an existing authsvc.yaml is never rewritten: where it differs, a note says so.
3. Copy the files into the home (or, in place, leave them where they are) and record them.
4. Make what authsvc itself needs and kubeadm does not have: the token signing key's records
   (an existing sa.key is adopted), the webhook's serving certificate, its client CA and the API
   server's client certificate, so that `webhook-config` and `serve` work at once.

Every step says what it did: what was inferred and from where, which kubeconfigs are managed
and which are not (and why), what was created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from authsvc.adopt.cluster_config import read_cluster_config
from authsvc.adopt.infer import Inference, Inferred, infer_cluster
from authsvc.adopt.kubeconfigs import SourceKubeconfig, read_kubeconfigs
from authsvc.adopt.tree import copy_tree, record_tree
from authsvc.errors import UsageError
from authsvc.home.opened import Home, open_home
from authsvc.settings import Settings, load_settings
from authsvc.settings.cluster import ClusterSettings
from pki.clock import Clock
from pki.kubeadm.certlist import control_plane_url
from pki.kubeadm.import_tree import read_kubeadm_tree


@dataclass(frozen=True, slots=True)
class AdoptRequest:
    source: Path  # the kubeadm PKI directory (/etc/kubernetes/pki)
    home_root: Path
    config_path: Path  # authsvc.yaml: read when it exists, else written with what was inferred
    kubeconfig_dir: Path | None = None  # default: the directory above `source`
    cluster_config: Path | None = None  # a kubeadm configuration file
    in_place: bool = False
    force: bool = False


@dataclass
class AdoptionReport:
    home: Path
    source: Path
    in_place: bool
    config_written: bool
    inferred: list[Inferred] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    certificates: int = 0
    copied: list[Path] = field(default_factory=list)
    kubeconfig_dir: Path | None = None
    kubeconfigs: list[str] = field(default_factory=list)  # managed (their certificates are renewed)
    not_managed: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    created: list[Path] = field(default_factory=list)


def adopt(request: AdoptRequest, *, clock: Clock, environ: Mapping[str, str]) -> AdoptionReport:
    source = request.source.resolve()
    _check_mode(request, source)
    tree = read_kubeadm_tree(source)
    kubeconfig_dir = request.kubeconfig_dir or source.parent
    ca = next(c.certificate for c in tree.cas if c.name == "ca")
    kubeconfigs, missing = read_kubeconfigs(kubeconfig_dir, ca)
    config = read_cluster_config(request.cluster_config) if request.cluster_config else {}
    inference = infer_cluster(tree, kubeconfigs, config)
    report = AdoptionReport(
        request.home_root, source, request.in_place, not request.config_path.exists(), kubeconfig_dir=kubeconfig_dir
    )
    cluster = _cluster_settings(inference, report)
    home = _open_home(request, cluster, report, clock=clock, environ=environ)
    if not request.in_place:
        report.copied = copy_tree(home, tree, kubeconfigs, force=request.force)
    report.certificates = record_tree(home, tree, kubeconfigs, home.clock())
    _kubeconfig_report(report, kubeconfigs, missing)
    report.created = _authsvc_pieces(home)
    return report


def _check_mode(request: AdoptRequest, source: Path) -> None:
    own = (request.home_root / "pki").resolve()
    if request.in_place and source != own:
        raise UsageError(
            f"--in-place adopts the home's own pki/: the home is the directory above {source} "
            f"(run `authsvc --home {source.parent} pki import --in-place`)"
        )
    if not request.in_place and source == own:
        raise UsageError(f"{source} is this home's own pki/: that is an in-place adoption, add --in-place")


def _cluster_settings(inference: Inference, report: AdoptionReport) -> ClusterSettings:
    """The inferred values that kubeadm's checks accept (a refused one is a note, not an error)."""
    accepted: dict[str, Any] = {}
    for item in inference.values.values():
        try:
            ClusterSettings.model_validate({item.field: item.value})
        except ValidationError as e:
            problem = str(e.errors()[0]["msg"]).removeprefix("Value error, ")
            report.notes.append(f"not used: cluster.{item.field} {item.value!r} ({item.source}): {problem}")
            continue
        accepted[item.field] = item.value
        report.inferred.append(item)
    cluster = ClusterSettings.model_validate(accepted)
    if "server" not in accepted and "control_plane_endpoint" in accepted:
        server = control_plane_url(cluster.params())
        report.inferred.append(Inferred("server", server, "the control-plane endpoint, as kubeadm derives it"))
        cluster = cluster.model_copy(update={"server": server})
    report.notes += inference.notes
    return cluster


def _open_home(
    request: AdoptRequest, cluster: ClusterSettings, report: AdoptionReport, *, clock: Clock, environ: Mapping[str, str]
) -> Home:
    """The home: a new one written with the inferred settings, or the existing one with notes where
    its authsvc.yaml says otherwise (that file is never rewritten: it may be a read-only ConfigMap)."""
    from authsvc.db.schema import migrate_database_step
    from authsvc.init.steps import initialize_home, write_config_step
    from authsvc.settings.pki import PKISettings

    if request.config_path.exists():
        stored = load_settings(request.config_path)
        if request.in_place and not stored.pki.in_place:
            raise UsageError(f"{request.config_path} does not set pki.in_place: true: add it for an in-place home")
        report.notes += _differences(stored.cluster, report.inferred, request.config_path)
    else:
        settings = Settings(cluster=cluster, pki=PKISettings(in_place=request.in_place))
        initialize_home(
            request.home_root,
            settings,
            clock=clock,
            environ=environ,
            steps=[write_config_step, migrate_database_step],
            config_path=request.config_path,
        )
    return open_home(request.home_root, request.config_path, clock=clock, environ=environ)


def _differences(stored: ClusterSettings, inferred: list[Inferred], config_path: Path) -> list[str]:
    notes = []
    for item in inferred:
        have = getattr(stored, item.field)
        if have != item.value:
            notes.append(
                f"{config_path} has cluster.{item.field}: {have!r}, the imported cluster says {item.value!r} "
                f"({item.source}): edit the file if that is the cluster's (`authsvc pki check` reports what differs)"
            )
    return notes


def _kubeconfig_report(report: AdoptionReport, kubeconfigs: list[SourceKubeconfig], missing: list[str]) -> None:
    report.kubeconfigs = [k.file_name for k in kubeconfigs if k.certificate is not None]
    report.not_managed = [(k.file_name, k.not_managed) for k in kubeconfigs if k.certificate is None]
    where = report.kubeconfig_dir
    report.not_managed += [(name, f"not in {where}") for name in missing]


def _authsvc_pieces(home: Home) -> list[Path]:
    """The token signing key (sa.key adopted, or made) and the webhook's PKI, unless already there."""
    from authsvc.init.signing_key import signing_key_step
    from authsvc.init.steps import InitContext
    from authsvc.init.webhook_pki import webhook_pki_step

    ctx = InitContext(home)
    signing_key_step(ctx)
    webhook_pki_step(ctx)
    return ctx.written
