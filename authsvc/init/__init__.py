"""`authsvc init`: the steps that make a home (config, cluster CA, kubeadm's tree, token signing
key, the webhook's own PKI, the database)."""
