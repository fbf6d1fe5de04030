"""Reports as PDFs (compliance.reports.pdf) and their charts
(compliance.reports.charts): a PDF that opens (pypdf), whose text carries the
title, the parameters, the summary, the rows and each chart's title, with an
image per chart; markup in the data printed as written; the row limit said in
the PDF; the table's heading on every page; and the synchronous download,
GET /api/reports/{reportId}/download?format=pdf|csv, of a test report and of a
real one (production by work order, from work orders made through the
services)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from datetime import timedelta

import pytest
from django.utils import timezone
from pypdf import PdfReader

from bpmos import access
from bpmos.errors import InvalidInput
from bpmos.roles import Role
from compliance.models import ReportJob
from compliance.reports import base, pdf
from compliance.reports.base import Chart, Column, Param, Report, Series
from compliance.reports.charts import chart_png
from tests.conftest import api_as as api
from tests.factories_tower import finish_through, make_runbook, make_work_order
from tests.support import assert_envelope, map_in_threads

pytestmark = pytest.mark.django_db

HOSTILE = "SN-0003<b>&amp;</i>"
# Too long for one line of its column: a Paragraph, whose markup is escaped.
HOSTILE_NOTE = "Seal <b>re-checked</b> & passed; " + "torque within limits " * 6
PNG = b"\x89PNG\r\n\x1a\n"


class SampleReport(Report):
    """Generated rows (the renderer is what these tests are about)."""

    id = "test-sample"
    title = "Sample <packs> & co"
    description = "Packs made, generated for the renderer's tests."
    category = "Production"
    params = (
        Param("from", "date", "From"),
        Param("to", "date", "To"),
        Param("rows", "integer", "Rows"),
        Param("station", "string", "Station"),
    )
    columns = (
        Column("serial", "Serial"),
        Column("madeAt", "Made at", "datetime"),
        Column("massKg", "Mass (kg)", "number"),
        Column("soh", "State of health", "percent"),
        Column("passed", "Passed"),
        Column("note", "Note"),
    )
    chart_ids = ("packs-per-day", "rejects-per-day")

    def count(self, params):
        return 3 if params["rows"] is None else params["rows"]

    def rows(self, params):
        for n in range(self.count(params)):
            yield {
                "serial": HOSTILE if n == 3 else f"SN-{n:04d}",
                "madeAt": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:30:00Z",
                "massKg": 12.5 + n,
                "soh": 97.5,
                "passed": n % 2 == 0,
                "note": HOSTILE_NOTE if n == 3 else "",
            }

    def summary(self, params):
        return [
            {"label": "Packs made", "value": self.count(params)},
            {"label": "Mass <kg>", "value": 1234.5},
            {"label": "Mean SoH %", "value": None},
        ]

    def charts(self, params):
        days = [f"2026-11-{d:02d}" for d in range(1, 8)]
        return [
            Chart(
                id="packs-per-day",
                title="Packs per day",
                kind="bar",
                x_label="Day",
                y_label="Packs",
                series=[Series("Line A", [(d, float(i)) for i, d in enumerate(days)])],
            ),
            Chart(
                id="rejects-per-day",
                title="Rejects per day",
                kind="line",
                x_label="Day",
                y_label="Rejects",
                series=[Series("Line A", [(d, None) for d in days])],
            ),
        ]


class BrokenReport(SampleReport):
    """Counts fine, then fails while reading its rows."""

    id = "test-broken"

    def rows(self, params):
        yield from list(super().rows(params))[:2]
        raise InvalidInput("The ledger is being rebuilt; try again later.")


@pytest.fixture
def sample(monkeypatch):
    """The test reports registered, opened by the report readers."""
    base.report_list()  # the catalog first, so the registry is complete
    for report in (SampleReport(), BrokenReport()):
        monkeypatch.setitem(base.REGISTRY, report.id, report)
        monkeypatch.setitem(access.ACTIONS, report.action, access.REPORT_READERS)
    return base.REGISTRY["test-sample"]


def pages(body: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(body)).pages]


def image_count(body: bytes) -> int:
    return sum(len(page.images) for page in PdfReader(io.BytesIO(body)).pages)


def render(report: Report, **query) -> bytes:
    return pdf.report_pdf(report, report.parse(query))


# --- the document -----------------------------------------------------------------


def test_the_pdf_carries_title_parameters_summary_rows_and_chart_titles(sample):
    body = render(sample, **{"from": "2026-11-01", "to": "2026-11-07", "rows": "6"})
    assert body.startswith(b"%PDF-")
    text = "\n".join(pages(body))
    assert "Sample <packs> & co" in text
    assert "From: 2026-11-01" in text
    assert "To: 2026-11-07" in text
    assert "Rows: 6" in text
    assert "Station: all" in text
    assert "Generated" in text
    assert "Packs made" in text
    assert "Mass <kg>" in text
    assert "1,234.5" in text
    assert "Mean SoH %\n—" in text
    assert "Packs per day" in text
    assert "Rejects per day" in text
    flat = " ".join(text.split())  # headings wrap at their spaces
    for label in ("Serial", "Made at", "Mass (kg)", "State of health", "Passed"):
        assert label in flat
    assert "SN-0000" in text
    assert "SN-0005" in text
    assert "2026-11-02 01:30 UTC" in text  # the row's ISO time, printed for a person
    assert "17.5" in text
    assert "yes" in text
    assert "97.5\u00a0%" in text or "97.5 %" in text
    assert "first" not in text  # nothing was cut


def test_an_image_is_embedded_for_each_chart_the_empty_one_too(sample):
    body = render(sample)
    assert image_count(body) == 2
    text = "\n".join(pages(body))
    assert "Rejects per day" in text  # the empty chart keeps its title


def test_a_report_without_charts_has_no_image(sample, monkeypatch):
    monkeypatch.setattr(SampleReport, "charts", lambda self, params: [])
    assert image_count(render(sample)) == 0


def test_markup_in_the_data_and_the_title_is_printed_as_written(sample):
    text = "\n".join(pages(render(sample, rows="5")))
    assert HOSTILE in text
    assert "Seal <b>re-checked</b> & passed;" in text
    assert "SN-0004" in text  # the rows after it are there too
    assert "Sample <packs> & co" in text


def test_no_rows_says_so(sample):
    text = "\n".join(pages(render(sample, rows="0")))
    assert "No rows for these parameters." in text
    assert "SN-0000" not in text


def test_rows_over_the_limit_are_cut_and_the_pdf_says_so(sample):
    body = pdf.report_pdf(sample, sample.parse({"rows": "12"}), row_limit=5)
    text = "\n".join(pages(body))
    assert "This PDF lists the first 5 of 12 rows; download the CSV for all." in text
    assert "SN-0002" in text
    assert "SN-0005" not in text


def test_a_long_table_runs_over_pages_with_its_heading_on_each(sample):
    texts = pages(render(sample, rows="400"))
    assert len(texts) >= 4
    for text in texts[1:]:
        flat = " ".join(text.split())
        assert "Serial" in flat
        assert "Made at" in flat
    assert "SN-0399" in texts[-1]
    assert "SN-0399" not in "".join(texts[:-1])


def test_progress_is_told_every_so_many_rows_and_at_the_end(sample):
    heard: list[tuple[int, int]] = []
    pdf.report_pdf(
        sample,
        sample.parse({"rows": "600"}),
        progress=lambda done, total: heard.append((done, total)),
    )
    assert heard == [(250, 600), (500, 600), (600, 600)]


def test_progress_stops_at_the_limit(sample):
    heard: list[tuple[int, int]] = []
    pdf.report_pdf(
        sample,
        sample.parse({"rows": "600"}),
        progress=lambda done, total: heard.append((done, total)),
        row_limit=300,
    )
    assert heard == [(250, 300), (300, 300)]


def test_pdfs_rendered_in_parallel_threads_are_alike(sample):
    params = sample.parse({"rows": "120"})
    stamp = timezone.now()

    def one(_) -> list[str]:
        return pages(pdf.report_pdf(sample, params, generated_at=stamp))

    texts = map_in_threads(one, list(range(4)))
    assert texts == [one(None)] * 4
    assert "SN-0119" in texts[0][-1]


# --- charts -----------------------------------------------------------------------


def _chart(kind: str, values: list[float | None]) -> Chart:
    return Chart(
        id="c",
        title="OEE per day",
        kind=kind,
        x_label="Day",
        y_label="OEE %",
        series=[
            Series("line-a", [(f"d{i}", v) for i, v in enumerate(values)]),
            Series("line-b", [(f"d{i}", 50.0) for i in range(len(values))]),
        ],
    )


def test_line_bar_and_empty_charts_are_distinct_pngs():
    line = chart_png(_chart("line", [61.0, None, 70.5]))
    bar = chart_png(_chart("bar", [61.0, None, 70.5]))
    empty = chart_png(Chart("c", "Nothing", "line", "Day", "OEE %", []))
    for image in (line, bar, empty):
        assert image.startswith(PNG)
    assert len({line, bar, empty}) == 3
    assert Chart("c", "Nothing", "line", "Day", "OEE %", []).empty


def test_charts_drawn_in_parallel_threads_are_the_same_as_drawn_alone():
    charts = [_chart("line", [float(i), 2.0, 3.0]) for i in range(8)]
    alone = [chart_png(chart) for chart in charts]
    together = map_in_threads(chart_png, charts)
    assert together == alone


# --- the synchronous download -----------------------------------------------------


def test_the_pdf_download_is_an_attachment_with_its_checksum(sample, make_user):
    client = api(make_user(Role.PLANNER))
    response = client.get(
        "/api/reports/test-sample/download",
        {"format": "pdf", "from": "2026-11-01", "to": "2026-11-07", "rows": "4"},
        HTTP_ACCEPT="application/pdf",
    )
    assert response.status_code == 200
    body = response.content
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        'attachment; filename="test-sample_2026-11-01_2026-11-07.pdf"'
    )
    assert response["X-Checksum-SHA256"] == hashlib.sha256(body).hexdigest()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert response["Repr-Digest"] == f"sha-256=:{digest}:"
    assert response["Cache-Control"] == "no-store"
    text = "\n".join(pages(body))
    assert "Sample <packs> & co" in text
    assert HOSTILE in text
    assert ReportJob.objects.count() == 0


def test_the_csv_download_streams_every_row(sample, make_user):
    client = api(make_user(Role.AUDITOR))
    response = client.get(
        "/api/reports/test-sample/download",
        {"format": "csv", "from": "2026-11-01", "to": "2026-11-07", "rows": "7"},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    assert "X-Checksum-SHA256" not in response  # streamed: not known up front
    assert response["Content-Disposition"] == (
        'attachment; filename="test-sample_2026-11-01_2026-11-07.csv"'
    )
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0] == [
        "Serial",
        "Made at",
        "Mass (kg)",
        "State of health",
        "Passed",
        "Note",
    ]
    assert [line[0] for line in lines[1:]] == [
        "SN-0000",
        "SN-0001",
        "SN-0002",
        HOSTILE,
        "SN-0004",
        "SN-0005",
        "SN-0006",
    ]


def test_download_refusals(sample, make_user):
    planner = api(make_user(Role.PLANNER))
    operator = api(make_user(Role.OPERATOR))
    url = "/api/reports/test-sample/download"
    assert_envelope(
        planner.get("/api/reports/nope/download", {"format": "csv"}), 404, "not_found"
    )
    assert_envelope(operator.get(url, {"format": "pdf"}), 403, "permission_denied")
    for bad in ({}, {"format": "xlsx"}, {"format": ""}, {"format": "PDF"}):
        body = assert_envelope(planner.get(url, bad), 400, "validation_error")
        assert list(body["details"]) == ["format"]
    for junk in (
        {"rows": "many"},
        {"rows": "9" * 40},
        {"from": "2026-02-30"},
        {"from": "2026-11-09", "to": "2026-11-01"},
        {"station": "<script>"},
        {"station": "a\x00b"},
    ):
        response = planner.get(url, {"format": "pdf", **junk})
        body = assert_envelope(response, 400, "validation_error")
        assert set(body["details"]) <= {"rows", "from", "to", "station"}
    assert ReportJob.objects.count() == 0


def test_a_real_report_renders_with_its_chart(make_user):
    boss = make_user(Role.SUPERVISOR, username="sam")
    runbook = make_runbook()
    order = make_work_order(runbook, boss, start=timezone.now() - timedelta(hours=2))
    finish_through(order, "S2", boss)
    response = api(boss).get(
        "/api/reports/production-by-work-order/download", {"format": "pdf"}
    )
    assert response.status_code == 200, response.content[:500]
    text = "\n".join(pages(response.content))
    assert "Production by work order and stage" in text
    assert "Stages and units completed per day" in text
    assert f"WO-{order.pk}" in text
    assert "MOD-48V" in text
    assert "Stages completed" in text
    assert image_count(response.content) == 1


def test_a_real_report_with_no_data_draws_its_chart_as_no_data(make_user):
    client = api(make_user(Role.PLANT_HEAD))
    response = client.get(
        "/api/reports/oee-by-line-shift/download",
        {"format": "pdf", "from": "2026-11-01", "to": "2026-11-30"},
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="oee-by-line-shift_2026-11-01_2026-11-30.pdf"'
    )
    text = "\n".join(pages(response.content))
    assert "OEE by line and shift" in text
    assert "OEE per day and line" in text
    assert "No rows for these parameters." in text
    assert image_count(response.content) == 1
