"""Readings from the field: store the normalized form, feed lines, evaluate rules.

Interface (the OPC UA slice fills it in; the collector, the poll endpoint and
Celery call it):

    readings_store(*, connector_id: int, readings: list[dict], actor=None) -> dict
        readings: the contract's normalized dicts (timestamp, tag_name, value,
        unit, quality, alarm_state); stores them (one row per tag and source
        timestamp: a repeat is skipped), sends mapped machine tags through
        ``lines.services.readings_ingest``, evaluates alert rules
        (``scada.alarms.readings_evaluate``) and returns
        {"stored": n, "duplicates": n, "alarms_raised": n}.
    connector_poll(*, connector_id: int, actor) -> dict   # POST /api/scada/poll
    connector_test(*, connector_id: int, actor) -> dict   # POST /api/scada/test
    connector_browse(*, connector_id: int, actor) -> list[dict]
"""
