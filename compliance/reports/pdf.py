"""A report as a PDF document (reportlab's platypus).

The document: the report's title, its parameters and when it was generated,
the summary figures, each chart as an image (``compliance.reports.charts``),
then the rows as a table whose heading row repeats on every page. A PDF lists
at most ``PDF_ROW_LIMIT`` rows (a table of a year of ledger events is not
something a person reads on paper) and says so when it stops: "the first N of
M rows; download the CSV for all".

Everything a report or a user typed (a serial, a line's name, a parameter) is
escaped before it reaches a ``Paragraph``, whose text is a small markup
language: a serial ``<b>&1`` is printed as those characters, never read as a
tag. Text is set in DejaVu Sans (shipped with matplotlib), so names outside
Latin-1 print as written rather than as blank boxes.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import matplotlib
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Image,
    KeepTogether,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from compliance.reports.base import Column, Report
from compliance.reports.charts import HEIGHT_IN, WIDTH_IN, chart_png

# Rows a PDF lists at most; the CSV has them all.
PDF_ROW_LIMIT = 5000
# The progress callback hears from the renderer every this many rows read.
PROGRESS_EVERY = 250
# Portrait up to this many columns, landscape above.
PORTRAIT_COLUMNS = 6
MARGIN = 14 * mm
# The rows' table: font size, padding, and the widest a column asks to be (pt).
CELL_SIZE = 7.5
CELL_PAD = 3
MAX_NATURAL = 200

# (rows read, rows the PDF will list)
Progress = Callable[[int, int], None]

FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
_fonts_lock = threading.Lock()
_fonts_registered = False

# Characters the PDF's text cannot carry (C0 controls but tab and newlines, DEL).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _register_fonts() -> None:
    """DejaVu Sans from matplotlib's own data (no system font needed), once."""
    global _fonts_registered
    with _fonts_lock:
        if _fonts_registered:
            return
        ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        pdfmetrics.registerFont(TTFont(FONT, str(ttf / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont(FONT_BOLD, str(ttf / "DejaVuSans-Bold.ttf")))
        pdfmetrics.registerFontFamily(
            FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD
        )
        _fonts_registered = True


def markup(text: Any) -> str:
    """``text`` as a Paragraph shows it literally: ``&``, ``<`` and ``>``
    escaped, control characters replaced, line breaks kept."""
    clean = _CONTROL.sub("\ufffd", str(text))
    return escape(clean).replace("\r\n", "\n").replace("\n", "<br/>")


def _number(value: float | Decimal) -> str:
    if isinstance(value, Decimal):
        return f"{value:,f}"
    text = f"{value:,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _utc_text(text: str) -> str:
    """A row's ISO 8601 time (``2026-12-03T10:30:00Z``) as ``2026-12-03 10:30
    UTC``; anything else as it is."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return cell_text(moment) if timezone.is_aware(moment) else text


def cell_text(value: Any, column: Column | None = None) -> str:
    """One value as the PDF prints it (times in UTC, numbers with separators)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and column is not None and column.type == "datetime":
        return _utc_text(value)
    if isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float | Decimal):
        if isinstance(value, float) and value != value:  # NaN
            return ""
        text = _number(value)
    else:
        return str(value)
    if column is not None and column.type == "percent":
        return f"{text}\u00a0%"
    return text


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["Normal"], fontName=FONT, fontSize=9)
    return {
        "title": ParagraphStyle(
            "title", parent=base["Title"], fontName=FONT_BOLD, alignment=0
        ),
        "heading": ParagraphStyle(
            "heading", parent=base["Heading2"], fontName=FONT_BOLD, fontSize=12
        ),
        "body": body,
        "meta": ParagraphStyle("meta", parent=body, textColor=colors.HexColor("#444")),
        "note": ParagraphStyle(
            "note", parent=body, textColor=colors.HexColor("#8a4b00"), spaceBefore=4
        ),
        "cell": ParagraphStyle(
            "cell", parent=body, fontSize=CELL_SIZE, leading=CELL_SIZE + 1.5
        ),
        "head": ParagraphStyle(
            "head",
            parent=body,
            fontName=FONT_BOLD,
            fontSize=CELL_SIZE,
            leading=CELL_SIZE + 1.5,
        ),
        "number": ParagraphStyle(
            "number",
            parent=body,
            fontSize=CELL_SIZE,
            leading=CELL_SIZE + 1.5,
            alignment=TA_RIGHT,
        ),
    }


def _parameters(report: Report, params: dict[str, Any]) -> str:
    parts = []
    for param in report.params:
        value = params.get(param.name)
        shown = "—" if value in (None, "") else cell_text(value)
        parts.append(f"<b>{markup(param.label)}</b>: {markup(shown)}")
    return " · ".join(parts) if parts else "none"


