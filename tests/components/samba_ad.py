"""A real Active Directory domain controller (Debian's Samba) on 127.0.0.1, seeded with test accounts.

Samba's AD DC serves LDAP on the fixed ports 389 and 636 (no setting moves them), so one runs
per machine at a time: a test session starts one and shares it. Everything else (the sam.ldb
databases, smb.conf, the pid file, the log, the TLS copies) lives in one folder.

    samba-tool domain provision --realm=AUTHSVC.TEST --domain=AUTHSVC --server-role=dc
        --dns-backend=NONE --targetdir=DIR --option="server services=ldap" ...   (~8-10 s; 30 s under load)
    <seed script> (Samba's own Python bindings, sam.ldb opened offline: one process, ~1-4 s)
    samba -s DIR/etc/smb.conf -i -M single                                       (~1-2 s)

Provisioned once per session, straight into the session's folder: a template to copy would only
pay for a second DC in the same session, and the fixed ports allow one at a time.

Facts learned while building this (Samba 4.17, Debian bookworm):

* The accounts are written offline with `samba.samdb.SamDB` (what `samba-tool user create`,
  `group addmembers`, `user disable` call), from one script run by the interpreter of
  `samba-tool`'s shebang: thirty `samba-tool` runs would cost a Python start-up each.
* Every refusal AD gives a simple bind is produced for real: 52e (wrong password), 530
  (`logonHours` all zero), 531 (`userWorkstations` names another machine), 532 (password older
  than the domain's maxPwdAge: `pwdLastSet` can only be backdated offline, with the
  DSDB_CONTROL_PASSWORD_BYPASS_LAST_SET control and the password in the same modify), 533
  (`userAccountControl` ACCOUNTDISABLE), 701 (`accountExpires` in the past), 773 (`pwdLastSet`
  0: must change), 775 (`lockoutTime` set; a password settings object gives that one account a
  lockout duration longer than any test session). AD answers 775 whatever the password, and
  52e, not 533, for a disabled account with a wrong password.
* Simple binds without TLS are refused ("BindSimple: Transport encryption required.", result 8
  strongerAuthRequired): Samba's default `ldap server require strong auth = yes`, as AD's.
* `tls keyfile` must be mode 0600 ("Invalid permissions on TLS private key file"): samba then
  starts no LDAP server at all.
* `interfaces` must name an address an interface has: 127.0.0.2 is refused ("no network
  interfaces found"), so a second DC on another loopback address is not an option.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.protocol.microsoft import extended_dn_control

from authsvc.ldap.connections import VerifiedTls

from .managed import ManagedServer
from .process import ChildProcess, PortInUse
from .support import find_binary

__all__ = [
    "ADMIN_DN",
    "ADMIN_PASSWORD",
    "BASE_DN",
    "DEFAULT_AD_GROUPS",
    "DEFAULT_AD_USERS",
    "GROUPS_DN",
    "HOST",
    "LDAPS_PORT",
    "LDAP_PORT",
    "NESTED_CHAIN",
    "PEOPLE_DN",
    "REALM",
    "SERVICE_DN",
    "SERVICE_PASSWORD",
    "STATE_USERS",
    "ADGroup",
    "ADUser",
    "AccountState",
    "PortsTaken",
    "SambaAD",
    "ad_user",
    "ports_in_use",
]

HOST = "127.0.0.1"
LDAP_PORT = 389
LDAPS_PORT = 636
REALM = "AUTHSVC.TEST"
DNS_DOMAIN = REALM.lower()
NETBIOS_DOMAIN = "AUTHSVC"
NETBIOS_NAME = "AUTHSVCDC"  # fixed: the machine's host name may be longer than NetBIOS allows
BASE_DN = "DC=authsvc,DC=test"
PEOPLE_DN = f"OU=people,{BASE_DN}"
GROUPS_DN = f"OU=groups,{BASE_DN}"
SERVICES_DN = f"OU=services,{BASE_DN}"
ADMIN_DN = f"CN=Administrator,CN=Users,{BASE_DN}"
ADMIN_PASSWORD = "Admin-Pass-2024!"
SERVICE_NAME = "authsvc-svc"
SERVICE_DN = f"CN={SERVICE_NAME},{SERVICES_DN}"
SERVICE_PASSWORD = "Service-Secret-2024!"


class AccountState(Enum):
    """How a seeded account is made unusable, with the `data` code AD's bind refusal carries."""

    ACTIVE = ""
    DISABLED = "533"
    PASSWORD_EXPIRED = "532"
    MUST_CHANGE_PASSWORD = "773"
    LOCKED_OUT = "775"
    ACCOUNT_EXPIRED = "701"
    OUTSIDE_LOGON_HOURS = "530"
    WRONG_WORKSTATION = "531"


