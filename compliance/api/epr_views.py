"""The EPR API: a financial year's figures per BWMR category, one category's
figures with the pack rows behind them, and the category declarations.
Thin: the rules are ``compliance.epr`` and ``compliance.categories``'."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from bpmos.errors import InvalidInput
from bpmos.pagination import StandardPagination
from bpmos.views import BpmosAPIView
from compliance import categories, epr
from compliance.api import epr_serializers as s
from compliance.models import Category
from compliance.periods import Period, fy_current, fy_period

_TAGS = ["compliance"]


def _period(query: dict, raw_query) -> Period:
    if raw_query.get("fy") == "":
        raise InvalidInput(
            "fy: empty; give a financial year like 2026-27, or leave fy out "
            "for the current one.",
            code="validation_error",
            details={"fy": ["Empty: give a financial year like 2026-27."]},
        )
    return fy_period(query.get("fy") or fy_current())


class EprFiguresView(BpmosAPIView):
    """A financial year's EPR figures per BWMR category: packs placed on the
    market (first dispatch), collected back (end of life, or recycled with
    no end of life before) and recycled, with their masses, the year's
    collection, recovery and recycled-content targets (with the rules'
    citations) and the gaps. Packs without a mass are counted and listed in
    ``missingMass``; packs of undeclared models are a category ``null`` row.
    400 for a ``fy`` that is not a financial year."""

    @extend_schema(
        tags=_TAGS,
        operation_id="compliance_epr",
        parameters=[s.FinancialYearQuerySerializer],
        responses={200: s.EprFiguresSerializer},
    )
    def get(self, request):
        query = self.validated(s.FinancialYearQuerySerializer, query=True)
        return self.respond(
            s.EprFiguresSerializer, epr.figures(_period(query, request.query_params))
        )


class EprCategoryView(BpmosAPIView):
    """One category's figures for a financial year and its pack rows (placed,
    then collected, then recycled; by time, then serial), paginated.
    ``category`` is portable, automotive, industrial, ev, or ``undeclared``
    (packs of models with no declaration); anything else is a 404."""

    pagination_class = StandardPagination

    @extend_schema(
        tags=_TAGS,
        operation_id="compliance_epr_category",
        parameters=[
            OpenApiParameter(
                "category",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                enum=[*Category.values, categories.UNDECLARED],
            ),
            s.CategoryQuerySerializer,
            OpenApiParameter(
                "page", OpenApiTypes.INT, description="Page number (from 1)."
            ),
            OpenApiParameter(
                "page_size",
                # StandardPagination's rule (a 400 below 1), as its own lists say.
                {"type": "integer", "minimum": 1},
                description="Rows a page (default 50; at most 500, a larger size "
                "is capped).",
            ),
        ],
        responses={200: s.EprCategorySerializer},
    )
    def get(self, request, category: str):
        wanted = categories.category_parse(category)
        query = self.validated(s.CategoryQuerySerializer, query=True)
        period = _period(query, request.query_params)
        figures, facts = epr.category_detail(period, wanted)
        if query.get("event"):
            facts = [fact for fact in facts if fact.event == query["event"]]
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(facts, request, view=self)
        body = {
            **epr.period_header(period),
            "figures": figures,
            "count": paginator.page.paginator.count,
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
            "results": page,
        }
        return self.respond(s.EprCategorySerializer, body)


class CategoryListView(BpmosAPIView):
    """The BWMR categories, the product models declared in each (edited in
    the admin), and the models on passports that have no declaration."""

    @extend_schema(
        tags=_TAGS,
        operation_id="compliance_categories",
        responses={200: s.CategoriesSerializer},
    )
    def get(self, request):
        body = {
            "categories": [
                {"value": value, "label": label} for value, label in Category.choices
            ],
            "declarations": categories.declaration_list(),
            "undeclared": categories.undeclared_models(),
        }
        return self.respond(s.CategoriesSerializer, body)
