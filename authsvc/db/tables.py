"""Imports every module that defines tables on the shared Base, so one call creates them all.

Add a line here when a module adds tables (the Alembic environment imports this too).
"""

from __future__ import annotations

import authsvc.authn.bootstrap
import authsvc.kubeconfig.issuer
import authsvc.login.ratelimit
import authsvc.rotation.runs  # noqa: F401
import pki.inventory
import pki.tokens.signing_keys  # noqa: F401
