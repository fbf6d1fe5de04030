from django.urls import re_path

from bpmos.accounts.api import views

# Trailing slash optional: the mobile app calls both spellings.
urlpatterns = [
    re_path(r"^auth/login/?$", views.LoginView.as_view(), name="auth-login"),
    re_path(r"^auth/refresh/?$", views.RefreshView.as_view(), name="auth-refresh"),
    re_path(r"^auth/logout/?$", views.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^auth/me/?$", views.MeView.as_view(), name="auth-me"),
    re_path(r"^auth/register/?$", views.RegisterView.as_view(), name="auth-register"),
    re_path(r"^auth/users/?$", views.UserListView.as_view(), name="auth-users"),
    re_path(
        r"^auth/users/(?P<pk>\d+)/?$",
        views.UserDetailView.as_view(),
        name="auth-user-detail",
    ),
    re_path(
        r"^auth/users/(?P<pk>\d+)/role/?$",
        views.UserRoleView.as_view(),
        name="auth-user-role",
    ),
    re_path(
        r"^auth/users/(?P<pk>\d+)/deactivate/?$",
        views.UserDeactivateView.as_view(),
        name="auth-user-deactivate",
    ),
    re_path(
        r"^auth/users/(?P<pk>\d+)/reactivate/?$",
        views.UserReactivateView.as_view(),
        name="auth-user-reactivate",
    ),
]
