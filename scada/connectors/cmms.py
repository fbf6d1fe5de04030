"""The cmms connector (filled in by its slice of the field-connectors work)."""
