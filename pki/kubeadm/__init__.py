"""kubeadm's PKI: the certificate and kubeconfig list (certlist), importing a kubeadm tree, and
`check-expiration`'s report."""
