"""Admin of compliance's report jobs area."""
