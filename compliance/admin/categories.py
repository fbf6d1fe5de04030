"""Admin of compliance's categories area."""
