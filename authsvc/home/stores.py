"""What is loaded from a home on demand: the database engine, the inventory, the token service,
the CAs and the certificate issuer, the audit trail and the access bans. Each is built on
first use and kept.

Every certificate and token minted through these goes past the ban gate (nothing for a user
whose access was revoked: authsvc/access/bans.py) and leaves a line in the audit trail
(authsvc/access/trail.py), whichever command or endpoint asked.

SQLAlchemy and PyJWT are imported on first use too: commands that read only files
(`certs check-expiration`, `pki check`) never pay for them."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from authsvc.errors import HomeError
from authsvc.home.keys_at_rest import ca_key_encrypted
from authsvc.home.layout import HomeLayout, pki_path
from authsvc.home.secrets import HomeSecrets
from authsvc.settings import Settings
from pki.ca import CertificateAuthority
from pki.clock import Clock
from pki.store import load_certificates

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from authsvc.access.bans import BanGate, BanStore
    from authsvc.access.denylist import Denylist
    from authsvc.audit.log import AuditLog
    from pki.inventory import Inventory
    from pki.issuance import CertificateIssuer, IssuedCert
    from pki.tokens import IssuedToken, SigningKeyFiles, TokenService


class HomeStores:
    def __init__(self, settings: Settings, layout: HomeLayout, secrets: HomeSecrets, clock: Clock) -> None:
        self.settings = settings
        self.layout = layout
        self.secrets = secrets
        self.clock = clock

    @cached_property
    def engine(self) -> Engine:
        # An empty database is migrated to head; one behind or newer than this code is refused
        # (one query when it is at head). authsvc/db/schema.py has the rules. Imported here, not
        # at the top: `certs check-expiration` and the like never open the database.
        from authsvc.db.schema import open_engine

        return open_engine(self.secrets.database_url)

    def close(self) -> None:
        """Dispose of the engine if one was opened: before a fork, children must not share its
        connections. The next use opens a new one. Issued tokens still buffered are recorded first."""
        token_service = self.__dict__.get("token_service")
        if token_service is not None:
            token_service.flush()
        engine = self.__dict__.pop("engine", None)
        for name in ("inventory", "token_service", "bans", "denylist"):
            self.__dict__.pop(name, None)
        if engine is not None:
            engine.dispose()

    # ---- the audit trail and the bans --------------------------------------------------------

    @cached_property
    def audit(self) -> AuditLog:
        """The audit trail, each line written at once (a command's few lines must not wait for a
        thread); a server attaches its batched log instead (`attach_audit`)."""
        from authsvc.audit.log import AuditLog

        return AuditLog.open(self.settings.audit, self.layout.root, batched=False)

    def attach_audit(self, audit: AuditLog) -> None:
        """Write this process's issuance lines through `audit` (authsvc/runtime.py: one log per server process)."""
        self.__dict__["audit"] = audit

    @cached_property
    def actor(self) -> str:
        """Who this process acts for in the audit trail: `cli:<the user running it>`."""
        environ = self.secrets.environ
        return "cli:" + (environ.get("USER") or environ.get("LOGNAME") or "unknown")

    @cached_property
    def bans(self) -> BanStore:
        from authsvc.access.bans import BanStore

        return BanStore(self.engine)

    @cached_property
    def ban_gate(self) -> BanGate:
        """One per home: it keeps the bans in memory for a second (authsvc/access/bans.py)."""
        from authsvc.access.bans import BanGate

        return BanGate(self.bans)

    @cached_property
    def denylist(self) -> Denylist:
        """Revoked credentials and banned users, in memory, read again every tokens.cache_refresh."""
        from authsvc.access.denylist import Denylist

        tokens = self.settings.tokens
        return Denylist(
            self.engine,
            self.clock,
            tokens.cache_refresh.total_seconds(),
            leeway_seconds=tokens.leeway.total_seconds(),
        )

    def _certificate_issued(self, issued: IssuedCert) -> None:
        from authsvc.access.trail import actor_of_certificate, certificate_issued

        record = issued.record
        self.audit.record(self.clock(), certificate_issued(record, actor_of_certificate(record, self.actor)))

    def _token_issued(self, token: IssuedToken, kind: str) -> None:
        from authsvc.access.trail import actor_of_token, token_issued

        self.audit.record(self.clock(), token_issued(token, kind, actor_of_token(token, self.actor)))

    @cached_property
    def inventory(self) -> Inventory:
        from pki.inventory import Inventory

        return Inventory(self.engine)

    @property
    def signing_key_files(self) -> SigningKeyFiles:
        """The token signing keys in kubeadm's names: pki/sa.key, pki/sa.pub, pki/sa-next.key."""
        from pki.tokens import SigningKeyFiles

        return SigningKeyFiles(
            active_key=self.layout.key_path("sa"),
            next_key=self.layout.key_path("sa-next"),
            public_bundle=pki_path(self.layout.root, "sa", "pub"),
            passphrase=lambda: self.secrets.key_passphrase,
            backups=self.layout.backups_dir,
            home=self.layout.root,
        )

    @cached_property
    def token_service(self) -> TokenService:
        """Issues, verifies and revokes the tokens authsvc signs (keys: pki/sa.key, pki/sa.pub)."""
        from pki.tokens import SigningKeyStore, TokenService

        config = self.settings.tokens.to_config(self.settings.pki.policy.to_policy())
        return TokenService(
            SigningKeyStore(self.engine),
            self.signing_key_files,
            config,
            self.clock,
            gate=self.ban_gate,
            on_issued=self._token_issued,
        )

    def load_ca(self, name: str = "ca") -> CertificateAuthority:
        cert_file, key_file = self.layout.cert_path(name), self.layout.key_path(name)
        if not cert_file.exists():
            raise HomeError(f"CA certificate {cert_file} does not exist: run `authsvc init` first")
        certs = load_certificates(cert_file, what=f"{name} certificate")
        key = self.secrets.load_private_key(key_file, what=f"{name} key", encrypt=ca_key_encrypted(self.settings, name))
        chain_file = pki_path(self.layout.root, name, "chain.crt")
        # After a root, the file holds other roots (a CA rollover's trust bundle), not its chain.
        rest = tuple(certs[1:]) if certs[0].issuer != certs[0].subject else ()
        chain = tuple(load_certificates(chain_file)) if chain_file.exists() else rest
        return CertificateAuthority.load(certs[0], key, chain)

    def issuer(self, ca_name: str = "ca") -> CertificateIssuer:
        from pki.issuance import CertificateIssuer

        return CertificateIssuer(
            self.load_ca(ca_name),
            self.inventory,
            self.settings.pki.policy.to_policy(),
            self.clock,
            ca_name=ca_name,
            gate=self.ban_gate,
            on_issued=self._certificate_issued,
        )
