from django.apps import AppConfig


class LinesConfig(AppConfig):
    name = "lines"

    def ready(self) -> None:
        from elog import shifts
        from lines import oee, readmodels

        # The shift log's shifts are the lines' (elog may not import lines).
        shifts.calendar_register(oee.shift_calendar)

        readmodels.LINE_STATUS.connect()
        readmodels.OPERATIONS.connect()
        readmodels.ROLLUPS.connect()
