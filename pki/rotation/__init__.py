"""What is due for rotation (pure functions of facts and the clock) and CA rollover bundles."""
