"""LIMS quality results into passports' QA events (the LIMS slice fills it in)."""
