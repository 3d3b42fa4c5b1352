"""The configuration: one frozen, validated model tree, loaded once and passed down."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, model_validator

from authsvc.errors import ConfigError
from authsvc.settings.audit import AuditSettings
from authsvc.settings.authn import AuthnSettings
from authsvc.settings.cluster import ClusterSettings
from authsvc.settings.csr_signer import CSRSignerSettings
from authsvc.settings.database import DatabaseSettings
from authsvc.settings.fields import Section, https_url
from authsvc.settings.ldap import LDAPSettings
from authsvc.settings.login import LoginSettings
from authsvc.settings.oidc import OIDCSettings
from authsvc.settings.pki import PKISettings
from authsvc.settings.proxy import ProxySettings
from authsvc.settings.rotation import RotationSettings
from authsvc.settings.self_service import SelfServiceSettings
from authsvc.settings.server import ServerSettings
from authsvc.settings.tokens import TokenSettings


class Settings(Section):
    cluster: ClusterSettings = ClusterSettings()
    pki: PKISettings = PKISettings()
    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    tokens: TokenSettings = TokenSettings()
    authn: AuthnSettings = AuthnSettings()
    ldap: LDAPSettings = LDAPSettings()
    login: LoginSettings = LoginSettings()
    audit: AuditSettings = AuditSettings()
    rotation: RotationSettings = RotationSettings()
    oidc: OIDCSettings = OIDCSettings()
    proxy: ProxySettings = ProxySettings()
    csr_signer: CSRSignerSettings = CSRSignerSettings()
    self_service: SelfServiceSettings = SelfServiceSettings()

    @model_validator(mode="after")
    def _oidc_needs_its_issuer(self) -> Settings:
        if not self.oidc.enabled:
            return self
        if self.tokens.user_issuer is None:
            raise ValueError(
                "oidc.clients needs tokens.user_issuer: the provider's issuer (ID tokens carry it; e.g. "
                "https://authsvc.example:8444/users)"
            )
        if self.server.public_url is None:
            raise ValueError(
                "oidc.clients needs server.public_url: /authorize, /token and /userinfo are published there"
            )
        # An ID token's `aud` is its client id: a client named like an audience the webhook accepts
        # would make its ID tokens bearer tokens for the webhook too.
        taken = {self.tokens.user_audience, self.tokens.issuer, *self.tokens.api_audiences}
        for client in self.oidc.clients:
            if client.id in taken:
                raise ValueError(
                    f"oidc client id {client.id!r} is an audience authsvc's tokens already carry: rename it"
                )
        return self

    @model_validator(mode="after")
    def _self_service_needs_a_sign_in(self) -> Settings:
        if not self.self_service.enabled:
            return self
        if self.server.public_url is None:
            raise ValueError("self_service.enabled needs server.public_url: the page is served there")
        if not self.login.backends:
            raise ValueError("self_service.enabled needs login.backends: people sign in with them")
        return self

    def published_jwks_uri(self) -> str:
        """The `jwks_uri` that discovery publishes: tokens.jwks_uri, else <server.public_url>/openid/v1/jwks.

        Only from configuration, never from a request (its Host or Forwarded headers are the
        caller's to choose, and discovery is publicly cacheable). Raises ConfigError when
        neither is set or server.public_url is not an https URL.
        """
        # Imported here: loading the settings (e.g. for `authsvc login`) must not load the token stack.
        from pki.tokens.jwks import JWKS_PATH

        if self.tokens.jwks_uri is not None:
            return self.tokens.jwks_uri
        public_url = self.server.published_url("discovery publishes <server.public_url>/openid/v1/jwks")
        try:
            https_url(public_url, "server.public_url")
        except ValueError as e:
            raise ConfigError(f"{e} (in authsvc.yaml)") from None
        return public_url.rstrip("/") + JWKS_PATH


def format_validation_error(error: ValidationError, source: str) -> str:
    problems = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(top level)"
        problems.append(f"{path}: {item['msg']}")
    return f"invalid configuration in {source}: " + "; ".join(problems)


def settings_from_mapping(data: Mapping[str, Any], source: str = "configuration") -> Settings:
    try:
        return Settings.model_validate(dict(data))
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from None


def load_settings(path: Path) -> Settings:
    """Read and validate a YAML file; every problem is reported at once with its dotted path."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist (run `authsvc init` first)") from None
    except OSError as e:
        raise ConfigError(f"cannot read configuration file {path}: {e.strerror}") from None
    try:
        # libyaml's loader when present: the pure-Python one costs ~50 ms on every command.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}  # noqa: S506
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    return settings_from_mapping(data, str(path))


def settings_to_yaml(settings: Settings) -> str:
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)


__all__ = ["Settings", "load_settings", "settings_from_mapping", "settings_to_yaml"]
