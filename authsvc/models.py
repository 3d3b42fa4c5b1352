"""Imports every module that defines tables on the shared Base, so one call creates them all.

Add a line here when a module adds tables (the Alembic environment imports this too).
"""

from __future__ import annotations

import authsvc.authn.bootstrap  # noqa: F401
import authsvc.issue  # noqa: F401
import pki.inventory  # noqa: F401
import pki.tokens.signing_keys  # noqa: F401
