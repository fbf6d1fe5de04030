from django.apps import AppConfig


class BpmosConfig(AppConfig):
    """The project package as an app: management commands, and input rules
    that apply to every serializer."""

    name = "bpmos"
    verbose_name = "BPM-OS"

    def ready(self) -> None:
        from bpmos import textfields
        from bpmos.dashboards import live, readmodels

        textfields.install()
        live.install()  # attention changes pushed live (the role dashboards)
        readmodels.install()  # the dashboards' cached payloads, dropped on change
