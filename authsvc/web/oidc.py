"""`GET /.well-known/openid-configuration` and `GET /openid/v1/jwks`: issuer discovery for the
tokens authsvc signs, in kube-apiserver's shape (pkg/routes/openidmetadata.go): JSON
discovery, `application/jwk-set+json` key set, `Cache-Control: public, max-age=<jwks_max_age>`.

The JWKS body is rendered once per key snapshot; a request costs a cache check and a copy.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from authsvc.app import services_of
from pki.errors import KeyUnavailable
from pki.tokens import TokenService
from pki.tokens.jwks import DISCOVERY_PATH, JWKS_MEDIA_TYPE, JWKS_PATH

blueprint = Blueprint("oidc", __name__)


def _service() -> TokenService:
    return services_of(current_app).home.token_service


def _cache_control() -> str:
    max_age = int(services_of(current_app).settings.tokens.jwks_max_age.total_seconds())
    return f"public, max-age={max_age}"


@blueprint.get(DISCOVERY_PATH)
def openid_configuration() -> Response:
    settings = services_of(current_app).settings.tokens
    jwks_uri = settings.jwks_uri or request.url_root.rstrip("/") + JWKS_PATH
    body = json.dumps(_service().discovery(jwks_uri))
    return Response(body, mimetype="application/json", headers={"Cache-Control": _cache_control()})


@blueprint.get(JWKS_PATH)
def jwks() -> Response:
    return Response(_service().jwks_json(), mimetype=JWKS_MEDIA_TYPE, headers={"Cache-Control": _cache_control()})


@blueprint.errorhandler(KeyUnavailable)
def keys_unavailable(error: KeyUnavailable) -> Response:
    # Not cacheable: a relying party must retry, not keep an error for an hour.
    current_app.logger.error("OIDC discovery: %s", error)
    body = json.dumps({"error": "signing keys are unavailable; retry later"})
    return Response(body, 503, mimetype="application/json", headers={"Cache-Control": "no-store"})
