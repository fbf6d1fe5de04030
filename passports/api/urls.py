"""Routes of the passport and registry API (docs/passports.md).

Trailing slash optional, as everywhere. The fixed words under ``passports/``
("lookup", "verify") come before ``{identifier}``, so they are never read as
one: a battery whose serial is literally "lookup" is reached by its UUID.
"""

from django.urls import re_path

from passports.api import views

_ID = r"(?P<identifier>[^/]+)"
_ONE = rf"passports/{_ID}"

urlpatterns = [
    re_path(r"^passports/?$", views.PassportListView.as_view(), name="passport-list"),
    re_path(
        r"^passports/lookup/?$",
        views.PassportLookupView.as_view(),
        name="passport-lookup",
    ),
    re_path(
        r"^passports/verify/?$",
        views.PassportVerifyView.as_view(),
        name="passport-verify",
    ),
    re_path(
        r"^passports/events/batch/?$",
        views.PassportEventsBatchView.as_view(),
        name="passport-events-batch",
    ),
    re_path(
        r"^passports/grants/?$", views.GrantListView.as_view(), name="passport-grants"
    ),
    re_path(
        r"^passports/grants/(?P<grant_id>[0-9]{1,9})/revoke/?$",
        views.GrantRevokeView.as_view(),
        name="passport-grant-revoke",
    ),
    re_path(rf"^{_ONE}/?$", views.PassportDetailView.as_view(), name="passport-detail"),
    re_path(
        rf"^{_ONE}/public/?$",
        views.PassportPublicView.as_view(),
        name="passport-public",
    ),
    re_path(
        rf"^{_ONE}/ledger/?$",
        views.PassportLedgerView.as_view(),
        name="passport-ledger",
    ),
    re_path(
        rf"^{_ONE}/ledger/proof/?$",
        views.PassportLedgerProofView.as_view(),
        name="passport-ledger-proof",
    ),
    re_path(
        rf"^{_ONE}/events/?$",
        views.PassportEventsView.as_view(),
        name="passport-events",
    ),
    re_path(
        rf"^{_ONE}/custody/?$",
        views.PassportCustodyView.as_view(),
        name="passport-custody",
    ),
    re_path(
        rf"^{_ONE}/genealogy/?$",
        views.PassportGenealogyView.as_view(),
        name="passport-genealogy",
    ),
    re_path(
        rf"^{_ONE}/conformity/?$",
        views.PassportConformityView.as_view(),
        name="passport-conformity",
    ),
    re_path(
        rf"^{_ONE}/attributes/?$",
        views.PassportAttributesView.as_view(),
        name="passport-attributes",
    ),
    re_path(
        rf"^{_ONE}/completeness/?$",
        views.PassportCompletenessView.as_view(),
        name="passport-completeness",
    ),
    re_path(
        rf"^{_ONE}/signatures/?$",
        views.PassportSignaturesView.as_view(),
        name="passport-signatures",
    ),
    re_path(
        rf"^{_ONE}/export/?$",
        views.PassportExportView.as_view(),
        name="passport-export",
    ),
    re_path(
        rf"^{_ONE}/components/?$",
        views.PassportComponentsView.as_view(),
        name="passport-components",
    ),
    re_path(
        rf"^{_ONE}/second-life/?$",
        views.PassportSecondLifeView.as_view(),
        name="passport-second-life",
    ),
    re_path(
        rf"^{_ONE}/qr/(?P<symbol>digital-link|bpan)/?$",
        views.PassportQrView.as_view(),
        name="passport-qr",
    ),
    re_path(
        rf"^{_ONE}/telemetry/?$",
        views.PassportTelemetryView.as_view(),
        name="passport-telemetry",
    ),
    re_path(
        r"^bpan/validate/?$", views.BpanValidateView.as_view(), name="bpan-validate"
    ),
    re_path(r"^registry/?$", views.RegistryListView.as_view(), name="registry-list"),
    re_path(
        rf"^registry/{_ID}/?$",
        views.RegistryDetailView.as_view(),
        name="registry-detail",
    ),
]
