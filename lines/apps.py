from django.apps import AppConfig


class LinesConfig(AppConfig):
    name = "lines"

    def ready(self) -> None:
        from lines import readmodels

        readmodels.LINE_STATUS.connect()
        readmodels.OPERATIONS.connect()
