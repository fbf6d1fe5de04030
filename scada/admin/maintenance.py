"""Admin of SCADA maintenance."""
