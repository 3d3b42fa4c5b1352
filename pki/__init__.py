"""authsvc's certificate authority library.

Pure builders for keys, certificates, CRLs and tokens, plus a thin storage layer
(atomic files in kubeadm's layout and an SQLAlchemy inventory). Imports no web
framework, no LDAP client and no CLI toolkit: it can be used from a notebook.
"""
