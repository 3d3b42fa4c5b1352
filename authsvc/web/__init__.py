"""HTTP blueprints, one per concern (webhook, oidc, login, health)."""
