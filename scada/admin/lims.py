"""Admin of SCADA lims."""
