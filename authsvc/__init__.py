"""authsvc: the service around the pki library (webhook, login, kubeconfigs, CLI)."""

__version__ = "0.1.0"
