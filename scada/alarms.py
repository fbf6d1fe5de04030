"""Alert rules and alarms (ISA-18.2). Interface (the alarms slice fills it in):

readings_evaluate(*, readings: list[ScadaReading]) -> list[AlarmEvent]
    Runs the enabled rules of the readings' tags (limits, deadband,
    on/off-delay); returns the alarms raised. Called by
    ``scada.readings.readings_store`` inside its transaction.
alerts_process(*, actor, now=None) -> dict     # POST /api/alerts/process, beat
comm_loss_raise(*, connector_id: int, error: str) -> AlarmEvent | None
comm_loss_clear(*, connector_id: int) -> None
alarm_acknowledge / alarm_shelve / alarm_unshelve (keyword-only, actor)
"""
