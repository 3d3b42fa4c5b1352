"""What can go wrong when authsvc talks to the API server, as one typed error each.

Every call through `ClusterClient.call` turns the kubernetes client's exceptions into these
(`translate`), so no caller sees an `ApiException` or a urllib3 error, and the CLI prints each
as one line: the API server's own words for a refusal (a 403 names the verb, resource and
namespace that are missing), where the connection came from for the rest.
"""

from __future__ import annotations

import json
from typing import Any

from authsvc.errors import AuthsvcError

# What a command that needs the cluster says when nothing configures a connection.
NO_CONNECTION = "no cluster connection: set cluster.api.kubeconfig or --kubeconfig"


class ClusterError(AuthsvcError):
    """Root of the errors of the cluster connection; `status` is the HTTP status when there was one."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.reason = reason


class NoClusterConnection(ClusterError):
    """A command needs the cluster and nothing says how to reach it (or the kubeconfig is unusable)."""


class ClusterUnreachable(ClusterError):
    """The API server did not answer: down, wrong address, TLS failure, timeout."""


class ClusterUnauthorized(ClusterError):
    """401: the API server did not accept the connection's credentials."""

    status = 401


class ClusterForbidden(ClusterError):
    """403: the connection's user lacks a permission; the message is the API server's, naming it."""

    status = 403


class ClusterNotFound(ClusterError):
    """404: the object (or its namespace) does not exist."""

    status = 404


class ClusterConflict(ClusterError):
    """409: the object exists already, or changed since it was read; or authsvc does not manage it."""

    status = 409


class ClusterInvalid(ClusterError):
    """400/422: the API server refused the object as invalid; the message is its own."""


def status_message(body: Any) -> tuple[str, str]:
    """(message, reason) of a metav1.Status body; ("", "") when the body is not one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return "", ""
    if not isinstance(status, dict):
        return "", ""
    message, reason = status.get("message"), status.get("reason")
    return (message if isinstance(message, str) else ""), (reason if isinstance(reason, str) else "")


def api_error(status: int, body: Any, action: str, where: str) -> ClusterError:
    """The typed error for an HTTP error answer to `action` (e.g. "create Secret kube-system/x")."""
    message, reason = status_message(body)
    message = " ".join(message.split())
    if status == 401:
        return ClusterUnauthorized(f"the API server at {where} refused the credentials: Unauthorized", reason=reason)
    if status == 403:
        # The API server's message is the useful part: `User "bob" cannot create resource "secrets"
        # in API group "" in the namespace "kube-system"`.
        detail = message.split(" is forbidden: ", 1)[-1] if message else f"{action}: Forbidden"
        return ClusterForbidden(f"forbidden: {detail} (needed to {action})", reason=reason)
    text = message or f"HTTP {status}"
    if status == 404:
        return ClusterNotFound(f"{action}: {text}", reason=reason)
    if status == 409:
        return ClusterConflict(f"{action}: {text}", reason=reason)
    if status in (400, 422):
        return ClusterInvalid(f"{action}: the API server refused it: {text}", status=status, reason=reason)
    return ClusterError(f"{action}: the API server answered HTTP {status}: {text}", status=status, reason=reason)


def unreachable(error: BaseException, where: str) -> ClusterUnreachable:
    """The error for a request that got no HTTP answer (connection refused, TLS, timeout)."""
    cause = _root_cause(error)
    text = str(cause).strip() or type(cause).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        text = "its TLS certificate does not verify with the kubeconfig's certificate-authority"
    elif "Connection refused" in text:
        text = "connection refused"
    elif "timed out" in text.lower():
        text = "timed out"
    return ClusterUnreachable(f"cannot reach the API server at {where}: {text}")


def _root_cause(error: BaseException) -> BaseException:
    """urllib3 wraps the socket error in MaxRetryError(reason=NewConnectionError(...))."""
    seen = 0
    while seen < 5:
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException):
            break
        error, seen = inner, seen + 1
    return error
