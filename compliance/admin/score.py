"""Admin of compliance's score area."""
