from django.urls import re_path

from elog.api import views

# Trailing slash optional, as for the auth endpoints.
urlpatterns = [
    re_path(r"^audit/?$", views.AuditRecordListView.as_view(), name="audit-list"),
    re_path(r"^audit/verify/?$", views.AuditVerifyView.as_view(), name="audit-verify"),
    re_path(
        r"^audit/(?P<pk>\d+)/?$",
        views.AuditRecordDetailView.as_view(),
        name="audit-detail",
    ),
    re_path(r"^logs/write/?$", views.ShiftLogWriteView.as_view(), name="logs-write"),
    re_path(
        r"^logs/shift/?$", views.ShiftLogEntryListView.as_view(), name="shift-log-list"
    ),
    re_path(
        r"^logs/shift/(?P<pk>\d{1,18})/acknowledge/?$",
        views.ShiftLogAcknowledgeView.as_view(),
        name="shift-log-acknowledge",
    ),
]
