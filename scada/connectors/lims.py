"""The lims connector (filled in by its slice of the field-connectors work)."""
