"""Routes of SCADA maintenance (see scada/urls.py). ``/api/work-orders/...``
are maintenance work orders for the CMMS; the production work orders of the
mobile contract stay at ``/api/workorders/``."""

from django.urls import re_path

from scada.api import maintenance as views

_ID = r"(?P<pk>\d{1,18})"

urlpatterns = [
    re_path(
        r"^work-orders/create/?$",
        views.WorkOrderCreateView.as_view(),
        name="maintenance-work-order-create",
    ),
    re_path(
        r"^work-orders/maintenance/?$",
        views.MaintenanceWorkOrderListView.as_view(),
        name="maintenance-work-order-list",
    ),
    re_path(
        rf"^work-orders/maintenance/{_ID}/?$",
        views.MaintenanceWorkOrderDetailView.as_view(),
        name="maintenance-work-order-detail",
    ),
    re_path(
        rf"^work-orders/maintenance/{_ID}/retry/?$",
        views.MaintenanceWorkOrderRetryView.as_view(),
        name="maintenance-work-order-retry",
    ),
]
