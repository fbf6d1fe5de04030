"""Admin of compliance's mailing area."""
