"""Admin of compliance's returns area."""
