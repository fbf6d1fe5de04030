"""This app's server-rendered pages (docs/pages.md; bpmos/pagekit.py).

The plant board (``/board/lines/``): every active line and its stations with
their states, the reason a station is blocked, and each line's OEE this shift
so far. The first state is rendered here from the selectors the API serves
(``line_status_list`` as ``/api/live-status/lines``, ``line_oee_get`` as
``/api/lines/{lineId}/oee``); ``bpmos/static/bpmos/board-lines.js`` then
follows the ``lines`` topic and refreshes the OEE and the sparklines from the
API.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import path
from django.utils import timezone
from django.views.decorators.cache import never_cache

from bpmos.pagekit import page, render_page
from lines import selectors
from lines.status import StationState


@dataclass(frozen=True)
class BoardLine:
    """One line as the board shows it: its status and its OEE report."""

    view: selectors.LineView
    oee: selectors.OEEReport

    @property
    def blocked(self) -> int:
        return sum(s.state == StationState.BLOCKED for s in self.view.stations)

    @property
    def below_target(self) -> bool:
        figure = self.oee.total.oee
        return figure is not None and figure < self.view.line.oee_target


@never_cache
@page("board-lines")
def board_lines(request):
    """``/board/lines/``: the plant board (every role)."""
    now = timezone.now()
    lines = [
        BoardLine(view=view, oee=selectors.line_oee_get(slug=view.id, now=now))
        for view in selectors.line_status_list(now=now, with_runbook=False)
    ]
    return render_page(
        request,
        "pages/board_lines.html",
        {
            "lines": lines,
            "now": now,
            "blocked_stations": sum(line.blocked for line in lines),
            "station_total": sum(len(line.view.stations) for line in lines),
        },
    )


urlpatterns: list = [
    path("board/lines/", board_lines, name="board-lines"),
]
