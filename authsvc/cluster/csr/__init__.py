"""`authsvc csr-signer`: the cluster's CertificateSigningRequests signed (and, if asked, approved)
under authsvc's policy, and `authsvc csr list`.

- `requests`: a CSR object read into a frozen view (state, decision, the request) and the bodies
  the signer writes back (a condition, the certificate);
- `signers`: the configured signerNames, each with its rules (pki/csr_signers.py), CA and lifetime;
- `approver`: the kubelet-serving and kubelet-client approval rules, pure functions of the
  request and the Node;
- `handler`: one request decided and written: approve/deny through `approval`, sign or mark
  Failed through `status`, the inventory record, the audit line, the metrics;
- `watcher`: list + watch from the list's resourceVersion, re-listing after a 410 or an error;
- `process`: the leader election (authsvc/cluster/leader.py) and the watcher wired together.

Only the leader of the Lease acts; the kubernetes client is imported inside functions.
"""
