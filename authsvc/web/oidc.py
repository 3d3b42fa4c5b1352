"""`GET /.well-known/openid-configuration` and `GET /openid/v1/jwks`: issuer discovery for the
tokens authsvc signs, in kube-apiserver's shape (pkg/routes/openidmetadata.go): JSON
discovery, `application/jwk-set+json` key set, `Cache-Control: public, max-age=<jwks_max_age>`.

With `tokens.user_issuer` set, `GET <its path>/.well-known/openid-configuration` is the user
issuer's discovery (its `issuer`, the same keys): where kube-apiserver's JWT authenticator for
user tokens looks, `{issuer}/.well-known/openid-configuration` or `discoveryURL`. With
`oidc.clients` set, the user issuer is an OpenID Connect provider and this document also names
its endpoints (authsvc/oidc/provider.py: `Provider.metadata`).

Every URL in these documents comes from the settings (the issuers, `tokens.jwks_uri` or
`server.public_url`), fixed when the app is built; nothing is taken from the request: its Host,
X-Forwarded-Host or Forwarded headers are the caller's to choose, and the replies are publicly
cacheable, so a shared cache would hand the caller's key-set URL to every verifier.

The JWKS body is rendered once per key snapshot; a request costs a cache check and a copy.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

from flask import Blueprint, Flask, Response, abort, current_app, request
from flask.blueprints import BlueprintSetupState

from authsvc.web.app import runtime_of
from pki.errors import KeyUnavailable
from pki.tokens import TokenService
from pki.tokens.jwks import DISCOVERY_PATH, JWKS_MEDIA_TYPE, JWKS_PATH, discovery_path

blueprint = Blueprint("oidc", __name__)


def _service() -> TokenService:
    return runtime_of(current_app).home.stores.token_service


def _cache_control() -> str:
    max_age = int(runtime_of(current_app).settings.tokens.jwks_max_age.total_seconds())
    return f"public, max-age={max_age}"


JWKS_URI_EXTENSION = "authsvc.jwks_uri"


@blueprint.record_once
def _fix_jwks_uri(state: BlueprintSetupState) -> None:
    # Raises ConfigError while the app is built (at start), not on the first request.
    app = state.app
    assert isinstance(app, Flask)  # flask types the setup state's app as its sans-IO base
    app.extensions[JWKS_URI_EXTENSION] = runtime_of(app).settings.published_jwks_uri()


def _jwks_uri() -> str:
    jwks_uri: str = current_app.extensions[JWKS_URI_EXTENSION]
    return jwks_uri


def _discovery_response(document: dict[str, object]) -> Response:
    return Response(json.dumps(document), mimetype="application/json", headers={"Cache-Control": _cache_control()})


@blueprint.get(DISCOVERY_PATH)
def openid_configuration() -> Response:
    return _discovery_response(_service().discovery(_jwks_uri()))


# Any path ending in the discovery suffix; only the user issuer's answers (its path comes from the
# settings, so the rule cannot be fixed here). The service-account rule above is static and wins.
@blueprint.get(f"/<path:issuer_path>{DISCOVERY_PATH}")
def user_openid_configuration(issuer_path: str) -> Response:
    user_issuer = runtime_of(current_app).settings.tokens.user_issuer
    # request.path is percent-decoded; the issuer URL may not be.
    if user_issuer is None or request.path != unquote(discovery_path(user_issuer)):
        abort(404)
    document = _service().user_discovery(_jwks_uri())
    provider = runtime_of(current_app).oidc
    if provider is not None:  # the user issuer is also the OpenID Connect provider's
        document.update(provider.metadata())
    return _discovery_response(document)


@blueprint.get(JWKS_PATH)
def jwks() -> Response:
    return Response(_service().jwks_json(), mimetype=JWKS_MEDIA_TYPE, headers={"Cache-Control": _cache_control()})


@blueprint.errorhandler(KeyUnavailable)
def keys_unavailable(error: KeyUnavailable) -> Response:
    # Not cacheable: a relying party must retry, not keep an error for an hour.
    current_app.logger.error("OIDC discovery: %s", error)
    body = json.dumps({"error": "signing keys are unavailable; retry later"})
    return Response(body, 503, mimetype="application/json", headers={"Cache-Control": "no-store"})
