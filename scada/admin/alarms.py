"""Admin of SCADA alarms."""
