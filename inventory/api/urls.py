from django.urls import re_path

from inventory.api import views

# Trailing slash optional, as everywhere. Items are named by their code
# ("CELL-2026-1001"), reservations by number.
_ITEM = r"inventory/items/(?P<item_id>[-\w]+)"
_RESERVATION = r"inventory/reservations/(?P<pk>\d+)"

urlpatterns = [
    re_path(
        r"^inventory/categories/?$",
        views.CategorySummaryView.as_view(),
        name="inventory-categories",
    ),
    re_path(
        r"^inventory/items/?$", views.ItemListView.as_view(), name="inventory-items"
    ),
    re_path(
        rf"^{_ITEM}/?$", views.ItemDetailView.as_view(), name="inventory-item-detail"
    ),
    re_path(
        rf"^{_ITEM}/reserve/?$",
        views.ItemReserveView.as_view(),
        name="inventory-item-reserve",
    ),
    re_path(
        rf"^{_ITEM}/issue/?$",
        views.ItemIssueView.as_view(),
        name="inventory-item-issue",
    ),
    re_path(
        rf"^{_ITEM}/hold/?$", views.ItemHoldView.as_view(), name="inventory-item-hold"
    ),
    re_path(
        rf"^{_ITEM}/release-hold/?$",
        views.ItemReleaseHoldView.as_view(),
        name="inventory-item-release-hold",
    ),
    re_path(
        rf"^{_ITEM}/block/?$",
        views.ItemBlockView.as_view(),
        name="inventory-item-block",
    ),
    re_path(
        rf"^{_ITEM}/move/?$", views.ItemMoveView.as_view(), name="inventory-item-move"
    ),
    re_path(
        r"^inventory/stock/?$",
        views.StockLevelListView.as_view(),
        name="inventory-stock",
    ),
    re_path(
        r"^inventory/locations/?$",
        views.LocationListView.as_view(),
        name="inventory-locations",
    ),
    re_path(
        r"^inventory/reservations/?$",
        views.ReservationListView.as_view(),
        name="inventory-reservations",
    ),
    re_path(
        rf"^{_RESERVATION}/release/?$",
        views.ReservationReleaseView.as_view(),
        name="inventory-reservation-release",
    ),
    re_path(
        rf"^{_RESERVATION}/consume/?$",
        views.ReservationConsumeView.as_view(),
        name="inventory-reservation-consume",
    ),
]
