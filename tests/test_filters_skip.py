"""``bpmos.filters.FilterBackend`` does not build a FilterSet for a request that
names none of its filters: for every FilterSet here, what building it would
have done is ``after_filters`` alone."""

from unittest import mock

import pytest
from django.http import QueryDict
from django_filters import rest_framework as filters
from rest_framework.test import APIClient

from bpmos.filters import FilterSet, _builds_plainly
from tests.conftest import bearer


def every_filterset() -> list[type[FilterSet]]:
    import bpmos.urls  # noqa: F401 (every view, so every FilterSet, imported)

    found, todo = set(), [FilterSet]
    while todo:
        for subclass in todo.pop().__subclasses__():
            if subclass not in found:
                found.add(subclass)
                todo.append(subclass)
    return sorted(
        (c for c in found if c._meta.model is not None), key=lambda c: c.__qualname__
    )


@pytest.mark.django_db
def test_a_filterset_given_no_parameter_does_only_its_after_filters():
    plain = [c for c in every_filterset() if _builds_plainly(c)]
    names = {c.__name__ for c in plain}
    assert {"WorkOrderFilterSet", "PassportFilterSet", "ItemFilterSet"} <= names
    for filterset_class in plain:
        queryset = filterset_class._meta.model._default_manager.all()
        for parameters in ("", "page=2&page_size=10&search=x"):
            built = filterset_class(data=QueryDict(parameters), queryset=queryset)
            if not filterset_class.filters_nothing(QueryDict(parameters)):
                continue
            assert built.is_valid(), (filterset_class, built.errors)
            skipped = filterset_class.after_filters(queryset)
            assert str(built.qs.query) == str(skipped.query), filterset_class


def test_a_required_filter_or_a_named_filter_is_filtered():
    class Required(FilterSet):
        lot = filters.CharFilter(required=True)

    class Optional(FilterSet):
        lot = filters.CharFilter()
        search = filters.CharFilter()

    assert not Required.filters_nothing(QueryDict(""))
    assert Optional.filters_nothing(QueryDict("page=2&ordering=lot"))
    assert not Optional.filters_nothing(QueryDict("lot=L1"))
    assert not Optional.filters_nothing(QueryDict("lot="))  # empty: a 400
    assert not Optional.filters_nothing(QueryDict("search=x"))  # one of its own
    assert not Optional.filters_nothing(QueryDict("other=1"))


@pytest.mark.django_db
def test_the_list_builds_its_filterset_only_when_a_filter_is_named(make_user):
    from runbooks.filters import WorkOrderFilterSet

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(make_user("planner"))["Authorization"])
    with mock.patch.object(
        WorkOrderFilterSet, "is_valid", autospec=True, return_value=True
    ) as is_valid:
        assert client.get("/api/workorders/?page_size=5").status_code == 200
        assert is_valid.call_count == 0
        assert client.get("/api/workorders/?status=planned").status_code == 200
        assert is_valid.call_count == 1
    assert client.get("/api/workorders/?status=").status_code == 400
