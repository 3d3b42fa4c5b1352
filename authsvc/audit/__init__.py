"""The audit trail: one JSON line per thing that changes or decides access, in one schema.

    {"time":"2030-01-01T00:00:00.000+00:00","actor":"cli:root","action":"cert.issue",
     "subject":"alice","outcome":"ok","reason":"","ids":{"serial":"4fce..."},"groups":["dev"]}

- `events`: the schema (`AuditEvent`), the action names and the rendering of a line;
- `log`: the writer (`AuditLog`): whole lines, batched on the webhook's hot path, O_APPEND;
- `reader`: `authsvc audit`'s streaming reader and its filters (older line shapes included).

Every writer of the trail (the webhook, /login, the command line, rotation, the CSR signer)
goes through `AuditLog.record` (or its pre-rendered TokenReview form): never a token, a
password or a key, only ids (a serial, a token id, a 12-hex-digit fingerprint).
"""
