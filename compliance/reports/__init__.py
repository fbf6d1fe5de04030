"""Reports (control-UI contract, group VIII): a registry of report templates,
each of which reads REAL plant data for a preview panel and a full download.

* ``compliance.reports.base``: what a report is (``Report``, ``Param``,
  ``Column``, ``Chart``) and the registry (``REGISTRY``, ``report_get``);
* ``compliance.reports.catalog``: the plant's reports, one class each;
* ``compliance.reports.csvout``: a report as CSV (escaped against CSV injection);
* ``compliance.reports.pdf`` and ``compliance.reports.charts``: a report as a
  PDF with its charts (reportlab and matplotlib);
* ``compliance.reports.jobs``: long reports rendered by a Celery worker with
  progress a client polls.
"""
