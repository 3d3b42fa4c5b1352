"""Where the home's certificates differ from what the settings say (`expected`).

A certificate has drifted when:
- `sans`: its SANs are not the expected ones (for etcd's: lack one of them);
- `subject`: its CN is not the node name the settings give (etcd's certificates, kubelet.conf);
- `lifetime`: it would outlive a certificate made now with the configured lifetime (lowering a
  lifetime reissues what lives longer; raising one takes effect at the next renewal, which uses it);
- `key-type`: its key is not of the configured type.

Only certificates signed by the home's CA of that name are compared: a file an operator put in
place of authsvc's (a serving certificate from their own CA, say) is theirs, never reissued.
Missing files, kubeconfigs whose client certificate is a file of its own (the kubelet's, which it
rotates itself) and unreadable files are not drift: `check-expiration` and `pki check` report them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509

from authsvc.drift.expected import Expected, expected_certificates
from authsvc.errors import AuthsvcError
from authsvc.kubeconfig.documents import current_entries, decoded, load_kubeconfig
from pki.durations import format_duration
from pki.errors import PKIError
from pki.issued_by import issued_by
from pki.keys import key_type_of
from pki.names import SubjectAltNames, subject_user

if TYPE_CHECKING:
    from authsvc.home.opened import Home

# notAfter later than now + lifetime by more than this is drift (clock and rounding slack).
LIFETIME_SLACK = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Drift:
    """One way a certificate differs from its settings."""

    expected: Expected
    aspect: str  # sans | subject | lifetime | key-type
    have: str
    want: str

    @property
    def setting(self) -> str:
        shaped = {
            "sans": self.expected.sans,
            "subject": self.expected.common_name,
            "lifetime": self.expected.lifetime,
            "key-type": self.expected.key_type,
        }[self.aspect]
        assert shaped is not None
        return shaped.setting

    def describe(self) -> str:
        """`SANs lack DNS:x (server.serving_sans: DNS:x, DNS:localhost)`: what differs, and what the settings say."""
        return f"{self.have} ({self.setting}: {self.want})"

    @property
    def fix(self) -> str:
        if self.expected.is_ca:
            command = f"authsvc ca rotate --phase prepare --ca {self.expected.record_name}"
            return f"a CA changes through a rollover: `{command}`"
        return f"`authsvc certs renew {self.expected.name}` (or `authsvc rotate`) reissues it to match"


def detect_drift(home: Home, *, include_cas: bool = True) -> list[Drift]:
    """Every drift of the home's certificates at the home's clock, in the order of `expected`."""
    now = home.clock()
    found: list[Drift] = []
    cas = _CACertificates(home)
    for expected in expected_certificates(home.layout, home.settings):
        if expected.is_ca and not include_cas:
            continue
        cert = read_certificate(expected)
        if cert is not None and (expected.is_ca or cas.signed(cert, expected.ca)):
            found += drift_of(expected, cert, now)
    return found


class _CACertificates:
    """The home's CA certificates (every one of a rollover's bundle), each file read once."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._loaded: dict[str, list[x509.Certificate]] = {}

    def signed(self, cert: x509.Certificate, ca: str) -> bool:
        if ca not in self._loaded:
            path = self.home.layout.cert_path(ca)
            try:
                self._loaded[ca] = x509.load_pem_x509_certificates(path.read_bytes()) if path.is_file() else []
            except (ValueError, OSError):
                self._loaded[ca] = []
        return any(issued_by(cert, candidate) for candidate in self._loaded[ca])


def read_certificate(expected: Expected) -> x509.Certificate | None:
    """The certificate in the file (embedded in the kubeconfig); None when there is none to compare."""
    if not expected.path.is_file():
        return None
    try:
        if not expected.in_kubeconfig:
            return x509.load_pem_x509_certificates(expected.path.read_bytes())[0]
        _, user = current_entries(load_kubeconfig(expected.path), expected.path)
        data = decoded(user, "client-certificate-data")
        return x509.load_pem_x509_certificate(data) if data else None
    except (AuthsvcError, PKIError, ValueError, OSError, IndexError, KeyError, TypeError):
        return None  # unreadable: pki check and check-expiration report it


def drift_of(expected: Expected, cert: x509.Certificate, now: dt.datetime) -> list[Drift]:
    found = []
    if expected.sans is not None:
        found += _san_drift(expected, cert, expected.sans.value)
    if expected.common_name is not None:
        common_name, _ = subject_user(cert.subject)
        if common_name != expected.common_name.value:
            found.append(Drift(expected, "subject", f"CN={common_name}", f"CN={expected.common_name.value}"))
    lifetime = expected.lifetime.value
    if cert.not_valid_after_utc > now + lifetime + LIFETIME_SLACK:
        have = f"expires {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
        found.append(Drift(expected, "lifetime", have, f"at most {format_duration(lifetime)} from now"))
    key_type = key_type_of(cert.public_key())  # type: ignore[arg-type]
    if key_type != expected.key_type.value:
        found.append(Drift(expected, "key-type", f"a {key_type.value} key", expected.key_type.value))
    return found


def _san_drift(expected: Expected, cert: x509.Certificate, want: SubjectAltNames) -> list[Drift]:
    have = set(SubjectAltNames.from_certificate_like(cert.extensions).as_strings())
    wanted = set(want.as_strings())
    missing = sorted(wanted - have)
    extra = [] if expected.keep_other_sans else sorted(have - wanted)
    if not missing and not extra:
        return []
    parts = ([f"SANs lack {', '.join(missing)}"] if missing else []) + ([f"have {', '.join(extra)}"] if extra else [])
    return [Drift(expected, "sans", "; ".join(parts), f"{', '.join(want.as_strings()) or 'none'}")]


def target_sans(expected: Expected, cert: x509.Certificate) -> SubjectAltNames | None:
    """The SANs a reissue gives the certificate: the expected ones, plus what the file has beyond
    them where no setting covers it (etcd's); None when no setting shapes them (keep the file's)."""
    if expected.sans is None:
        return None
    if not expected.keep_other_sans:
        return expected.sans.value
    have = SubjectAltNames.from_certificate_like(cert.extensions)
    want = expected.sans.value
    return SubjectAltNames(
        tuple(sorted({*want.dns, *have.dns})),
        tuple(dict.fromkeys([*want.ips, *have.ips])),
        have.uris,
        have.emails,
    )
