"""Proof that the component fixtures work: a real slapd and a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest
import sqlalchemy as sa
from ldap3.core.exceptions import (
    LDAPException,
    LDAPInvalidCredentialsResult,
    LDAPSocketOpenError,
    LDAPSocketReceiveError,
)
from ldap3.utils.conv import escape_filter_chars

from .postgres import Postgres
from .slapd import (
    ADMIN_DN,
    BASE_DN,
    GROUPS_DN,
    PEOPLE_DN,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Group,
    Slapd,
    User,
    group_dn,
    parse_ldif,
    seed_ldif,
    user_dn,
)
from .support import free_port, require_binary, wait_for_port

# --- support ---------------------------------------------------------------------------------


def test_free_port_and_wait_for_port() -> None:
    port = free_port()
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", port, timeout=0.2)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        wait_for_port("127.0.0.1", port, timeout=2)


def test_require_binary_fails_under_ci_and_skips_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require_binary("sh").name == "sh"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_binary("no-such-binary-authsvc")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no-such-binary-authsvc"):
        require_binary("no-such-binary-authsvc")


# --- slapd -----------------------------------------------------------------------------------


def _require_slapd() -> None:
    for name in ("slapd", "slapadd"):
        require_binary(name)


@pytest.fixture(scope="module")
def slapd() -> Iterator[Slapd]:
    """Default dataset + the 500-group user + 1,000 bulk users."""
    _require_slapd()
    with Slapd(many_groups=500, bulk_users=1000) as server:
        yield server


@pytest.fixture
def small_slapd() -> Iterator[Slapd]:
    """A private instance with the default dataset, for tests that change or stop it."""
    _require_slapd()
    with Slapd() as server:
        yield server


def _bind(server: Slapd, dn: str, password: str) -> ldap3.Connection:
    return server.connection(dn, password)


def _groups_of(conn: ldap3.Connection, dn: str) -> set[str]:
    entries = conn.extend.standard.paged_search(
        GROUPS_DN, f"(member={escape_filter_chars(dn)})", attributes=["cn"], paged_size=200
    )
    return {e["attributes"]["cn"][0] for e in entries if e.get("type") == "searchResEntry"}


def _member_of(conn: ldap3.Connection, dn: str) -> list[str]:
    conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["memberOf"])
    return [str(v) for v in conn.entries[0]["memberOf"].values]


@pytest.mark.slapd
class TestSlapd:
    def test_root_dse_answers(self, slapd: Slapd) -> None:
        conn = slapd.connection()
        conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["namingContexts"])
        assert BASE_DN in conn.entries[0]["namingContexts"].values
        conn.unbind()
        assert slapd.url == f"ldap://127.0.0.1:{slapd.port}"
        assert slapd.ldaps_url is None

    def test_alice_binds_with_her_password_only(self, slapd: Slapd) -> None:
        conn = _bind(slapd, user_dn("alice"), "alice-pw")
        assert conn.extend.standard.who_am_i() == f"dn:{user_dn('alice')}"
        conn.unbind()
        with pytest.raises(LDAPInvalidCredentialsResult):
            _bind(slapd, user_dn("alice"), "wrong-pw")
        with pytest.raises(LDAPInvalidCredentialsResult):
            _bind(slapd, user_dn("alice"), "bob-pw")

    def test_passwords_are_stored_hashed_and_hidden(self, slapd: Slapd) -> None:
        admin = slapd.admin_connection()
        admin.search(user_dn("alice"), "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
        stored = admin.entries[0]["userPassword"].value
        stored = stored.decode() if isinstance(stored, bytes) else stored
        assert stored.startswith("{SSHA}")
        admin.unbind()
        service = _bind(slapd, SERVICE_DN, SERVICE_PASSWORD)
        service.search(user_dn("alice"), "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
        # ACL "by * none": not returned (ldap3 lists requested attributes it did not get as [])
        assert not service.response[0]["raw_attributes"].get("userPassword")
        service.unbind()

    def test_service_account_finds_alice_and_her_groups(self, slapd: Slapd) -> None:
        conn = _bind(slapd, SERVICE_DN, SERVICE_PASSWORD)
        conn.search(PEOPLE_DN, "(uid=alice)", attributes=["cn", "mail"])
        assert [e.entry_dn for e in conn.entries] == [user_dn("alice")]
        assert conn.entries[0]["mail"].value == "alice@example.org"
        assert _groups_of(conn, user_dn("alice")) == {"dev"}
        assert _groups_of(conn, user_dn("carol")) == {"ops"}
        assert _groups_of(conn, group_dn("ops")) == {"admins"}  # nesting
        assert _groups_of(conn, group_dn("admins")) == {"platform"}
        conn.unbind()

    def test_member_of_is_present(self, slapd: Slapd) -> None:
        conn = slapd.connection()
        assert _member_of(conn, user_dn("alice")) == [group_dn("dev")]
        assert _member_of(conn, user_dn("carol")) == [group_dn("ops")]
        assert _member_of(conn, group_dn("ops")) == [group_dn("admins")]  # direct only
        conn.search(PEOPLE_DN, f"(memberOf={group_dn('dev')})", attributes=["uid"])
        assert {e["uid"].value for e in conn.entries} == {"alice", "bob"}
        conn.unbind()

    def test_metacharacter_users(self, slapd: Slapd) -> None:
        weird = user_dn("weird,name")
        assert weird == f"uid=weird\\,name,{PEOPLE_DN}"
        conn = _bind(slapd, weird, "weird-pw")
        conn.unbind()
        conn = _bind(slapd, user_dn("paren(x)"), "paren-pw")
        conn.search(PEOPLE_DN, f"(uid={escape_filter_chars('paren(x)')})", attributes=["uid"])
        assert [e["uid"].value for e in conn.entries] == ["paren(x)"]
        assert _groups_of(conn, weird) == {"quirky"}
        conn.search(PEOPLE_DN, "(uid=*)", attributes=["uid"], size_limit=5)  # wildcard works
        assert conn.entries
        conn.unbind()

    def test_user_with_500_groups(self, slapd: Slapd) -> None:
        conn = _bind(slapd, user_dn("many"), "many-pw")
        groups = _groups_of(conn, user_dn("many"))
        assert len(groups) == 500
        assert {"grp-000", "grp-499"} <= groups
        assert len(_member_of(conn, user_dn("many"))) == 500
        conn.unbind()

    def test_bulk_users(self, slapd: Slapd) -> None:
        conn = _bind(slapd, user_dn("user0999"), "user0999-pw")
        assert _groups_of(conn, user_dn("user0999")) == {"team-49"}
        entries = list(conn.extend.standard.paged_search(PEOPLE_DN, "(uid=user*)", attributes=["uid"], paged_size=500))
        assert len(entries) == 1000  # needs sizelimit unlimited (slapd's default is 500)
        conn.unbind()

    def test_sizelimit_option(self) -> None:
        _require_slapd()
        with Slapd(many_groups=20, sizelimit="size.soft=5 size.hard=5 size.prtotal=unlimited") as s:
            conn = s.connection()
            conn.search(GROUPS_DN, "(cn=grp-*)", attributes=["cn"])
            assert conn.result["result"] == 4  # sizeLimitExceeded (ldap3 does not raise it)
            assert len(conn.entries) == 5
            entries = conn.extend.standard.paged_search(GROUPS_DN, "(cn=grp-*)", attributes=["cn"], paged_size=5)
            assert len(list(entries)) == 20  # paging gets past the limit
            conn.unbind()

    def test_runtime_membership_changes(self, small_slapd: Slapd) -> None:
        small_slapd.add_member("ops", user_dn("alice"))
        small_slapd.remove_member("dev", user_dn("bob"))
        small_slapd.add_users(User("dave", "dave-pw"))
        small_slapd.add_groups(Group("qa", (user_dn("dave"), user_dn("alice"))))
        small_slapd.add_entries(
            "dn: cn=sre,ou=groups,dc=example,dc=org\n"
            "objectClass: groupOfNames\ncn: sre\n"
            "member: uid=dave,ou=people,dc=example,dc=org\n"
        )
        conn = small_slapd.connection()
        assert sorted(_member_of(conn, user_dn("alice"))) == sorted([group_dn("dev"), group_dn("ops"), group_dn("qa")])
        assert _member_of(conn, user_dn("bob")) == []
        assert sorted(_member_of(conn, user_dn("dave"))) == [group_dn("qa"), group_dn("sre")]
        conn.unbind()
        _bind(small_slapd, user_dn("dave"), "dave-pw").unbind()
        small_slapd.set_password(user_dn("dave"), "new-pw")
        _bind(small_slapd, user_dn("dave"), "new-pw").unbind()
        small_slapd.delete(group_dn("qa"))
        conn = small_slapd.connection()
        assert _member_of(conn, user_dn("dave")) == [group_dn("sre")]  # refint
        conn.unbind()

    def test_stop_and_start(self, small_slapd: Slapd) -> None:
        small_slapd.add_member("ops", user_dn("bob"))
        port, pid = small_slapd.port, small_slapd.pid
        small_slapd.stop()
        assert not small_slapd.running
        with pytest.raises(LDAPSocketOpenError):
            _bind(small_slapd, user_dn("alice"), "alice-pw")
        started = time.monotonic()
        small_slapd.start()
        assert time.monotonic() - started < 5
        assert small_slapd.port == port and small_slapd.pid != pid
        conn = _bind(small_slapd, user_dn("bob"), "bob-pw")
        assert _groups_of(conn, user_dn("bob")) == {"dev", "ops"}  # data survived
        conn.unbind()
        small_slapd.kill()  # crash, then recover
        with pytest.raises(LDAPException):
            _bind(small_slapd, user_dn("alice"), "alice-pw")
        small_slapd.start()
        _bind(small_slapd, user_dn("alice"), "alice-pw").unbind()

    def test_freeze_and_thaw(self, small_slapd: Slapd) -> None:
        """Frozen: connections are still accepted but nothing answers (the read times out);
        thawed: the same process answers again; a frozen server still stops."""
        conn = small_slapd.connection()
        small_slapd.freeze()
        try:
            with socket.create_connection((small_slapd.host, small_slapd.port), timeout=2):
                pass  # the kernel completes the handshake for a stopped process
            hung = ldap3.Connection(small_slapd._server(), receive_timeout=1, raise_exceptions=True)
            hung.open()
            with pytest.raises(LDAPSocketReceiveError):
                hung.bind()
        finally:
            small_slapd.thaw()
        assert _groups_of(conn, user_dn("alice")) == {"dev"}
        conn.unbind()
        small_slapd.freeze()
        small_slapd.stop(timeout=5)  # thaws first: SIGTERM would wait for a SIGCONT
        assert not small_slapd.running and not small_slapd.frozen
        small_slapd.start()

    def test_tls(self, tmp_path: Path) -> None:
        _require_slapd()
        ca, cert, key = _make_certs(tmp_path)
        with Slapd(tls_cert=cert, tls_key=key, tls_ca=ca) as server:
            assert server.ldaps_url == f"ldaps://127.0.0.1:{server.ldaps_port}"
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca))
            conn = server.connection(user_dn("alice"), "alice-pw", url=server.ldaps_url, tls=tls)
            assert conn.extend.standard.who_am_i() == f"dn:{user_dn('alice')}"
            conn.unbind()
            conn = server.connection(user_dn("bob"), "bob-pw", tls=tls, start_tls=True)
            assert conn.tls_started
            conn.unbind()
            untrusted = ldap3.Tls(validate=ssl.CERT_REQUIRED)  # system CAs only
            with pytest.raises(LDAPException):
                server.connection(url=server.ldaps_url, tls=untrusted)


def test_seed_ldif_precomputes_member_of() -> None:
    users = [User("u1", "p1"), User("u2", "p2")]
    groups = [Group("g1", (user_dn("u1"),)), Group("g2", (group_dn("g1"), user_dn("u2")))]
    records = dict(parse_ldif(seed_ldif(users, groups)))
    assert records[user_dn("u1")]["memberOf"] == [group_dn("g1")]
    assert records[user_dn("u2")]["memberOf"] == [group_dn("g2")]
    assert records[group_dn("g1")]["memberOf"] == [group_dn("g2")]
    assert records[user_dn("u1")]["userPassword"][0].startswith("{SSHA}")
    assert ADMIN_DN not in records  # the rootdn has no entry
    with pytest.raises(ValueError):
        Group("empty", ())


def _make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 (no authsvc code)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.pem", folder / "server.pem", folder / "server.key")
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# --- postgres --------------------------------------------------------------------------------


@pytest.fixture
def postgres(postgres_server: Postgres) -> Postgres:
    """The session's server (tests/db/fixtures.py), running: test_stop_and_start stops it."""
    if not postgres_server.running:
        postgres_server.start()
    return postgres_server


