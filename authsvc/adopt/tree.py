"""The files of an adopted kubeadm cluster: copied into the home, or, in place, only recorded.

Copy mode (`pki import DIR`): the PKI files go to <home>/pki/ byte for byte (CA keys encrypted
when the home encrypts them at rest), the kubeconfigs to <home>/. A home file with other content
is refused unless `force`, which keeps the replaced files under backups/<time>/. The source is
only read.

In place (`pki import --in-place`, the home is the directory above the PKI directory, e.g.
/etc/kubernetes): nothing is copied or rewritten; the certificates are recorded in the inventory,
and later renewals and rotations write the very files kube-apiserver reads, with backups.

Every certificate is recorded under its kubeadm base name (kubeconfigs under their file name),
`auto_renew` for leaves and embedded kubeconfig certificates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509

from authsvc.adopt.kubeconfigs import SourceKubeconfig
from authsvc.errors import HomeError
from authsvc.home.keys_at_rest import ca_key_encrypted
from authsvc.home.opened import Home
from pki.errors import NotFoundError
from pki.inventory import CertRecord, CertStatus
from pki.keys import is_encrypted_pem, keys_match
from pki.kubeadm.import_tree import KubeadmTree
from pki.profiles import CLIENT, ROOT_CA
from pki.store import KEY_MODE, PendingFile, atomic_write_many, backup_files


def copy_tree(
    home: Home, tree: KubeadmTree, kubeconfigs: Sequence[SourceKubeconfig], *, force: bool = False
) -> list[Path]:
    """Copy the validated tree and kubeconfigs into the home; HomeError when a home file differs (unless `force`)."""
    pki_dir = home.layout.path("pki")
    pending = [PendingFile(pki_dir / f.relative, _pki_data(home, tree, f.relative, f.data), f.mode) for f in tree.files]
    pending += [PendingFile(home.layout.path(k.file_name), k.data, KEY_MODE) for k in kubeconfigs]
    differing = [p for p in pending if p.path.exists() and p.path.read_bytes() != p.data]
    if differing and not force:
        more = f" (and {len(differing) - 1} more)" if len(differing) > 1 else ""
        raise HomeError(
            f"{differing[0].path} already exists with other content{more}: import into a new home, "
            "or use --force (the replaced files are kept under backups/)"
        )
    if differing:
        backup_files([p.path for p in differing], home.layout.backups_dir, home.clock(), relative_to=home.root)
    unchanged = {p.path for p in pending if p.path.exists() and p not in differing}
    return atomic_write_many([p for p in pending if p.path not in unchanged])


def _pki_data(home: Home, tree: KubeadmTree, relative: str, data: bytes) -> bytes:
    """CA keys are encrypted when the home encrypts them at rest (authsvc/home/keys_at_rest.py).
    An encrypted file that already holds the same key is kept as it is (each encryption has a
    salt of its own: encrypting again would make other bytes of the same key)."""
    ca = next((c for c in tree.cas if f"{c.name}.key" == relative), None)
    encrypt = ca is not None and ca_key_encrypted(home.settings, ca.name)
    if ca is None or ca.key is None or not encrypt or not home.settings.pki.passphrase_configured:
        return data
    existing = home.layout.path("pki") / relative
    if existing.is_file() and is_encrypted_pem(existing.read_bytes()):
        held = home.secrets.load_private_key(existing, what=f"{ca.name} key", encrypt=True)
        if keys_match(held, ca.key.public_key()):
            return existing.read_bytes()
    return home.secrets.key_pem(ca.key, encrypt=True)


def record_tree(home: Home, tree: KubeadmTree, kubeconfigs: Sequence[SourceKubeconfig], now: dt.datetime) -> int:
    """Record every certificate not recorded yet (an earlier row of the same name is superseded); how many."""
    records = []
    for cert in tree.certificates:
        is_ca = cert.name == cert.ca
        profile = ROOT_CA.name if is_ca else cert.profile
        records += _new_record(home, cert.certificate, cert.name, cert.ca, profile, auto_renew=not is_ca, now=now)
    for kubeconfig in kubeconfigs:
        if kubeconfig.certificate is not None:
            name = kubeconfig.file_name
            records += _new_record(home, kubeconfig.certificate, name, "ca", CLIENT.name, auto_renew=True, now=now)
    if records:
        home.stores.inventory.add(records)
    return len(records)


def _new_record(
    home: Home, certificate: x509.Certificate, name: str, ca: str, profile: str, *, auto_renew: bool, now: dt.datetime
) -> list[CertRecord]:
    try:
        home.stores.inventory.get(format(certificate.serial_number, "x"))
        return []  # imported before
    except NotFoundError:
        pass
    replaced = [r.serial for r in home.stores.inventory.certificates(status=CertStatus.VALID, name=name)]
    home.stores.inventory.mark_superseded(replaced)
    record = CertRecord.for_certificate(
        certificate, profile=profile, now=now, requester="import", name=name, ca_name=ca, auto_renew=auto_renew
    )
    return [record]
