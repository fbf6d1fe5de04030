from django.apps import AppConfig


class RowCountsConfig(AppConfig):
    name = "bpmos.rowcounts"
    label = "rowcounts"
    verbose_name = "Kept row counts"