@pytest.mark.postgres
class TestPostgres:
    def test_select_1(self, postgres: Postgres) -> None:
        assert postgres.url == (f"postgresql+psycopg://authsvc:authsvc@127.0.0.1:{postgres.port}/authsvc")
        engine = sa.create_engine(postgres.url, poolclass=sa.NullPool)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar() == 1
            assert conn.execute(sa.text("select current_user")).scalar() == "authsvc"
            assert conn.execute(sa.text("show fsync")).scalar() == "off"
        engine.dispose()

    def test_wrong_password_is_rejected(self, postgres: Postgres) -> None:
        bad = postgres.url.replace("authsvc:authsvc@", "authsvc:nope@")
        engine = sa.create_engine(bad, poolclass=sa.NullPool)
        with pytest.raises(sa.exc.OperationalError, match="password authentication failed"), engine.connect():
            pass

    def test_stop_and_start(self, postgres: Postgres) -> None:
        engine = sa.create_engine(postgres.url, poolclass=sa.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text("create table kept (v int)"))
            conn.execute(sa.text("insert into kept values (42)"))
        postgres.stop()
        assert not postgres.running
        with pytest.raises(sa.exc.OperationalError), engine.connect():
            pass
        postgres.start()
        with engine.connect() as conn:
            assert conn.execute(sa.text("select v from kept")).scalar() == 42
        postgres.kill()  # crash: recovery on restart
        postgres.start()
        with engine.connect() as conn:
            assert conn.execute(sa.text("select v from kept")).scalar() == 42
        postgres.reset_database()
        with engine.connect() as conn:
            assert conn.execute(sa.text("select to_regclass('kept')")).scalar() is None
        engine.dispose()
