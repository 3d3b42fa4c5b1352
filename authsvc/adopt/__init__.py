"""Adopting an existing kubeadm cluster: `authsvc pki import`.

- `kubeconfigs`: kubeadm's kubeconfigs next to the PKI directory, read and checked;
- `cluster_config`: a kubeadm configuration file (ClusterConfiguration, InitConfiguration);
- `infer`: the `cluster:` settings, inferred from what is imported and said with their source;
- `tree`: copying (or, in place, only recording) the PKI files and the kubeconfigs;
- `adoption`: the whole import, which leaves a home from which every command works.

Exports nothing: import from the module you need.
"""
