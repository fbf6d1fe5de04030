from django.apps import AppConfig


class ElogConfig(AppConfig):
    name = "elog"
    verbose_name = "Electronic log and audit"
