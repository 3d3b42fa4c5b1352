"""Private keys: generation, PKCS#8 PEM load/save, optional encryption, strength checks."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pki.errors import KeyMaterialError, PolicyError

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

MIN_RSA_BITS = 2048
# Curves that browsers, Go's crypto/tls and kube-apiserver all accept for signatures.
ALLOWED_CURVES = {"secp256r1": 256, "secp384r1": 384}


class KeyType(StrEnum):
    EC_P256 = "ecdsa-p256"
    EC_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"


# The names operators type (`--key-type`, `pki.key_type`), in the order `--help` shows them.
KEY_TYPES: tuple[str, ...] = tuple(k.value for k in KeyType)
PASSPHRASE_SETTINGS = "pki.key_passphrase_file, pki.key_passphrase_env or pki.key_passphrase_command"
# PEM markers of an encrypted key: PKCS#8 (what authsvc writes) and OpenSSL's legacy PKCS#1 form.
ENCRYPTED_PEM_MARKERS = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


def is_encrypted_pem(data: bytes) -> bool:
    """Whether PEM key bytes are encrypted, known without parsing them (so without a passphrase)."""
    head = data[:200]
    return any(marker in head for marker in ENCRYPTED_PEM_MARKERS)


def generate_private_key(key_type: KeyType | str = KeyType.EC_P256) -> PrivateKey:
    kind = KeyType(key_type)
    if kind is KeyType.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if kind is KeyType.EC_P384:
        return ec.generate_private_key(ec.SECP384R1())
    if kind is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    bits = int(kind.value.split("-")[1])
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_to_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM; with a passphrase, encrypted PKCS#8 (PBES2: PBKDF2 + AES-256-CBC, readable by openssl).

    Raises KeyMaterialError for an empty passphrase: writing the key in clear would fail open.
    """
    if passphrase is None:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    elif not passphrase:
        raise KeyMaterialError(f"the key passphrase is empty: put a passphrase in {PASSPHRASE_SETTINGS}")
    else:
        encryption = serialization.BestAvailableEncryption(passphrase)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_private_key_pem(
    data: bytes, passphrase: bytes | None = None, *, source: str = "key", trusted: bool = False
) -> PrivateKey:
    """Parse a PEM private key (PKCS#8, or the PKCS#1/SEC1 files kubeadm and openssl write).

    `trusted`: the key is one authsvc wrote into its own home (0600), or checked when it came in
    (`pki import` loads untrusted). OpenSSL's RSA consistency check (~40 ms for RSA-2048, on every
    `certs create` with kubeadm's RSA CA, per renewal of an RSA leaf) is skipped for those: whoever
    can rewrite such a file could as well replace the key outright.

    Raises KeyMaterialError naming `source` for a missing or wrong passphrase or a file that is no key.
    """
    try:
        key = serialization.load_pem_private_key(data, password=passphrase, unsafe_skip_rsa_key_validation=trusted)
    except TypeError as e:
        if passphrase is None:
            raise KeyMaterialError(f"{source} is encrypted: set its passphrase in {PASSPHRASE_SETTINGS}") from e
        raise KeyMaterialError(
            f"{source} is not encrypted but a key passphrase is configured: encrypt it "
            f"(`authsvc keys encrypt`) or remove {PASSPHRASE_SETTINGS}"
        ) from e
    except (ValueError, UnsupportedAlgorithm) as e:
        hint = "wrong passphrase, or " if passphrase else ""
        raise KeyMaterialError(f"{source}: cannot read the private key ({hint}not a PEM private key)") from e
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyMaterialError(f"{source}: unsupported key algorithm {type(key).__name__}")
    return key


def public_key_pem(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key_pem(data: bytes, *, source: str = "public key") -> PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise KeyMaterialError(f"{source}: not a PEM public key") from e
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise KeyMaterialError(f"{source}: unsupported key algorithm {type(key).__name__}")
    return key


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_fingerprint(key: PublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, hex: how two files are shown to hold one key."""
    return hashlib.sha256(spki_der(key)).hexdigest()


def keys_match(private: PrivateKey, public: PublicKey) -> bool:
    return spki_der(private.public_key()) == spki_der(public)


def describe_key(key: PublicKey) -> str:
    """Human label: `RSA-2048`, `ECDSA-P256`, `Ed25519`."""
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ECDSA-P256", "secp384r1": "ECDSA-P384"}.get(key.curve.name, f"ECDSA-{key.curve.name}")
    return "Ed25519"


def key_type_of(key: PublicKey) -> KeyType:
    """The KeyType of a public key (RSA of its size, its curve); a new key of the same kind uses it."""
    if isinstance(key, rsa.RSAPublicKey):
        return KeyType(f"rsa-{key.key_size}")
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyType.EC_P384 if key.curve.name == "secp384r1" else KeyType.EC_P256
    return KeyType.ED25519


def check_key_strength(key: PublicKey, *, min_rsa_bits: int = MIN_RSA_BITS, min_ec_bits: int = 256) -> None:
    """Raise PolicyError naming the key when it is too weak or of an unsupported curve."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < max(min_rsa_bits, MIN_RSA_BITS):
            raise PolicyError(f"RSA key of {key.key_size} bits is too weak (minimum {max(min_rsa_bits, MIN_RSA_BITS)})")
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = ALLOWED_CURVES.get(key.curve.name)
        if size is None:
            raise PolicyError(f"elliptic curve {key.curve.name} is not supported (use P-256 or P-384)")
        if size < min_ec_bits:
            raise PolicyError(f"EC key of {size} bits is too weak (minimum {min_ec_bits})")
        return
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise PolicyError(f"key algorithm {type(key).__name__} is not supported")


def signature_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    """The hash a CA key signs with: SHA-384 for P-384, none for Ed25519, else SHA-256."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()
