# Shortcuts for the test scripts. scripts/test.sh installs what the tests need (Debian packages,
# the venv, the cached kube-apiserver; see docs/e2e.md) and passes its arguments to pytest.
.PHONY: test e2e lint

# The whole suite (what CI runs: .ci/run).
test:
	scripts/test.sh

# Only the end-to-end suite: a real etcd + kube-apiserver wired to authsvc, driven by kubectl.
e2e:
	scripts/test.sh tests/e2e

# Static checks only (no system packages, no servers).
lint:
	.venv/bin/ruff check .
	.venv/bin/mypy
