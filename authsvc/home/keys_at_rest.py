"""Which private keys of a home are encrypted at rest, and why the others are not.

With a key passphrase configured (`pki.key_passphrase_file`, `_env` or `_command`), the keys
that only authsvc reads are encrypted: the CA keys (kubeadm's `ca`, `front-proxy-ca`, `etcd/ca`,
authsvc's `authsvc/webhook-client-ca`, any other CA whose certificate is beside its key). Every
other key stays in clear, 0600, because another program reads it and cannot decrypt it:

- `sa.key` (and `sa-next.key`, which becomes it): kube-apiserver signs with it
  (`--service-account-signing-key-file`), kube-controller-manager too
  (`--service-account-private-key-file`). Encrypting authsvc's copy while the API server reads
  a clear one would protect nothing; keeping one file, in clear and 0600, is said plainly here;
- the leaf keys: kube-apiserver, etcd, the kubelet and granian (`authsvc serve`) read them;
- in an in-place home (`pki.in_place`, a control-plane node's /etc/kubernetes) also `ca.key`:
  kube-controller-manager signs the cluster's CSRs with it (`--cluster-signing-key-file`).

One rule, used by every writer (init, import, CA rollover), by the loader
(`HomeSecrets.load_private_key`), by `authsvc keys encrypt|decrypt` and by `pki check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from authsvc.settings import Settings

SIGNING_KEY_READERS = (
    "kube-apiserver (--service-account-signing-key-file) and kube-controller-manager "
    "(--service-account-private-key-file) read it"
)
CLEAR_BY_NAME = {"sa": SIGNING_KEY_READERS, "sa-next": "it becomes pki/sa.key when activated; " + SIGNING_KEY_READERS}
IN_PLACE_CLEAR = {"ca": "kube-controller-manager signs the cluster's CSRs with it (--cluster-signing-key-file)"}
LEAF_READER = "a TLS key: kube-apiserver, etcd, the kubelet or authsvc serve's granian reads it"


@dataclass(frozen=True, slots=True)
class HomeKey:
    """A private key file under <home>/pki/ and how it is kept at rest."""

    name: str  # base name under pki/: "ca", "etcd/ca", "sa", "authsvc/serving"
    path: Path
    encrypt: bool  # encrypted when a passphrase is configured
    why_clear: str  # who reads it, when it stays in clear ("" for an encrypted one)


def ca_key_encrypted(settings: Settings, name: str) -> bool:
    """Whether CA `name`'s key is encrypted when a passphrase is configured."""
    return not (settings.pki.in_place and name in IN_PLACE_CLEAR)


def home_keys(pki_dir: Path, settings: Settings) -> list[HomeKey]:
    """Every key under `pki_dir` with its rule, in path order. A key with no certificate beside it
    (other than the signing keys) is not authsvc's and is left out."""
    keys = []
    for path in sorted(pki_dir.rglob("*.key")):
        if not path.is_file() or path.is_symlink():
            continue
        name = path.relative_to(pki_dir).with_suffix("").as_posix()
        key = classify(name, path, settings)
        if key is not None:
            keys.append(key)
    return keys


def classify(name: str, path: Path, settings: Settings) -> HomeKey | None:
    if name in CLEAR_BY_NAME:
        return HomeKey(name, path, False, CLEAR_BY_NAME[name])
    certificate = path.with_suffix(".crt")
    if not certificate.is_file():
        return None
    if not _is_ca(certificate):
        return HomeKey(name, path, False, LEAF_READER)
    if not ca_key_encrypted(settings, name):
        return HomeKey(name, path, False, IN_PLACE_CLEAR[name])
    return HomeKey(name, path, True, "")


def _is_ca(certificate: Path) -> bool:
    # Imported here: every command opens a home (and this module), few list its keys.
    from cryptography import x509

    from pki.kubeadm.expiration import is_ca_certificate

    try:
        return is_ca_certificate(x509.load_pem_x509_certificates(certificate.read_bytes())[0])
    except (ValueError, IndexError, OSError):
        return False  # not readable as a certificate: not one of authsvc's CAs
