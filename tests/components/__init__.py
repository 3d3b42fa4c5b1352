"""Real external components run as child processes for tests: OpenLDAP slapd (slapd.py),
PostgreSQL (postgres.py), a Samba AD domain controller (samba_ad.py), etcd + kube-apiserver
(kube_apiserver.py); `authsvc serve` itself is started by tests/serve/support.py.

All of them share one lifecycle, `process.ChildProcess`: start with a readiness probe, a check
that the ports are listened on by the started process and no other, stop (graceful signal,
then SIGKILL to the leader's descendants and process group, waiting until none is left), restart,
freeze/thaw, one log file per component. support.py has what the fixtures around them need:
`free_port`/`free_ports` (outside the kernel's ephemeral range, never twice in a run),
`eventually` (every wait for something that takes a moment), `require_binary` (fail under
CI=true, skip elsewhere), `log_tail`.

Adding a component: a class that picks its ports with `free_ports`, holds a `ChildProcess` and
calls its `start(argv, ready=..., ports=...)` inside `on_free_ports`, so that a port taken
before the server binds it is chosen again (slapd.py; samba_ad.py, on fixed ports, does
without); see process.py's docstring.
"""
