"""Authentication backends and the chain that walks them.

The registry below maps a backend name used in config (`authn.chain`) to the module
that builds it; adding a backend is adding one module and one line here.
"""

from __future__ import annotations

from authsvc.authn.base import Authenticator

# backend name -> "module:factory"; factory(services) -> Authenticator
REGISTRY: dict[str, str] = {
    "tokenfile": "authsvc.authn.tokenfile:build",
    "bootstrap": "authsvc.authn.bootstrap:build",
    "issuers": "authsvc.authn.issuers:build",
    "authsvc": "authsvc.authn.authsvc_tokens:build",
}

__all__ = ["REGISTRY", "Authenticator"]