def _summary(items: list[dict[str, Any]], styles) -> Table:
    data = [
        [
            Paragraph(markup(item.get("label", "")), styles["body"]),
            Paragraph(f"<b>{markup(cell_text(item.get('value')))}</b>", styles["body"]),
        ]
        for item in items
    ]
    table = Table(data, hAlign="LEFT", colWidths=[70 * mm, 50 * mm])
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#ccc")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _widths(columns, cells: list[list[str]], available: float) -> list[float]:
    """Column widths: each column's natural width (its longest value among the
    first rows, the longest word of its heading), narrow columns first given
    theirs in full and the wide ones sharing what is left; spare width is
    spread in proportion."""
    natural = []
    for index, column in enumerate(columns):
        words = column.label.split() or [""]
        heading = max(stringWidth(word, FONT_BOLD, CELL_SIZE) for word in words)
        longest = max(
            (stringWidth(row[index], FONT, CELL_SIZE) for row in cells[:300]),
            default=0.0,
        )
        natural.append(max(heading, min(longest, MAX_NATURAL)) + 2 * CELL_PAD + 1)
    widths = [0.0] * len(columns)
    remaining, left = available, len(columns)
    for index in sorted(range(len(columns)), key=natural.__getitem__):
        widths[index] = min(natural[index], remaining / left)
        remaining -= widths[index]
        left -= 1
    spare = available - sum(widths)
    return [width + spare * width / sum(widths) for width in widths]


def _cell(text: str, room: float, style: ParagraphStyle) -> str | Paragraph:
    """A value that fits its column on one line as plain text (drawn as it is,
    no markup read: a tenth of a Paragraph's cost over thousands of cells);
    a longer one as an escaped Paragraph, which wraps."""
    if "\n" not in text and stringWidth(text, FONT, CELL_SIZE) <= room:
        return _CONTROL.sub("\ufffd", text)
    return Paragraph(markup(text), style)


def _rows_table(report: Report, cells: list[list[str]], styles, width: float):
    columns = report.columns
    numbers = [column.type in {"number", "percent"} for column in columns]
    widths = _widths(columns, cells, width)
    rooms = [w - 2 * CELL_PAD - 0.5 for w in widths]
    cell_styles = [styles["number" if n else "cell"] for n in numbers]
    head = [Paragraph(markup(column.label), styles["head"]) for column in columns]
    body = [
        [
            _cell(text, room, style)
            for text, room, style in zip(row, rooms, cell_styles, strict=True)
        ]
        for row in cells
    ]
    table = LongTable([head, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = [
        ("FONT", (0, 1), (-1, -1), FONT, CELL_SIZE, CELL_SIZE + 1.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4e8ee")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.HexColor("#555")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, "#f6f7f9"]),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    style += [
        ("ALIGN", (index, 1), (index, -1), "RIGHT")
        for index, number in enumerate(numbers)
        if number
    ]
    table.setStyle(TableStyle(style))
    return table


def report_pdf(
    report: Report,
    params: dict[str, Any],
    progress: Progress | None = None,
    *,
    row_limit: int = PDF_ROW_LIMIT,
    generated_at: datetime | None = None,
) -> bytes:
    """The report as a PDF; ``progress(rows_read, rows_to_list)`` is called
    every ``PROGRESS_EVERY`` rows and once when all are read."""
    _register_fonts()
    styles = _styles()
    generated_at = generated_at or timezone.now()
    total = report.count(params)
    listed = min(total, row_limit)

    cells: list[list[str]] = []
    more = False
    for row in report.rows(params):
        if len(cells) >= row_limit:
            more = True
            break
        cells.append([cell_text(row.get(c.key), c) for c in report.columns])
        if progress is not None and len(cells) % PROGRESS_EVERY == 0:
            progress(len(cells), max(listed, len(cells)))
    if progress is not None:
        progress(len(cells), len(cells))
    if more:  # the data grew since it was counted: say at least one more
        total = max(total, len(cells) + 1)

    pagesize = A4 if len(report.columns) <= PORTRAIT_COLUMNS else landscape(A4)
    width = pagesize[0] - 2 * MARGIN
    story: list = [
        Paragraph(markup(report.title), styles["title"]),
        Paragraph(f"<b>Parameters</b>: {_parameters(report, params)}", styles["meta"]),
        Paragraph(
            f"<b>Generated</b>: {generated_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
            " by BPM-OS",
            styles["meta"],
        ),
        Spacer(1, 4 * mm),
    ]
    summary = report.summary(params)
    if summary:
        story += [Paragraph("Summary", styles["heading"]), _summary(summary, styles)]
        story.append(Spacer(1, 4 * mm))
    image_width = width
    image_height = width * HEIGHT_IN / WIDTH_IN
    for chart in report.charts(params):
        image = Image(
            io.BytesIO(chart_png(chart, titled=False)),
            width=image_width,
            height=image_height,
        )
        story.append(
            KeepTogether([Paragraph(markup(chart.title), styles["heading"]), image])
        )
        story.append(Spacer(1, 3 * mm))

    story.append(Paragraph("Rows", styles["heading"]))
    if more or total > len(cells):
        story.append(
            Paragraph(
                f"This PDF lists the first {len(cells):,} of {total:,} rows;"
                " download the CSV for all.",
                styles["note"],
            )
        )
    if cells:
        story.append(_rows_table(report, cells, styles, width))
    else:
        story.append(Paragraph("No rows for these parameters.", styles["body"]))

    buffer = io.BytesIO()
    stamp = f"{generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    footer = f"{report.title} · generated {stamp}"

    def on_page(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.HexColor("#666"))
        canvas.drawString(MARGIN, MARGIN / 2, footer[:150])
        canvas.drawRightString(
            pagesize[0] - MARGIN, MARGIN / 2, f"page {canvas.getPageNumber()}"
        )
        canvas.restoreState()

    document = SimpleDocTemplate(
        buffer,
        pagesize=pagesize,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=report.title,
        author="BPM-OS",
        subject=report.description,
        creator="BPM-OS",
    )
    document.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()
