"""Admin of SCADA connectors."""
