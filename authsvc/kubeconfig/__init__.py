"""People's kubeconfigs: the documents (build, merge, write) and the issuer that makes a
credential in one of its modes and records it."""
