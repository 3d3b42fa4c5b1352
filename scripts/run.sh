#!/usr/bin/env bash
# The main job on embedded defaults: a venv with authsvc, a home with the cluster PKI
# (./authsvc-data, or $AUTHSVC_HOME), and the TokenReview webhook served over TLS + mTLS
# on 127.0.0.1:8443. No external server is needed: SQLite holds the inventory.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q -e . >/dev/null
export AUTHSVC_HOME="${AUTHSVC_HOME:-$PWD/authsvc-data}"
.venv/bin/authsvc init
.venv/bin/authsvc webhook-config --url https://127.0.0.1:8443/authenticate -o "$AUTHSVC_HOME/webhook.kubeconfig"
exec .venv/bin/authsvc serve --public-bind 127.0.0.1:8444 "$@"
