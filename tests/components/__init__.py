"""Real external components (OpenLDAP slapd, PostgreSQL) run as child processes for tests."""
