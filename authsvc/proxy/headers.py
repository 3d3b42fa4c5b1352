"""What crosses the proxy: the headers a client may not send, and the identity each mode adds.

Pure functions on (name, value) pairs, so that the rules are tested alone:

- `forwarded_request_headers`: the client's headers minus everything that could speak for
  someone (`Authorization`, every `Impersonate-*` and `X-Remote-*`, the configured
  request-header names), the hop-by-hop headers of RFC 9110 §7.6.1 (and those the client's
  `Connection` names), `Host` and the client's own forwarding claims;
- `request_header_identity` / `impersonation_identity`: the headers the API server reads the
  person from, in each mode, extra keys percent-encoded as client-go does (`headerKeyEscape`
  in k8s.io/client-go/transport/round_trippers.go), so kube-apiserver's `url.PathUnescape`
  gets the key back;
- `forwarded_response_headers`: the API server's answer minus hop-by-hop headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from authsvc.identity import UserInfo

Header = tuple[str, str]

# RFC 9110 §7.6.1 and the older names proxies still meet.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Headers through which an API server may be told who is asking, whatever its flags say:
# kube-apiserver's impersonation filter (Impersonate-User/-Group/-Uid/-Extra-*) and the
# request-header authenticator (kubeadm's X-Remote-User/-Group/-Extra-*).
IDENTITY_PREFIXES = ("impersonate-", "x-remote-")
# The client's credential is the proxy's to check, never the API server's to see; `Host` is
# the proxy's; forwarding claims are the proxy's to make (`X-Forwarded-For` is set anew).
# `Expect` is answered by the proxy's server, which reads the body itself.
CLIENT_ONLY = frozenset(
    {
        "authorization",
        "host",
        "expect",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
# Bytes allowed unescaped in an extra key of a header name: RFC 7230 token characters, less
# '%' (which url.PathUnescape would read as an escape).
_TOKEN_BYTES = frozenset(b"!#$&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def connection_tokens(headers: Iterable[Header]) -> frozenset[str]:
    """The header names a `Connection` header lists (hop-by-hop for this connection only)."""
    return frozenset(
        token.strip().lower() for name, value in headers if name.lower() == "connection" for token in value.split(",")
    )


def is_upgrade(headers: Iterable[Header]) -> bool:
    """An HTTP/1.1 protocol upgrade (SPDY/3.1 for kubectl exec, attach and port-forward up to
    1.29, WebSocket after): `Connection: Upgrade` and an `Upgrade` header."""
    pairs = list(headers)
    return "upgrade" in connection_tokens(pairs) and any(name.lower() == "upgrade" and value for name, value in pairs)


def forwarded_request_headers(
    headers: Iterable[Header], *, identity_names: Iterable[str] = (), upgrade: bool = False
) -> list[Header]:
    """The client's headers that go on to the API server. `identity_names`: more header names
    (or, ending in '-', prefixes) that carry an identity under the API server's flags; `upgrade`
    keeps `Connection: Upgrade` and `Upgrade` for a protocol upgrade."""
    pairs = list(headers)
    named_by_connection = connection_tokens(pairs)
    extra = tuple(n.lower() for n in identity_names)
    prefixes = IDENTITY_PREFIXES + tuple(n for n in extra if n.endswith("-"))
    exact = CLIENT_ONLY | HOP_BY_HOP | named_by_connection | {n for n in extra if not n.endswith("-")}
    kept = [
        (name, value) for name, value in pairs if (low := name.lower()) not in exact and not low.startswith(prefixes)
    ]
    if upgrade:
        kept += [("Connection", "Upgrade")] + [(name, value) for name, value in pairs if name.lower() == "upgrade"]
    return kept


def forwarded_response_headers(headers: Iterable[Header], *, upgrade: bool = False) -> list[Header]:
    """The API server's response headers that go back to the client (no hop-by-hop ones;
    `Connection: Upgrade` and `Upgrade` kept on a 101)."""
    pairs = list(headers)
    dropped = HOP_BY_HOP | connection_tokens(pairs)
    kept = [(name, value) for name, value in pairs if name.lower() not in dropped]
    if upgrade:
        kept += [("Connection", "Upgrade")] + [(name, value) for name, value in pairs if name.lower() == "upgrade"]
    return kept


def escape_extra_key(key: str) -> str:
    """An extra key as a header-name suffix: client-go's headerKeyEscape (%XX for every byte that
    is not a token character, and for '%')."""
    return "".join(chr(b) if b in _TOKEN_BYTES else f"%{b:02X}" for b in key.encode())


def request_header_identity(
    user: UserInfo, *, username_header: str, group_header: str, extra_header_prefix: str
) -> list[Header]:
    """request-header mode: the person as kube-apiserver's --requestheader-* flags read it."""
    headers = [(username_header, user.username)]
    headers += [(group_header, group) for group in user.groups]
    headers += _extras(extra_header_prefix, user.extra)
    return headers


def impersonation_identity(user: UserInfo) -> list[Header]:
    """impersonation mode: the person as kube-apiserver's impersonation filter reads it.
    No `Impersonate-Uid`: kube-apiserver before 1.22 does not know it, and later ones require a
    separate `impersonate` grant on `uids` for it."""
    headers = [("Impersonate-User", user.username)]
    headers += [("Impersonate-Group", group) for group in user.groups]
    headers += _extras("Impersonate-Extra-", user.extra)
    return headers


def _extras(prefix: str, extra: Mapping[str, tuple[str, ...]]) -> list[Header]:
    return [(prefix + escape_extra_key(key), value) for key, values in sorted(extra.items()) for value in values]


def has_control_characters(user: UserInfo) -> bool:
    """Whether a name of the identity cannot be a header value (a client certificate's CN may
    hold anything its CA signed): such an identity is refused, never forwarded altered."""
    values = [user.username, *user.groups, *user.extra, *(v for values in user.extra.values() for v in values)]
    return any(ch < " " or ch == "\x7f" for value in values for ch in value)