@dataclass(frozen=True)
class ADUser:
    """A user under OU=people: CN and sAMAccountName `name`, UPN `name@authsvc.test`."""

    name: str
    password: str
    state: AccountState = AccountState.ACTIVE

    @property
    def dn(self) -> str:
        return f"CN={self.name},{PEOPLE_DN}"

    @property
    def upn(self) -> str:
        return f"{self.name}@{DNS_DOMAIN}"


@dataclass(frozen=True)
class ADGroup:
    """A global security group under OU=groups; `members` are names of users or other groups."""

    name: str
    members: tuple[str, ...]

    @property
    def dn(self) -> str:
        return f"CN={self.name},{GROUPS_DN}"


def ad_user(name: str, state: AccountState = AccountState.ACTIVE) -> ADUser:
    # Passwords that pass AD's default complexity rule (three character classes, length 7).
    return ADUser(name, f"{name.capitalize()}-pw-2024!", state)


ALICE = ad_user("alice")
BOB = ad_user("bob")
CAROL = ad_user("carol")
DAVE = ad_user("dave")  # the account tests disable (and enable again)
STATE_USERS: tuple[ADUser, ...] = tuple(
    ad_user(name, state)
    for name, state in (
        ("disabled", AccountState.DISABLED),
        ("pwexpired", AccountState.PASSWORD_EXPIRED),
        ("mustchange", AccountState.MUST_CHANGE_PASSWORD),
        ("lockedout", AccountState.LOCKED_OUT),
        ("acctexpired", AccountState.ACCOUNT_EXPIRED),
        ("offhours", AccountState.OUTSIDE_LOGON_HOURS),
        ("elsewhere", AccountState.WRONG_WORKSTATION),
    )
)
DEFAULT_AD_USERS: tuple[ADUser, ...] = (ALICE, BOB, CAROL, DAVE, *STATE_USERS)
# carol -> ops -> admins -> platform -> k8s-admins: her direct group and three levels of nesting.
NESTED_CHAIN: tuple[str, ...] = ("ops", "admins", "platform", "k8s-admins")
DEFAULT_AD_GROUPS: tuple[ADGroup, ...] = (
    ADGroup("dev", ("alice", "bob")),
    ADGroup("ops", ("carol", "dave")),
    ADGroup("admins", ("ops",)),
    ADGroup("platform", ("admins",)),
    ADGroup("k8s-admins", ("platform",)),
)

