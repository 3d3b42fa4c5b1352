#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, a venv with the project and its
# dev extra, a real kube-apiserver (built once, cached outside the repository), then pytest.
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/e2e -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/system-deps.sh
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[dev]'

# The e2e suite's control plane, and kubeadm from the same tree (an independent reader of what
# authsvc writes): their paths, one a line. The first run builds them (~6 min, +~1 min for
# kubeadm, from one unpacked source); later runs find them cached.
kube_binaries="$(scripts/kube-apiserver.sh kube-apiserver kubeadm)"
KUBE_APISERVER="$(sed -n 1p <<<"$kube_binaries")"
KUBEADM="$(sed -n 2p <<<"$kube_binaries")"
export KUBE_APISERVER KUBEADM

.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
