#!/usr/bin/env bash
# Print the path of a kubeadm v1.20.2 built from the same Debian source package, the same way
# and into the same cache as scripts/kube-apiserver.sh's kube-apiserver (it builds it: one
# more `go build` of cmd/kubeadm, which reuses kube-apiserver's Go build cache).
# The e2e tests run it as an independent reader of what authsvc writes (bootstrap-token
# Secrets, the PKI tree). `--help` and `--print-version` are kube-apiserver.sh's.
set -euo pipefail
exec "$(dirname "$0")/kube-apiserver.sh" "$@" kubeadm