# Run by Samba's Python (samba-tool's interpreter) with a JSON spec on stdin: writes the
# accounts into the provisioned sam.ldb, offline.
SEED_SCRIPT = r"""
import json, sys, time
import ldb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB

spec = json.load(sys.stdin)
lp = LoadParm()
lp.load(spec["smb_conf"])
db = SamDB(url=spec["sam_ldb"], lp=lp, session_info=system_session())
base = str(db.domain_dn())
BYPASS_LAST_SET = "local_oid:1.3.6.1.4.1.7165.4.3.20:0"  # DSDB_CONTROL_PASSWORD_BYPASS_LAST_SET_OID


def nt_time(unix_seconds):
    return str(int(unix_seconds * 10**7) + 116444736000000000)


def modify(dn, controls=None, **values):
    message = ldb.Message(ldb.Dn(db, dn))
    for name, value in values.items():
        message[name] = ldb.MessageElement(value, ldb.FLAG_MOD_REPLACE, name)
    db.modify(message, controls=controls or [])


for ou in ("people", "groups", "services"):
    db.add({"dn": "OU=%s,%s" % (ou, base), "objectClass": "organizationalUnit"})
db.newuser(spec["service"][0], spec["service"][1], useusernameascn=True, userou="OU=services")
now = time.time()
day = 86400
for user in spec["users"]:
    name, state = user["name"], user["state"]
    db.newuser(name, user["password"], useusernameascn=True, userou="OU=people")
    dn = "CN=%s,OU=people,%s" % (name, base)
    if state == "533":
        db.disable_account("(sAMAccountName=%s)" % name)
    elif state == "773":
        db.force_password_change_at_next_login("(sAMAccountName=%s)" % name)
    elif state == "532":  # set a year ago: past the domain's maxPwdAge (42 days)
        modify(dn, [BYPASS_LAST_SET], pwdLastSet=nt_time(now - 365 * day),
               clearTextPassword=user["password"].encode("utf-16-le"))
    elif state == "701":
        modify(dn, accountExpires=nt_time(now - day))
    elif state == "530":
        modify(dn, logonHours=bytes(21))
    elif state == "531":
        modify(dn, userWorkstations="NOWHERE")
    elif state == "775":
        # Locked now, for 30 days: a password settings object of its own holds the duration.
        db.add({
            "dn": "CN=lockout-%s,CN=Password Settings Container,CN=System,%s" % (name, base),
            "objectClass": "msDS-PasswordSettings",
            "msDS-PasswordSettingsPrecedence": "1",
            "msDS-PasswordReversibleEncryptionEnabled": "FALSE",
            "msDS-PasswordHistoryLength": "0",
            "msDS-PasswordComplexityEnabled": "FALSE",
            "msDS-MinimumPasswordLength": "0",
            "msDS-MinimumPasswordAge": "0",
            "msDS-MaximumPasswordAge": str(-42 * day * 10**7),
            "msDS-LockoutThreshold": "0",
            "msDS-LockoutObservationWindow": str(-1800 * 10**7),
            "msDS-LockoutDuration": str(-30 * day * 10**7),
            "msDS-PSOAppliesTo": dn,
        })
        modify(dn, lockoutTime=nt_time(now))
for group in spec["groups"]:
    db.newgroup(group["name"], groupou="OU=groups")
for group in spec["groups"]:
    db.add_remove_group_members(group["name"], group["members"], add_members_operation=True)
"""


class PortsTaken(RuntimeError):
    """389 or 636 on 127.0.0.1 is already in use: another DC (or a slapd) runs on this machine."""


def ports_in_use(host: str = HOST, ports: Sequence[int] = (LDAP_PORT, LDAPS_PORT)) -> list[int]:
    """The ports among `ports` that something already listens on (a connect succeeds)."""
    taken = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) != errno.ECONNREFUSED:
                taken.append(port)
    return taken


