"""The self-service access page's work (the web layer is authsvc/web/self_service.py): sign-in
sessions (sessions.py), the kubeconfig a person downloads and the commands that use it
(kubeconfigs.py), and the credentials they hold and may revoke (credentials.py). Each calls the
one implementation that already exists: the login service, KubeconfigIssuer, `access list`'s
collection and the revocations of `token revoke` / `certs revoke`.
"""
