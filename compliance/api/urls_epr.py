"""Routes of compliance's epr area (see compliance/urls.py)."""

from django.urls import re_path

from compliance.api import epr_views as views

urlpatterns = [
    re_path(
        r"^compliance/epr/?$", views.EprFiguresView.as_view(), name="compliance-epr"
    ),
    re_path(
        r"^compliance/epr/(?P<category>[^/]+)/?$",
        views.EprCategoryView.as_view(),
        name="compliance-epr-category",
    ),
    re_path(
        r"^compliance/categories/?$",
        views.CategoryListView.as_view(),
        name="compliance-categories",
    ),
]
