"""The access lifecycle of a person: who has access, taking it away everywhere, giving it back.

- `bans`: the users whose access was revoked (`access_bans`), and the gate that refuses to
  mint anything for them (certificates, tokens, kubeconfigs, logins);
- `denylist`: the in-memory revocation set (revoked token ids and certificate serials, banned
  names) a server checks on every request, refreshed every `tokens.cache_refresh`:
  `Denylist.is_revoked_or_banned(user, credential_ids)` is the one check the webhook (every
  cached answer) and the authentication proxy make;
- `inventory`: everything authsvc knows of a user's access (`authsvc access list`);
- `revoke`: `authsvc access revoke` and `access restore`, planned, then done, with a report in
  plain words of when each credential stops working;
- `trail`: the audit lines of what changes access (issued, revoked, banned, granted).

The audit trail's writer and reader are authsvc/audit.
"""
