"""Login: directory (LDAP) or static-file credentials in, a short-lived authsvc token out.

backends   the "ldap" and "users" login backends and their verdicts
ratelimit  failed-login limits per user and per client address (in the inventory database)
service    LoginService: the order of checks behind POST /login
wiring     install(services): builds the above once per server process and registers the
           identity refreshers the webhook calls
client     `authsvc login` / `authsvc logout`, the kubectl exec plugin (standard library only:
           kubectl runs it before every command)
browser    `authsvc login --browser`: the OIDC code flow with PKCE on a loopback port, ID tokens
           cached and refreshed under client's cache lock

This package's __init__ imports nothing: `authsvc.login.client` must start fast.
"""
