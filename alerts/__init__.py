"""Market state, rule evaluation and alert delivery."""
