"""StartTLS and LDAPS with a server certificate from authsvc's own CA (pki library), verified.

Every success has a twin that must fail: another CA, the system trust store, a certificate
for another host name, StartTLS against a server without TLS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from authsvc.errors import BackendUnavailable
from authsvc.ldap.service import LDAPService
from pki.ca import CertificateAuthority
from pki.keys import generate_private_key
from pki.names import SubjectAltNames, common_name_subject
from pki.profiles import SERVER
from pki.store import write_certificates, write_private_key
from tests.components.slapd import Slapd
from tests.ldap.fixtures import ldap_service, ldap_settings, require_slapd

pytestmark = pytest.mark.slapd


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path
    wrong_name_cert: Path
    wrong_name_key: Path


def _leaf(ca: CertificateAuthority, folder: Path, name: str, sans: list[str], now: dt.datetime) -> tuple[Path, Path]:
    key = generate_private_key()
    cert = ca.issue(
        subject=common_name_subject(name),
        public_key=key.public_key(),
        profile=SERVER,
        now=now,
        sans=SubjectAltNames.parse(sans),
    )
    return write_certificates(folder / f"{name}.crt", [cert]), write_private_key(folder / f"{name}.key", key)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    folder = tmp_path_factory.mktemp("ldap-tls")
    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority.create_root("authsvc test CA", now=now)
    other = CertificateAuthority.create_root("someone else's CA", now=now)
    cert, key = _leaf(ca, folder, "ldap-server", ["DNS:localhost", "IP:127.0.0.1"], now)
    wrong_cert, wrong_key = _leaf(ca, folder, "elsewhere", ["DNS:ldap.elsewhere.example"], now)
    return TLSFiles(
        write_certificates(folder / "ca.crt", [ca.certificate]),
        write_certificates(folder / "other-ca.crt", [other.certificate]),
        cert,
        key,
        wrong_cert,
        wrong_key,
    )


@pytest.fixture(scope="module")
def tls_slapd(tls_files: TLSFiles) -> Iterator[Slapd]:
    require_slapd()
    with Slapd(tls_cert=tls_files.cert, tls_key=tls_files.key, tls_ca=tls_files.ca) as server:
        yield server


def _service(server_urls: list[str], ca_file: Path | None, **overrides: object) -> LDAPService:
    values: dict[str, object] = {
        "start_tls": True,
        "allow_plaintext": False,
        "ca_file": str(ca_file) if ca_file else None,
    }
    settings = ldap_settings(server_urls, **{**values, **overrides})
    return ldap_service(settings, home_root=Path("/"))


def _login_works(service: LDAPService) -> bool:
    user = service.find_user("alice")
    return user is not None and service.check_password(user.dn, "alice-pw")


def test_start_tls_verified_with_authsvcs_ca(tls_slapd: Slapd, tls_files: TLSFiles) -> None:
    for host in ("127.0.0.1", "localhost"):
        service = _service([f"ldap://{host}:{tls_slapd.port}"], tls_files.ca)
        assert _login_works(service)
        with service.directory._search_pool.connection() as conn:
            assert conn.tls_started and conn.socket.version() in ("TLSv1.2", "TLSv1.3")
        service.close()


def test_ldaps_verified_with_authsvcs_ca(tls_slapd: Slapd, tls_files: TLSFiles) -> None:
    assert tls_slapd.ldaps_url is not None
    service = _service([tls_slapd.ldaps_url], tls_files.ca, start_tls=False)
    assert _login_works(service)
    assert service.find_user("alice").server == tls_slapd.ldaps_url  # type: ignore[union-attr]
    service.close()


@pytest.mark.parametrize("ldaps", [False, True], ids=["starttls", "ldaps"])
def test_another_ca_or_the_system_store_is_refused(tls_slapd: Slapd, tls_files: TLSFiles, ldaps: bool) -> None:
    url = tls_slapd.ldaps_url if ldaps else tls_slapd.url
    assert url is not None
    for ca_file in (tls_files.other_ca, None):
        service = _service([url], ca_file, start_tls=not ldaps)
        with pytest.raises(BackendUnavailable):
            service.find_user("alice")
        assert not service.ready()


def test_a_certificate_for_another_host_is_refused(tls_files: TLSFiles) -> None:
    require_slapd()
    with Slapd(tls_cert=tls_files.wrong_name_cert, tls_key=tls_files.wrong_name_key, ldaps=False) as server:
        service = _service([server.url], tls_files.ca)
        with pytest.raises(BackendUnavailable):
            service.find_user("alice")


def test_start_tls_against_a_server_without_tls_fails_closed(directory_server: Slapd, tls_files: TLSFiles) -> None:
    service = _service([directory_server.url], tls_files.ca)
    with pytest.raises(BackendUnavailable):
        service.find_user("alice")