@dataclass
class Timings:
    """Seconds spent in each step of the first start (reported by the fixture)."""

    provision: float = 0.0
    seed: float = 0.0
    start: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class SambaAD(ManagedServer):
    """A Samba AD DC child process on 127.0.0.1:389/636 with its own folder.

    `tls_cert`, `tls_key` (and `tls_ca`, the CA that verifies the certificate) are PEM paths,
    copied into the folder: LDAPS on 636 and StartTLS on 389. Nothing runs until `start()`
    / `with`; the first start provisions the domain and writes the accounts (`users`,
    `groups`; defaults `DEFAULT_AD_USERS`, `DEFAULT_AD_GROUPS`). The folder is a new temporary
    one unless `workdir` is given (then it is not deleted by `close()`).
    """

    host = HOST
    base_dn = BASE_DN
    people_dn = PEOPLE_DN
    groups_dn = GROUPS_DN
    service_dn = SERVICE_DN
    service_password = SERVICE_PASSWORD
    admin_dn = ADMIN_DN
    admin_password = ADMIN_PASSWORD
    realm = REALM

    def __init__(
        self,
        *,
        tls_cert: str | Path,
        tls_key: str | Path,
        tls_ca: str | Path,
        users: Sequence[ADUser] = DEFAULT_AD_USERS,
        groups: Sequence[ADGroup] = DEFAULT_AD_GROUPS,
        workdir: str | Path | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self.users = tuple(users)
        self.groups = tuple(groups)
        self._tls_src = {"cert": Path(tls_cert), "key": Path(tls_key), "ca": Path(tls_ca)}
        self._own_workdir = workdir is None
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self._workdir: Path | None = None
        self.startup_timeout = startup_timeout
        self._process: ChildProcess | None = None
        self._provisioned = False
        self.timings = Timings()

    # -- properties ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{LDAP_PORT}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{LDAPS_PORT}"

    @property
    def ca_file(self) -> Path:
        return self._tls_src["ca"]

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("the Samba AD DC has not been started yet (no folder)")
        return self._workdir

    @property
    def domain_dir(self) -> Path:
        return self.workdir / "dc"

    @property
    def conf_path(self) -> Path:
        return self.domain_dir / "etc" / "smb.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "samba.log"

    def user(self, name: str) -> ADUser:
        for user in self.users:
            if user.name == name:
                return user
        raise KeyError(name)

    # -- lifecycle ----------------------------------------------------------------------------

    @staticmethod
    def _binary(name: str) -> str:
        path = find_binary(name)
        if path is None:
            raise FileNotFoundError(
                f"{name} not found; install Samba's AD DC "
                "(apt-get install samba samba-ad-dc samba-ad-provision winbind)"
            )
        return str(path)

    def _samba_python(self) -> str:
        """The interpreter samba-tool runs with: the one that has Samba's bindings."""
        first = Path(self._binary("samba-tool")).read_text(errors="replace").splitlines()[0]
        interpreter = first.removeprefix("#!").strip().split()[0]
        return interpreter

    def _provision(self) -> None:
        if self._workdir_arg is not None:
            self._workdir = self._workdir_arg
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="authsvc-samba-"))
        wd = self._workdir
        domain = self.domain_dir
        if domain.exists():
            shutil.rmtree(domain)
        tls = wd / "tls"
        tls.mkdir(mode=0o700, exist_ok=True)
        copies = {kind: tls / f"{kind}.pem" for kind in self._tls_src}
        for kind, src in self._tls_src.items():
            shutil.copyfile(src, copies[kind])
            copies[kind].chmod(0o600 if kind == "key" else 0o644)  # samba refuses a key others can read
        (wd / "run").mkdir(exist_ok=True)
        options = {
            "interfaces": self.host,
            "bind interfaces only": "yes",
            "server services": "ldap",
            "netbios name": NETBIOS_NAME,
            "pid directory": str(wd / "run"),
            "ncalrpc dir": str(wd / "run" / "ncalrpc"),
            "log level": "1",
            "tls enabled": "yes",
            "tls keyfile": str(copies["key"]),
            "tls certfile": str(copies["cert"]),
            "tls cafile": str(copies["ca"]),
        }
        started = time.monotonic()
        self._run(
            [
                self._binary("samba-tool"),
                "domain",
                "provision",
                f"--realm={REALM}",
                f"--domain={NETBIOS_DOMAIN}",
                "--server-role=dc",
                "--dns-backend=NONE",
                f"--host-name={NETBIOS_NAME.lower()}",
                f"--host-ip={self.host}",
                f"--adminpass={ADMIN_PASSWORD}",
                f"--targetdir={domain}",
                *(f"--option={name}={value}" for name, value in options.items()),
            ],
            "samba-tool domain provision",
        )
        self.timings.provision = time.monotonic() - started
        started = time.monotonic()
        spec = {
            "smb_conf": str(self.conf_path),
            "sam_ldb": str(domain / "private" / "sam.ldb"),
            "service": [SERVICE_NAME, SERVICE_PASSWORD],
            "users": [{"name": u.name, "password": u.password, "state": u.state.value} for u in self.users],
            "groups": [{"name": g.name, "members": list(g.members)} for g in self.groups],
        }
        self._run([self._samba_python(), "-c", SEED_SCRIPT], "seeding the accounts", stdin=json.dumps(spec))
        self.timings.seed = time.monotonic() - started
        self._provisioned = True

    def _run(self, cmd: list[str], what: str, *, stdin: str | None = None) -> None:
        result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd=self.workdir)
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise RuntimeError(f"{what} failed (rc={result.returncode}) in {self.workdir}:\n{output}")

    def start(self) -> SambaAD:
        """Provision (first call), start samba, return once LDAPS answers with the given CA.
        Raises PortsTaken when 389 or 636 is already served on 127.0.0.1."""
        if self.running:
            return self
        taken = ports_in_use()
        if taken:
            raise PortsTaken(
                f"port(s) {', '.join(map(str, taken))} on {self.host} already in use: a Samba AD DC needs "
                f"{LDAP_PORT} and {LDAPS_PORT} (fixed), so one runs per machine at a time; is another "
                "test session's DC, or a slapd on those ports, running?"
            )
        if not self._provisioned:
            self._provision()
        cmd = [self._binary("samba"), "-s", str(self.conf_path), "-i", "-M", "single", "--debug-stdout"]
        if self._process is None:
            self._process = ChildProcess("samba", self.log_path, start_timeout=self.startup_timeout, poll_interval=0.1)
        started = time.monotonic()
        try:
            self._process.start(cmd, ready=self._answers, ports=[LDAP_PORT, LDAPS_PORT], cwd=self.workdir)
        except PortInUse as e:  # taken since the check above
            raise PortsTaken(str(e)) from e
        self.timings.start = time.monotonic() - started
        return self

    def _answers(self) -> str | None:
        """None once the service account binds over LDAPS with the CA, else why not."""
        try:
            self.connection(SERVICE_DN, SERVICE_PASSWORD).unbind()
        except (LDAPException, OSError) as exc:
            return repr(exc)
        return None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop samba (SIGTERM to its PID, SIGKILL after `timeout` to all it started) and wait for it."""
        if self._process is not None:
            self._process.stop(timeout)

    def _forget_folder(self) -> None:
        self._provisioned = False

    def _address(self) -> str:
        return self.ldaps_url

    # -- clients and runtime changes ----------------------------------------------------------

    def tls(self) -> ldap3.Tls:
        """TLS verified with the CA, host name included (authsvc's VerifiedTls: ldap3's own
        check uses ssl.match_hostname, deprecated)."""
        return VerifiedTls(str(self.ca_file), self.host)

    def connection(self, bind_dn: str, password: str) -> ldap3.Connection:
        """An open LDAPS connection (CA verified, `raise_exceptions=True`) bound as `bind_dn`."""
        server = ldap3.Server(self.ldaps_url, get_info=ldap3.NONE, connect_timeout=2, tls=self.tls())
        conn = ldap3.Connection(server, bind_dn, password, raise_exceptions=True, receive_timeout=10)
        conn.open()
        conn.bind()
        return conn

    def admin_connection(self) -> ldap3.Connection:
        return self.connection(ADMIN_DN, ADMIN_PASSWORD)

    def _modify(self, dn: str, changes: dict[str, list[tuple[str, list[object]]]]) -> None:
        conn = self.admin_connection()
        try:
            conn.modify(dn, changes)
        finally:
            conn.unbind()

    def read(self, dn: str, *attributes: str) -> dict[str, list[object]]:
        """The raw values of `attributes` of `dn`, read as the administrator."""
        conn = self.admin_connection()
        try:
            conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=list(attributes))
            return dict(conn.response[0]["raw_attributes"])
        finally:
            conn.unbind()

    def object_guid(self, name: str) -> str:
        """The account's objectGUID as the DC itself writes it: the <GUID=...> part of the DN the
        extended DN control (1.2.840.113556.1.4.529, string format) returns."""
        conn = self.admin_connection()
        try:
            conn.search(
                self.user(name).dn,
                "(objectClass=*)",
                search_scope=ldap3.BASE,
                attributes=["1.1"],
                controls=[extended_dn_control(hex_format=False)],
            )
            extended = str(conn.response[0]["dn"])
        finally:
            conn.unbind()
        match = re.match(r"<GUID=([0-9a-fA-F-]{36})>", extended)
        if match is None:
            raise AssertionError(f"no <GUID=...> in the extended DN {extended!r}")
        return match.group(1).lower()

    def set_attribute(self, dn: str, attribute: str, value: str) -> None:
        """Replace one attribute's value as the administrator (e.g. accountExpires)."""
        self._modify(dn, {attribute: [(ldap3.MODIFY_REPLACE, [value])]})

    def set_disabled(self, name: str, disabled: bool) -> None:
        """`samba-tool user disable|enable NAME`, over LDAP: flip ACCOUNTDISABLE (0x2)."""
        dn = self.user(name).dn
        value = self.read(dn, "userAccountControl")["userAccountControl"][0]
        assert isinstance(value, bytes)
        flags = int(value)
        flags = flags | 0x2 if disabled else flags & ~0x2
        self._modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(flags)])]})

    def add_member(self, group: str, member_dn: str) -> None:
        self._modify(f"CN={group},{GROUPS_DN}", {"member": [(ldap3.MODIFY_ADD, [member_dn])]})

    def remove_member(self, group: str, member_dn: str) -> None:
        self._modify(f"CN={group},{GROUPS_DN}", {"member": [(ldap3.MODIFY_DELETE, [member_dn])]})
