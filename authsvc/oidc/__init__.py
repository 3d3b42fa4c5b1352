"""The OpenID Connect provider: authsvc's own identities (directory, users file) signed in through
the browser, for relying parties such as kubectl's `authsvc login --browser` (docs/oidc.md).

clients   the registered clients (`oidc.clients`) as Authlib sees them; exact redirect matching,
          loopback any-port for public native clients (RFC 8252)
models    who signed in, a redeemed code, a refresh grant, a presented access token
store     codes and token families in the inventory database (use once, reuse revokes)
grants    Authlib's code and refresh grants, PKCE S256, the ID token extension
provider  the Authlib server wired to the above and to TokenService; discovery metadata

The endpoints are in authsvc/web/authorize.py, the sign-in form in authsvc/web/signin.py.
"""
