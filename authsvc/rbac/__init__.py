"""Least-privilege RBAC from the API server's audit log: `authsvc rbac suggest`.

Reads audit.k8s.io v1/v1beta1 events line by line (`reader`), keeps one subject's requests
(`subjects`, `requests`), folds them into the narrowest grants (`grants`), and builds Roles,
ClusterRoles and their bindings with the kubernetes client's models (`objects`). `suggest` wires
these together; `apply` writes the objects through a kubernetes ApiClient (create or update,
server-side dry run). Nothing here reads the home: the log and the subject are the only inputs.
"""
