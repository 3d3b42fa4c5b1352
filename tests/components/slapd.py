"""A real OpenLDAP ``slapd`` in a temporary folder, seeded with a test directory.

Recipe: /work/shared/testing/slapd.md. Everything (slapd.conf, mdb data, pid file, log, TLS
copies) lives in one folder; slapd runs in the foreground (``-d``) as our child process and is
stopped by PID, so the same folder and ports can be started again for outage tests.

Facts learned while building this (OpenLDAP 2.5, Debian bookworm):

* ``slapadd`` stores ``userPassword`` values verbatim; ``password-hash`` only applies to the
  password-modify extended operation. So the seed hashes passwords itself as ``{SSHA}``
  (the same format ``slappasswd -s`` prints) instead of spawning one ``slappasswd`` per user.
* The ``memberof`` overlay does not run under ``slapadd``: entries loaded offline get no
  ``memberOf``. ``slapadd`` does accept explicit ``memberOf`` values, so the seed computes them
  (direct membership only, exactly what the overlay would maintain, including on member
  groups). Entries added or modified online are maintained by the overlay itself (and online
  adds must NOT carry ``memberOf``: it is NO-USER-MODIFICATION).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import escape_rdn, safe_dn

from .managed import ManagedServer
from .process import ChildProcess, on_free_ports
from .support import find_binary, free_port

__all__ = [
    "ADMIN_DN",
    "ADMIN_PASSWORD",
    "BASE_DN",
    "BULK_TEAMS",
    "BULK_USERS",
    "DEFAULT_GROUPS",
    "DEFAULT_USERS",
    "GROUPS_DN",
    "MANY_GROUPS",
    "MANY_PASSWORD",
    "MANY_UID",
    "PEOPLE_DN",
    "SERVICES_DN",
    "SERVICE_DN",
    "SERVICE_PASSWORD",
    "Dataset",
    "Group",
    "Slapd",
    "User",
    "bulk_users_data",
    "default_dataset",
    "group_dn",
    "many_groups_data",
    "parse_ldif",
    "seed_ldif",
    "ssha",
    "user_dn",
]

BASE_DN = "dc=example,dc=org"
PEOPLE_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
SERVICES_DN = f"ou=services,{BASE_DN}"
ADMIN_DN = f"cn=admin,{BASE_DN}"  # the rootdn (no entry in the directory)
ADMIN_PASSWORD = "admin"
SERVICE_DN = f"cn=authsvc,{SERVICES_DN}"  # the search account authsvc binds as
SERVICE_PASSWORD = "service-secret"

MANY_UID = "many"  # the user of the scale dataset
MANY_PASSWORD = "many-pw"
MANY_GROUPS = 500  # default number of groups for MANY_UID
BULK_USERS = 1000  # default size of the bulk dataset
BULK_TEAMS = 50  # bulk users are spread round-robin over team-00..team-49

SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"


def user_dn(uid: str) -> str:
    """DN of a user under ou=people (the RDN value escaped: ``weird,name`` -> ``weird\\,name``)."""
    return f"uid={escape_rdn(uid)},{PEOPLE_DN}"


def group_dn(cn: str) -> str:
    """DN of a group under ou=groups."""
    return f"cn={escape_rdn(cn)},{GROUPS_DN}"


def ssha(password: str, salt: bytes | None = None) -> str:
    """``{SSHA}`` hash of ``password``, the format ``slappasswd -s`` prints."""
    salt = os.urandom(8) if salt is None else salt
    digest = hashlib.sha1(password.encode("utf-8") + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


@dataclass(frozen=True)
class User:
    """An ``inetOrgPerson`` under ou=people. ``cn``/``sn``/``mail`` default from ``uid``."""

    uid: str
    password: str
    cn: str = ""
    sn: str = ""
    mail: str = ""

    @property
    def dn(self) -> str:
        return user_dn(self.uid)

    def attributes(self, *, hash_password: bool = True) -> dict[str, list[str]]:
        return {
            "objectClass": ["inetOrgPerson"],
            "uid": [self.uid],
            "cn": [self.cn or self.uid],
            "sn": [self.sn or self.uid],
            "mail": [self.mail or f"{self.uid}@example.org"],
            "userPassword": [ssha(self.password) if hash_password else self.password],
        }


@dataclass(frozen=True)
class Group:
    """A ``groupOfNames`` under ou=groups; ``members`` are full DNs (users or groups)."""

    cn: str
    members: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.members, str):
            raise TypeError("Group.members must be a sequence of DNs, not one string")
        object.__setattr__(self, "members", tuple(self.members))
        if not self.members:
            raise ValueError(f"group {self.cn!r}: groupOfNames needs at least one member")

    @property
    def dn(self) -> str:
        return group_dn(self.cn)

    def attributes(self) -> dict[str, list[str]]:
        return {"objectClass": ["groupOfNames"], "cn": [self.cn], "member": list(self.members)}


@dataclass
class Dataset:
    """Users and groups to seed; ``+`` concatenates two datasets."""

    users: list[User] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    def __add__(self, other: Dataset) -> Dataset:
        return Dataset(self.users + other.users, self.groups + other.groups)

    def user(self, uid: str) -> User:
        for user in self.users:
            if user.uid == uid:
                return user
        raise KeyError(uid)

    def ldif(self, *, hash_passwords: bool = True) -> str:
        return seed_ldif(self.users, self.groups, hash_passwords=hash_passwords)


# --- default dataset -------------------------------------------------------------------------

ALICE = User("alice", "alice-pw", "Alice Anderson", "Anderson", "alice@example.org")
BOB = User("bob", "bob-pw", "Bob Brown", "Brown", "bob@example.org")
CAROL = User("carol", "carol-pw", "Carol Clark", "Clark", "carol@example.org")
# LDAP metacharacters for injection tests: ',' must be escaped in a DN (uid=weird\,name,...),
# '(' and ')' in a search filter (uid=paren\28x\29). Their DNs also contain '\' which a
# (member=<dn>) filter must escape as \5c.
WEIRD = User("weird,name", "weird-pw", "Weird, Name", "Name", "weird@example.org")
PAREN = User("paren(x)", "paren-pw", "Paren (X)", "X", "paren@example.org")

DEFAULT_USERS: tuple[User, ...] = (ALICE, BOB, CAROL, WEIRD, PAREN)
DEFAULT_GROUPS: tuple[Group, ...] = (
    Group("dev", (ALICE.dn, BOB.dn)),
    Group("ops", (CAROL.dn,)),
    Group("admins", (group_dn("ops"),)),  # nested: carol is in admins via ops
    Group("platform", (group_dn("admins"),)),  # nested two deep: ops -> admins -> platform
    Group("quirky", (WEIRD.dn, PAREN.dn)),  # members with metacharacters in their DNs
)


def many_groups_data(
    n: int = MANY_GROUPS, uid: str = MANY_UID, password: str = MANY_PASSWORD, prefix: str = "grp-"
) -> Dataset:
    """One user that is the (only) member of ``n`` groups ``grp-000`` .. (scale tests)."""
    user = User(uid, password, f"Many Groups ({n})", "Groups", f"{uid}@example.org")
    width = max(3, len(str(max(n - 1, 0))))
    groups = [Group(f"{prefix}{i:0{width}d}", (user.dn,)) for i in range(n)]
    return Dataset([user], groups)


def bulk_users_data(n: int = BULK_USERS, teams: int = BULK_TEAMS) -> Dataset:
    """``n`` users ``user0000`` .. with passwords ``user0000-pw`` ..; user i is a member of
    group ``team-{i % teams:02d}`` (no team groups when ``teams`` is 0)."""
    users = [User(f"user{i:04d}", f"user{i:04d}-pw", f"User {i:04d}", f"{i:04d}") for i in range(n)]
    groups: list[Group] = []
    for t in range(min(teams, n)):
        groups.append(Group(f"team-{t:02d}", tuple(u.dn for u in users[t::teams])))
    return Dataset(users, groups)


def default_dataset(*, many_groups: int = 0, bulk_users: int = 0) -> Dataset:
    """The default users/groups, plus optionally the ``many`` user with ``many_groups``
    groups and ``bulk_users`` bulk users spread over team groups."""
    data = Dataset(list(DEFAULT_USERS), list(DEFAULT_GROUPS))
    if many_groups:
        data = data + many_groups_data(many_groups)
    if bulk_users:
        data = data + bulk_users_data(bulk_users)
    return data


# --- LDIF ------------------------------------------------------------------------------------


def _ldif_line(attr: str, value: str) -> str:
    raw = value.encode("utf-8")
    safe = (
        raw.isascii()
        and "\n" not in value
        and "\r" not in value
        and "\0" not in value
        and not value.startswith((" ", ":", "<"))
        and not value.endswith(" ")
    )
    if safe:
        return f"{attr}: {value}"
    return f"{attr}:: {base64.b64encode(raw).decode('ascii')}"


def _ldif_record(dn: str, attributes: Mapping[str, Iterable[str]]) -> str:
    lines = [_ldif_line("dn", dn)]
    for attr, values in attributes.items():
        lines.extend(_ldif_line(attr, v) for v in values)
    return "\n".join(lines) + "\n"


def _norm(dn: str) -> str:
    return str(safe_dn(dn)).lower()


def _base_entries() -> list[tuple[str, dict[str, list[str]]]]:
    return [
        (BASE_DN, {"objectClass": ["dcObject", "organization"], "dc": ["example"], "o": ["Example"]}),
        (PEOPLE_DN, {"objectClass": ["organizationalUnit"], "ou": ["people"]}),
        (GROUPS_DN, {"objectClass": ["organizationalUnit"], "ou": ["groups"]}),
        (SERVICES_DN, {"objectClass": ["organizationalUnit"], "ou": ["services"]}),
    ]


def _service_entry(*, hash_password: bool = True) -> tuple[str, dict[str, list[str]]]:
    pw = ssha(SERVICE_PASSWORD) if hash_password else SERVICE_PASSWORD
    return (
        SERVICE_DN,
        {
            "objectClass": ["organizationalRole", "simpleSecurityObject"],
            "cn": ["authsvc"],
            "description": ["authsvc search account"],
            "userPassword": [pw],
        },
    )


def seed_ldif(
    users: Iterable[User] = DEFAULT_USERS,
    groups: Iterable[Group] = DEFAULT_GROUPS,
    *,
    hash_passwords: bool = True,
) -> str:
    """LDIF for ``slapadd``: suffix, ou=people/groups/services, the service account, users,
    groups, with ``memberOf`` precomputed (direct membership, as the overlay maintains it)."""
    users = list(users)
    groups = list(groups)
    entries: list[tuple[str, dict[str, list[str]]]] = _base_entries()
    entries.append(_service_entry(hash_password=hash_passwords))
    entries.extend((u.dn, u.attributes(hash_password=hash_passwords)) for u in users)
    entries.extend((g.dn, g.attributes()) for g in groups)

    seen: set[str] = set()
    for dn, _ in entries:
        key = _norm(dn)
        if key in seen:
            raise ValueError(f"duplicate entry in dataset: {dn}")
        seen.add(key)

    member_of: dict[str, list[str]] = {}
    for g in groups:
        for member in g.members:
            key = _norm(member)
            if key in seen:  # the overlay only adds memberOf to entries that exist
                member_of.setdefault(key, []).append(g.dn)

    records = []
    for dn, attrs in entries:
        extra = member_of.get(_norm(dn))
        if extra:
            attrs = {**attrs, "memberOf": extra}
        records.append(_ldif_record(dn, attrs))
    return "\n".join(records)


def parse_ldif(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """Parse add-style LDIF (``attr: v``, ``attr:: base64``, folded lines, comments, an
    optional ``changetype: add``) into ``[(dn, {attr: [values]})]``."""
    records: list[tuple[str, dict[str, list[str]]]] = []
    unfolded: list[str] = []
    for line in text.splitlines():
        if line.startswith(" ") and unfolded:
            unfolded[-1] += line[1:]
        else:
            unfolded.append(line)
    block: list[str] = []
    for line in [*unfolded, ""]:
        if line.startswith("#") or line.strip().startswith("version:"):
            continue
        if line.strip():
            block.append(line)
            continue
        if not block:
            continue
        dn: str | None = None
        attrs: dict[str, list[str]] = {}
        for item in block:
            attr, sep, rest = item.partition(":")
            if not sep:
                raise ValueError(f"bad LDIF line: {item!r}")
            if rest.startswith(":"):
                value = base64.b64decode(rest[1:].strip()).decode("utf-8")
            elif rest.startswith("<"):
                raise ValueError("LDIF URL values (attr:< url) are not supported")
            else:
                value = rest.lstrip(" ")
            if attr.lower() == "dn":
                dn = value
            elif attr.lower() == "changetype":
                if value.strip().lower() != "add":
                    raise ValueError(f"only changetype: add is supported, got {value!r}")
            else:
                attrs.setdefault(attr, []).append(value)
        if dn is None:
            raise ValueError(f"LDIF record without dn: {block!r}")
        records.append((dn, attrs))
        block = []
    return records


# --- the server ------------------------------------------------------------------------------


class Slapd(ManagedServer):
    """A slapd child process on loopback ports with its own folder.

    ``users``/``groups`` default to ``DEFAULT_USERS``/``DEFAULT_GROUPS``; ``dataset`` replaces
    both. ``many_groups`` adds user ``many`` (``many-pw``) in that many groups ``grp-000``..;
    ``bulk_users`` adds ``user0000``.. (``user0000-pw``..) in ``team-NN`` groups.
    ``sizelimit`` is slapd's (default here ``unlimited``; slapd's own default is 500
    entries per search, e.g. ``"size.soft=100 size.hard=100 size.prtotal=unlimited"`` forces
    clients to page). ``extra_ldif`` is appended to the seed (offline, so no overlay: give memberOf yourself).
    TLS: ``tls_cert`` + ``tls_key`` (+ ``tls_ca``) PEM paths add the TLS config (StartTLS on
    ldap://) and an ldaps:// listener (unless ``ldaps=False``); the files are copied into
    the folder. The folder is a new temporary one unless ``workdir`` is given (then it is not
    deleted by ``close()``).

    ``debug_level`` is slapd's ``-d`` (keeps it in the foreground): ``none`` prints only
    uncategorised messages -- startup errors such as "bind failed errno=98" -- whereas ``0``
    prints nothing at all; ``stats`` logs every operation.

    Nothing runs until ``start()`` / ``with``; ports are chosen at construction and kept for
    restarts, so ``url`` is known up front.
    """

    def __init__(
        self,
        users: Sequence[User] | None = None,
        groups: Sequence[Group] | None = None,
        *,
        dataset: Dataset | None = None,
        many_groups: int = 0,
        bulk_users: int = 0,
        extra_ldif: str = "",
        hash_passwords: bool = True,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        tls_verify_client: str | None = None,
        ldaps: bool | None = None,
        port: int | None = None,
        ldaps_port: int | None = None,
        workdir: str | os.PathLike[str] | None = None,
        sizelimit: str = "unlimited",
        debug_level: str = "none",
        startup_timeout: float = 10.0,
    ) -> None:
        if dataset is not None and (users is not None or groups is not None):
            raise TypeError("pass either dataset or users/groups, not both")
        if dataset is None:
            dataset = Dataset(
                list(DEFAULT_USERS if users is None else users),
                list(DEFAULT_GROUPS if groups is None else groups),
            )
        if many_groups:
            dataset = dataset + many_groups_data(many_groups)
        if bulk_users:
            dataset = dataset + bulk_users_data(bulk_users)
        self.dataset: Dataset = dataset
        self._extra_ldif = extra_ldif
        self._hash_passwords = hash_passwords

        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        self._tls_src: dict[str, Path] = {}
        if tls_cert is not None and tls_key is not None:
            self._tls_src = {"cert": Path(tls_cert), "key": Path(tls_key)}
            if tls_ca is not None:
                self._tls_src["ca"] = Path(tls_ca)
        elif tls_ca is not None:
            raise ValueError("tls_ca needs tls_cert and tls_key")
        self._tls_verify_client = tls_verify_client
        self.tls: bool = bool(self._tls_src)
        if ldaps and not self.tls:
            raise ValueError("ldaps=True needs tls_cert and tls_key")
        self._ldaps = self.tls if ldaps is None else ldaps

        self.host = "127.0.0.1"
        self.port: int = port or free_port()
        self.ldaps_port: int | None = (ldaps_port or free_port()) if self._ldaps else None
        # Ports the caller did not choose are chosen again if taken before slapd's first start.
        self._ports_chosen_here = port is None and (ldaps_port is None or not self._ldaps)
        self._own_workdir = workdir is None
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self._workdir: Path | None = None
        self._debug_level = debug_level
        self._sizelimit = sizelimit
        self.startup_timeout = startup_timeout
        self._process: ChildProcess | None = None
        self._prepared = False
        self._started = False

    # -- properties ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_url(self) -> str | None:
        return f"ldaps://{self.host}:{self.ldaps_port}" if self.ldaps_port else None

    base_dn = BASE_DN
    people_dn = PEOPLE_DN
    groups_dn = GROUPS_DN
    admin_dn = ADMIN_DN
    admin_password = ADMIN_PASSWORD
    service_dn = SERVICE_DN
    service_password = SERVICE_PASSWORD

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("slapd has not been started yet (no folder)")
        return self._workdir

    @property
    def conf_path(self) -> Path:
        return self.workdir / "slapd.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "slapd.log"

    # -- lifecycle ----------------------------------------------------------------------------

    def _binary(self, name: str) -> str:
        path = find_binary(name)
        if path is None:
            raise FileNotFoundError(f"{name} not found; install slapd (apt-get install slapd ldap-utils)")
        return str(path)

    def _prepare(self) -> None:
        if self._workdir_arg is not None:
            self._workdir = self._workdir_arg
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="authsvc-slapd-"))
        wd = self._workdir
        wd.chmod(0o755)
        data = wd / "data"
        if data.exists():
            shutil.rmtree(data)
        data.mkdir(mode=0o700)

        tls_lines: list[str] = []
        if self._tls_src:
            tls_dir = wd / "tls"
            tls_dir.mkdir(mode=0o755, exist_ok=True)
            names = {"cert": "server.crt", "key": "server.key", "ca": "ca.crt"}
            copied: dict[str, Path] = {}
            for kind, src in self._tls_src.items():
                dst = tls_dir / names[kind]
                shutil.copyfile(src, dst)
                dst.chmod(0o600 if kind == "key" else 0o644)
                copied[kind] = dst
            tls_lines.append(f'TLSCertificateFile    "{copied["cert"]}"')
            tls_lines.append(f'TLSCertificateKeyFile "{copied["key"]}"')
            if "ca" in copied:
                tls_lines.append(f'TLSCACertificateFile  "{copied["ca"]}"')
            if self._tls_verify_client:
                tls_lines.append(f"TLSVerifyClient       {self._tls_verify_client}")

        conf = "\n".join(
            [
                f"include     {SCHEMA_DIR}/core.schema",
                f"include     {SCHEMA_DIR}/cosine.schema",
                f"include     {SCHEMA_DIR}/inetorgperson.schema",
                f'pidfile     "{wd / "slapd.pid"}"',
                f'argsfile    "{wd / "slapd.args"}"',
                "loglevel    none",
                f"modulepath  {MODULE_DIR}",
                "moduleload  back_mdb",
                "moduleload  memberof",
                "password-hash {SSHA}",
                *tls_lines,
                "",
                "database    mdb",
                "maxsize     1073741824",
                f'suffix      "{BASE_DN}"',
                f'rootdn      "{ADMIN_DN}"',
                f"rootpw      {ssha(ADMIN_PASSWORD)}",
                f'directory   "{data}"',
                f"sizelimit   {self._sizelimit}",
                "index       objectClass eq",
                "index       uid,cn eq",
                "index       member,memberOf eq",
                "",
                "overlay     memberof",
                "memberof-group-oc    groupOfNames",
                "memberof-member-ad   member",
                "memberof-memberof-ad memberOf",
                "memberof-refint      TRUE",
                "",
                "access to attrs=userPassword",
                "    by self write",
                "    by anonymous auth",
                "    by * none",
                "access to *",
                "    by * read",
                "",
            ]
        )
        (wd / "slapd.conf").write_text(conf)

        ldif = self.dataset.ldif(hash_passwords=self._hash_passwords)
        if self._extra_ldif.strip():
            ldif = ldif + "\n" + self._extra_ldif.strip() + "\n"
        seed = wd / "seed.ldif"
        seed.write_text(ldif)
        result = subprocess.run(
            [self._binary("slapadd"), "-q", "-f", str(wd / "slapd.conf"), "-l", str(seed)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"slapadd failed (rc={result.returncode}) in {wd}:\n{result.stdout}{result.stderr}")
        self._prepared = True

    def start(self) -> Slapd:
        """Start slapd (the first call also writes the config and loads the seed); returns
        when the root DSE answers. Again after ``stop()``: same folder, data and ports."""
        if self.running:
            return self
        if not self._prepared:
            self._prepare()
        if self._process is None:
            self._process = ChildProcess("slapd", self.log_path, start_timeout=self.startup_timeout)
        process = self._process

        def start_once() -> None:
            listeners = [f"ldap://{self.host}:{self.port}/"]
            if self.ldaps_port:
                listeners.append(f"ldaps://{self.host}:{self.ldaps_port}/")
            argv = [
                self._binary("slapd"),
                "-f",
                str(self.conf_path),
                "-h",
                " ".join(listeners),
                "-d",
                self._debug_level,
            ]
            ports = [self.port, *([self.ldaps_port] if self.ldaps_port else [])]
            process.start(argv, ready=self._answers, ports=ports, cwd=self.workdir)

        def pick_new_ports() -> None:
            self.port = free_port()
            self.ldaps_port = free_port() if self._ldaps else None

        on_free_ports(start_once, pick_new_ports if self._ports_chosen_here and not self._started else None)
        self._started = True
        return self

    def _answers(self) -> str | None:
        """None once the root DSE answers on every listener, else why not."""
        try:
            self._probe(self.url)
            if self.ldaps_url:
                self._probe(self.ldaps_url)
        except LDAPException as exc:
            return repr(exc)
        return None

    def _probe(self, url: str) -> None:
        conn = ldap3.Connection(self._server(url), raise_exceptions=True)
        try:
            conn.open()
            conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["namingContexts"])
        finally:
            conn.unbind()

    def freeze(self) -> None:
        """Hang slapd (SIGSTOP): the kernel still accepts connections and takes requests, but
        nothing answers, as with a directory stuck on its disk or a lock. ``thaw()`` resumes it.
        Returns once every slapd thread is stopped."""
        if self._process is None:
            raise RuntimeError("slapd is not running: nothing to freeze")
        self._process.freeze()

    def thaw(self) -> None:
        """Resume a frozen slapd (SIGCONT); it answers what was sent meanwhile."""
        if self._process is not None:
            self._process.thaw()

    @property
    def frozen(self) -> bool:
        return self._process is not None and self._process.frozen

    def stop(self, timeout: float = 10.0) -> None:
        """Stop slapd (SIGTERM to its PID, then SIGKILL after ``timeout``) and wait for it
        (a frozen slapd is thawed first: it would act on SIGTERM only once it runs again)."""
        if self._process is not None:
            self._process.stop(timeout)

    def kill(self) -> None:
        """Crash slapd (SIGKILL) for outage tests; ``start()`` works afterwards (mdb is crash-safe)."""
        if self._process is not None:
            self._process.kill()

    def _forget_folder(self) -> None:
        self._prepared = False

    def _address(self) -> str:
        return self.url

    # -- clients and runtime changes ----------------------------------------------------------

    def _server(self, url: str | None = None, *, tls: ldap3.Tls | None = None) -> ldap3.Server:
        return ldap3.Server(url or self.url, get_info=ldap3.NONE, connect_timeout=2, tls=tls)

    def connection(
        self,
        bind_dn: str | None = None,
        password: str | None = None,
        *,
        url: str | None = None,
        tls: ldap3.Tls | None = None,
        start_tls: bool = False,
    ) -> ldap3.Connection:
        """An open ldap3 connection (``get_info=NONE``, ``raise_exceptions=True``), bound as
        ``bind_dn`` or anonymous. The caller unbinds it."""
        conn = ldap3.Connection(
            self._server(url, tls=tls),
            user=bind_dn,
            password=password,
            raise_exceptions=True,
            receive_timeout=10,
        )
        conn.open()
        if start_tls:
            conn.start_tls()
        if bind_dn is not None:
            conn.bind()
        return conn

    def admin_connection(self) -> ldap3.Connection:
        """Connection bound as the rootdn (cn=admin,dc=example,dc=org / admin)."""
        return self.connection(ADMIN_DN, ADMIN_PASSWORD)

    @staticmethod
    def _online_attrs(attrs: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
        # memberOf is maintained by the overlay online and may not be written.
        return {k: list(v) for k, v in attrs.items() if k.lower() != "memberof"}

    def add_entries(self, ldif: str | Iterable[tuple[str, Mapping[str, Iterable[str]]]]) -> None:
        """Add entries online as the rootdn, from LDIF text or ``(dn, attrs)`` pairs (the
        memberof overlay maintains memberOf for them)."""
        records = parse_ldif(ldif) if isinstance(ldif, str) else list(ldif)
        conn = self.admin_connection()
        try:
            for dn, attrs in records:
                conn.add(dn, attributes=self._online_attrs(attrs))
        finally:
            conn.unbind()

    def add_users(self, *users: User) -> None:
        self.add_entries((u.dn, u.attributes(hash_password=self._hash_passwords)) for u in users)

    def add_groups(self, *groups: Group) -> None:
        self.add_entries((g.dn, g.attributes()) for g in groups)

    def modify(self, dn: str, changes: Mapping[str, Any]) -> None:
        """ldap3 ``modify`` as the rootdn, e.g.
        ``{"member": [(ldap3.MODIFY_ADD, [user_dn("carol")])]}``."""
        conn = self.admin_connection()
        try:
            conn.modify(dn, dict(changes))
        finally:
            conn.unbind()

    def delete(self, dn: str) -> None:
        conn = self.admin_connection()
        try:
            conn.delete(dn)
        finally:
            conn.unbind()

    @staticmethod
    def _group(group: str) -> str:
        return group if "=" in group else group_dn(group)

    def add_member(self, group: str, member_dn: str) -> None:
        """Add ``member_dn`` to ``group`` (a cn such as ``"ops"`` or a full DN)."""
        self.modify(self._group(group), {"member": [(ldap3.MODIFY_ADD, [member_dn])]})

    def remove_member(self, group: str, member_dn: str) -> None:
        self.modify(self._group(group), {"member": [(ldap3.MODIFY_DELETE, [member_dn])]})

    def set_password(self, dn: str, password: str) -> None:
        value = ssha(password) if self._hash_passwords else password
        self.modify(dn, {"userPassword": [(ldap3.MODIFY_REPLACE, [value])]})
