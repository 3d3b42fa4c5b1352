"""The cluster side of access: authsvc acting through the API server, where access is decided.

- `connection`: where the connection comes from (--kubeconfig, cluster.api.kubeconfig,
  KUBECONFIG, in-cluster) and the one place the kubernetes client is built (`connect`);
  `ClusterClient.call` turns every client error into one of `errors`' typed errors;
- `objects` / `apply`: the kinds authsvc writes, create-or-update that writes nothing when
  nothing changed, server-side dry runs before any write;
- `bootstrap_objects` / `bootstrap`: what `kubeadm init` creates for its PKI to work
  (`authsvc cluster bootstrap`); `cluster_info`: the discovery ConfigMap and its JWS;
- `bootstrap_tokens`: bootstrap tokens as kubeadm's Secrets, kept in step with authsvc's store;
- `service_accounts`: the UIDs a service-account token must carry; `grants`: bindings for people.

The kubernetes client is imported only inside functions: importing this package is free, and
commands that end up with no connection never load the client.
"""
