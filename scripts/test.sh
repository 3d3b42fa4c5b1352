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

# The e2e suite's control plane: prints the binary's path (builds it the first time: ~6 min).
KUBE_APISERVER="$(scripts/kube-apiserver.sh)"
export KUBE_APISERVER

.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
