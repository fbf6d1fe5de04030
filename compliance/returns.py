"""Compliance returns: build (the EPR figures and the pack rows behind them,
frozen), approve (a supervisor, plant head or admin; recorded), export as the
regulator's CSV (only an approved return; audited as ``compliance_export``).

Interface (the API, the admin and ``compliance.mailing`` call these):

* ``return_build(*, period, actor, note="") -> ComplianceReturn``
* ``return_approve(*, return_id, actor) -> ComplianceReturn`` (409 unless draft)
* ``return_csv(ret, schema) -> bytes``: the return in a schema's layout,
  cells escaped against CSV injection
* ``return_export(*, return_id, schema_slug, actor, source) -> Export``
  (409 unless approved; one ``compliance_export`` audit row per export)
"""

from __future__ import annotations
