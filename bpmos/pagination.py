"""Pagination used by every list endpoint: count, next, previous, results.

DRF reads a ``page_size`` that is not a positive whole number (``null``,
``-5``, ``ten``) as "not given" and answers a page of 50, so a mistyped page
size looked like one that worked. Here it is a 400 naming the parameter, as
every other query parameter; an empty value is still "not given", and a size
above ``max_page_size`` is still capped (the schema says so).
"""

import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """Page-number pagination with a client-chosen page size (capped)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw.strip() == "":
            return self.page_size
        # ASCII digits only: int() also takes "5_0", " 5" and other scripts'
        # digits. Any number of them: a size past the cap is the cap.
        digits = raw.lstrip("0") if re.fullmatch(r"[0-9]+", raw) else ""
        if not digits:
            raise ValidationError(
                {self.page_size_query_param: ["A whole number of at least 1."]}
            )
        if len(digits) > 9:
            return self.max_page_size
        return min(int(digits), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            # ?page= and ?page_size= (empty) are "not given": say so.
            parameter["allowEmptyValue"] = True
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Results a page (default {self.page_size}; at most "
                    f"{self.max_page_size}, a larger size is capped)."
                )
        return parameters
