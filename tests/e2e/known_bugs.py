"""Defects the end-to-end suite found in other parts, as strict xfail markers (one place to delete).

strict=True: the day the defect is fixed the marked test passes, pytest reports XPASS(strict)
as a failure, and the marker must be removed here; until then the summary lists the reason.
"""

from __future__ import annotations

import pytest

# authsvc user tokens (`issue --mode token`, `token create-user`, /login) carry
# aud=[tokens.user_audience] ("authsvc"). kube-apiserver sends its --api-audiences (the issuer)
# in the TokenReview's spec.audiences; authsvc.tokenreview.granted_audiences intersects them
# with the token's audiences, finds none, and denies (audit: decision deny, backend authsvc).
# So no user token can ever authenticate to a real API server through the webhook.
# Fix (owner: tokens/webhook): answer user tokens audience-agnostic (UserInfo.audiences=()
# in authsvc.authn.authsvc_tokens for kind user, as IssuerSettings.audience_aware=False does),
# so the API server applies its implicit audiences. Checked: with tokens.user_audience set to
# the API audience instead, every marked test passes.
USER_TOKEN_AUDIENCE = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="known bug: the webhook denies authsvc user tokens (aud 'authsvc') when kube-apiserver "
    "sends spec.audiences=[issuer]; see tests/e2e/known_bugs.py",
)
