"""`authsvc rotate`, the cron job: facts about a home, the executor, file writes and backups, the
run lock, run records and their report, and the CA rollover."""
