"""A relying party built on a maintained third-party client library: Authlib's requests client
(OAuth2Session) makes the authorization URL (state, nonce, PKCE S256), checks the redirect's
state and exchanges the code; the ID token is verified as Authlib's OpenID client does
(joserfc with the provider's JWKS, then CodeIDToken's checks of iss, aud, exp, nonce, at_hash).

The browser is played by a requests session (GET the form, POST the credentials, stop at the
redirect); tests/e2e/test_oidc_browser.py uses a real Chromium instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from tests.oidc.support import read_form

SCOPE = "openid profile groups"


@dataclass
class Attempt:
    """One authorization request: its URL and the secrets the client keeps."""

    url: str
    state: str
    nonce: str
    verifier: str


class RelyingParty:
    def __init__(self, issuer: str, client_id: str, redirect_uri: str, ca_file: Path) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.ca_file = str(ca_file)
        discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = requests.get(discovery, verify=self.ca_file, timeout=10)
        response.raise_for_status()
        self.metadata: dict[str, Any] = response.json()
        assert self.metadata["issuer"] == issuer

    def session(self) -> OAuth2Session:
        session = OAuth2Session(
            self.client_id,
            redirect_uri=self.redirect_uri,
            scope=SCOPE,
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
        )
        session.verify = self.ca_file
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over `verify`
        return session

    def start(self, session: OAuth2Session) -> Attempt:
        verifier, nonce = generate_token(64), generate_token(24)
        url, state = session.create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        return Attempt(url, state, nonce, verifier)

    def browser_sign_in(self, attempt: Attempt, username: str, password: str) -> requests.Response:
        """What a browser does: GET the form, POST it; the answer, redirects not followed."""
        browser = requests.Session()
        browser.verify = self.ca_file
        browser.trust_env = False
        form_page = browser.get(attempt.url, timeout=10, allow_redirects=False)
        assert form_page.status_code == 200, form_page.text
        action, inputs = read_form(form_page.text)
        inputs.update(username=username, password=password)
        target = requests.compat.urljoin(attempt.url, action)
        return browser.post(target, data=inputs, timeout=30, allow_redirects=False)

    def exchange(self, session: OAuth2Session, attempt: Attempt, location: str) -> dict[str, Any]:
        """The code in `location` for tokens (Authlib checks the state)."""
        token: dict[str, Any] = session.fetch_token(
            self.metadata["token_endpoint"], authorization_response=location, code_verifier=attempt.verifier
        )
        return token

    def id_token_claims(self, token: dict[str, Any], nonce: str) -> CodeIDToken:
        """Verify the ID token as Authlib's OpenID client does; raises joserfc/Authlib errors."""
        keys = requests.get(self.metadata["jwks_uri"], verify=self.ca_file, timeout=10).json()
        decoded = jwt.decode(
            token["id_token"],
            key=KeySet.import_key_set(keys),
            registry=JWSRegistry(algorithms=self.metadata["id_token_signing_alg_values_supported"]),
        )
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"values": [self.issuer]}},
            {"nonce": nonce, "client_id": self.client_id, "access_token": token["access_token"]},
        )
        claims.validate(leeway=30)
        return claims

    def sign_in(self, username: str, password: str) -> tuple[dict[str, Any], CodeIDToken]:
        """The whole flow; the token response and the verified ID token claims."""
        session = self.session()
        attempt = self.start(session)
        answer = self.browser_sign_in(attempt, username, password)
        assert answer.status_code == 302, answer.text
        token = self.exchange(session, attempt, answer.headers["Location"])
        return token, self.id_token_claims(token, attempt.nonce)
