"""Creating a home: the steps `authsvc init` runs, each idempotent and each a small function.

A step gets the `InitContext` and returns the paths it wrote. Steps are listed in
`INIT_STEPS` in the order they run; another module adds a step by adding one line there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from authsvc.db.schema import migrate_database_step
from authsvc.errors import HomeError
from authsvc.home.keys_at_rest import ca_key_encrypted
from authsvc.home.layout import CONFIG_NAME, HomeLayout, pki_path
from authsvc.home.opened import Home
from authsvc.init.kubeadm_tree import ensure_kubeadm_ca, kubeadm_cas_step, kubeadm_certs_step, kubeadm_kubeconfigs_step
from authsvc.init.signing_key import signing_key_step
from authsvc.init.webhook_pki import webhook_pki_step
from authsvc.settings import Settings, settings_to_yaml
from pki.ca import CertificateAuthority
from pki.clock import Clock, system_clock
from pki.keys import KeyType
from pki.names import SubjectAltNames
from pki.profiles import ROOT_CA, Profile
from pki.store import DIR_MODE, KEY_MODE, atomic_write, ensure_dir, write_certificates


@dataclass
class InitContext:
    home: Home
    dry_run: bool = False
    written: list[Path] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)

    @property
    def now(self) -> dt.datetime:
        return self.home.clock()

    def plan(self, description: str) -> bool:
        """Record a step; True when it should really be done (not a dry run)."""
        self.planned.append(description)
        return not self.dry_run


InitStep = Callable[[InitContext], None]

# Where scripts/run.sh and the docs put the public listener (the serving certificate that init
# makes names 127.0.0.1).
DEFAULT_PUBLIC_BIND = "127.0.0.1:8444"
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 - names to recognise, not to bind


def with_public_listener(settings: Settings) -> Settings:
    """The settings a new configuration file is written with: the public listener on
    server.public_bind (127.0.0.1:8444 when there is none: `authsvc serve` then answers /login,
    discovery and the probes out of the box) and its server.public_url written down (discovery
    and exec-mode kubeconfigs publish it, and nothing guesses it from requests). A wildcard bind
    leaves public_url unset: only the operator knows the name clients use, and `authsvc serve`
    says so at start."""
    server = settings.server
    public_bind = server.public_bind or DEFAULT_PUBLIC_BIND
    host, _, _ = public_bind.rpartition(":")
    update: dict[str, str] = {"public_bind": public_bind}
    if server.public_url is None and host not in WILDCARD_HOSTS:
        update["public_url"] = f"https://{public_bind}"
    return settings.model_copy(update={"server": server.model_copy(update=update)})


def write_config_step(ctx: InitContext) -> None:
    if ctx.home.layout.config_path.exists():
        return
    if ctx.plan(f"write {ctx.home.layout.config_path}"):
        ctx.written.append(
            atomic_write(ctx.home.layout.config_path, settings_to_yaml(ctx.home.settings).encode(), 0o600)
        )


def ensure_ca(
    ctx: InitContext,
    name: str,
    common_name: str,
    *,
    key_type: KeyType | str | None = None,
    profile: Profile = ROOT_CA,
    sans: SubjectAltNames | None = None,
) -> CertificateAuthority | None:
    """Create CA `name` (kubeadm file names) unless it exists; return it (None on a dry run).

    `key_type` defaults to pki.ca_key_type; kubeadm's CAs pass cluster.encryption_algorithm's.
    """
    cert_file, key_file = pki_path(ctx.home.root, name, "crt"), pki_path(ctx.home.root, name, "key")
    if cert_file.exists() and key_file.exists():
        return ctx.home.stores.load_ca(name)
    if cert_file.exists() or key_file.exists():
        raise HomeError(f"{cert_file} or {key_file} exists without the other: restore it or remove both")
    if not ctx.plan(f"create CA {name} ({common_name})"):
        return None
    pki = ctx.home.settings.pki
    ca = CertificateAuthority.create_root(
        common_name, now=ctx.now, key_type=key_type or pki.ca_key_type, ttl=pki.ca_ttl, profile=profile, sans=sans
    )
    key_pem = ctx.home.secrets.key_pem(ca.key, encrypt=ca_key_encrypted(ctx.home.settings, name))
    ctx.written.append(atomic_write(key_file, key_pem, KEY_MODE))
    ctx.written.append(write_certificates(cert_file, [ca.certificate]))
    ctx.home.stores.inventory.record(
        ca.certificate, profile="root-ca", now=ctx.now, name=name, ca_name=name, requester="init"
    )
    return ca


def cluster_ca_step(ctx: InitContext) -> None:
    # kubeadm's cluster CA: CN "kubernetes", key per cluster.encryption_algorithm (RSA-2048 by default).
    ensure_kubeadm_ca(ctx, "ca")


INIT_STEPS: list[InitStep] = [
    write_config_step,
    migrate_database_step,
    cluster_ca_step,
    kubeadm_cas_step,
    kubeadm_certs_step,
    kubeadm_kubeconfigs_step,
    signing_key_step,
    webhook_pki_step,
]


def initialize_home(
    root: Path,
    settings: Settings,
    *,
    clock: Clock = system_clock,
    environ: Mapping[str, str] | None = None,
    dry_run: bool = False,
    steps: list[InitStep] | None = None,
    config_path: Path | None = None,
) -> InitContext:
    """Create (or complete) a home. Existing files are kept: running init twice changes nothing.

    `config_path`: where the configuration lives (default <root>/authsvc.yaml); written there
    only when it does not exist yet."""
    config_path = config_path or root / CONFIG_NAME
    if not config_path.exists():
        settings = with_public_listener(settings)
    if not dry_run:
        ensure_dir(root, DIR_MODE)
        ensure_dir(root / "pki", DIR_MODE)
    home = Home.of(HomeLayout.at(root, config_path), settings, clock=clock, environ=dict(environ or {}))
    ctx = InitContext(home, dry_run)
    for step in steps or INIT_STEPS:
        step(ctx)
    return ctx
