from django.urls import re_path

from runbooks.api import views

# Trailing slash optional, as for the auth endpoints: the mobile app calls both.
_ID = r"(?P<pk>\d+)"

urlpatterns = [
    # work orders
    re_path(
        r"^workorders/?$", views.WorkOrderListView.as_view(), name="workorder-list"
    ),
    re_path(
        rf"^workorders/{_ID}/?$",
        views.WorkOrderDetailView.as_view(),
        name="workorder-detail",
    ),
    re_path(
        rf"^workorders/{_ID}/stages/?$",
        views.WorkOrderStagesView.as_view(),
        name="workorder-stages",
    ),
    re_path(
        rf"^workorders/{_ID}/cancel/?$",
        views.WorkOrderCancelView.as_view(),
        name="workorder-cancel",
    ),
    re_path(
        rf"^workorders/{_ID}/metrics/?$",
        views.WorkOrderMetricsView.as_view(),
        name="workorder-metrics",
    ),
    # stages
    re_path(r"^stages/?$", views.StageListView.as_view(), name="stage-list"),
    re_path(rf"^stages/{_ID}/?$", views.StageDetailView.as_view(), name="stage-detail"),
    re_path(
        rf"^stages/{_ID}/start/?$", views.StageStartView.as_view(), name="stage-start"
    ),
    re_path(
        rf"^stages/{_ID}/done/?$", views.StageDoneView.as_view(), name="stage-done"
    ),
    re_path(
        rf"^stages/{_ID}/hold/?$", views.StageHoldView.as_view(), name="stage-hold"
    ),
    re_path(
        rf"^stages/{_ID}/resume/?$",
        views.StageResumeView.as_view(),
        name="stage-resume",
    ),
    re_path(
        rf"^stages/{_ID}/metrics/?$",
        views.StageMetricsView.as_view(),
        name="stage-metrics",
    ),
    re_path(
        rf"^stages/{_ID}/assignments/?$",
        views.StageAssignmentsView.as_view(),
        name="stage-assignments",
    ),
    re_path(
        rf"^stages/{_ID}/assignments/(?P<user_id>\d+)/?$",
        views.StageAssignmentDetailView.as_view(),
        name="stage-assignment-detail",
    ),
    # gates (control-UI contract)
    *(
        re_path(
            rf"^gates/(?P<pk>\d+)/{action}/?$",
            views.GateActionView.as_view(gate_action=action),
            name=f"gate-{action}",
        )
        for action in ("open", "close", "lock")
    ),
]
