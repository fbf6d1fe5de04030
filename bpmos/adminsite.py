"""The back-office (``/admin/``): BPM-OS's own admin site.

Every ModelAdmin registered on it (the apps' own, and those the packages
register: django-celery-beat's schedules, Django's groups, the JWT blacklist)
is wrapped in one policy, so the rule is in one place rather than in each
admin.py:

* Auditors read every registered model and write nothing: no add, change or
  delete (the change page shows its fields read-only), inline rows read-only,
  and only *read actions* in the action menu, with the plain action bar (no
  reason or minutes boxes). A read action is one declared with
  ``@admin.action(permissions=["view"])``: the CSV export below, verifying a
  chain.
* Admins keep what each ModelAdmin grants (they are superusers; the apps'
  admins route writes through their services). The packages' admins are
  given ``AuditedModelAdmin``'s saves and deletes, and their own actions (beat's
  enable, disable, toggle, run) are audited after they run, so a beat schedule
  changed here is audited like everything else.
* Staff with any other plant role see nothing (``is_admin_reader``).

Every list has "Export the selected rows to CSV" (pick "Select all" to take
every row the filters, search and date drill-down match): the list's columns,
cells escaped against CSV injection (``bpmos.csvsafe``), audited as
``admin.csv_exported``.

The index and the side navigation group the models by the plant's domains
(``DOMAINS``), not by Django app.
"""

from __future__ import annotations

import copy

from django.contrib import admin
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import label_for_field, lookup_field
from django.db import models
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import capfirst, slugify

from bpmos import audit, csvsafe
from bpmos.adminkit import AuditedModelAdmin, is_admin_reader
from bpmos.roles import Role

# --- who may do what -------------------------------------------------------------


def is_auditor(request) -> bool:
    return is_admin_reader(request) and request.user.role == Role.AUDITOR


def may_write(request) -> bool:
    """Only admins write in the back-office (what each ModelAdmin allows them)."""
    return is_admin_reader(request) and request.user.role == Role.ADMIN


def is_read_action(func) -> bool:
    """An action declared ``@admin.action(permissions=["view"])``: it changes
    nothing, so auditors may run it."""
    return set(getattr(func, "allowed_permissions", None) or ()) == {"view"}


class _PermissionPolicy:
    """The permission half of the policy (ModelAdmins and inlines alike)."""

    def has_view_permission(self, request, obj=None) -> bool:
        if not is_admin_reader(request):
            return False
        if is_auditor(request):
            return True
        return super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args, **kwargs) -> bool:
        return may_write(request) and super().has_add_permission(
            request, *args, **kwargs
        )

    def has_change_permission(self, request, obj=None) -> bool:
        return may_write(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return may_write(request) and super().has_delete_permission(request, obj)


_inline_policies: dict[type, type] = {}


def _inline_with_policy(inline_class: type) -> type:
    if issubclass(inline_class, _PermissionPolicy):
        return inline_class
    if inline_class not in _inline_policies:
        _inline_policies[inline_class] = type(
            inline_class.__name__,
            (_PermissionPolicy, inline_class),
            {"__module__": inline_class.__module__},
        )
    return _inline_policies[inline_class]


class PlantModelAdminPolicy(_PermissionPolicy):
    """Put first among a ModelAdmin's bases by ``PlantAdminSite.register``."""

    def has_module_permission(self, request) -> bool:
        if not is_admin_reader(request):
            return False
        if is_auditor(request):
            return True
        return super().has_module_permission(request)

    def get_inlines(self, request, obj):
        return [_inline_with_policy(c) for c in super().get_inlines(request, obj)]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if IS_POPUP_VAR in request.GET:
            return actions
        # The site's read actions (the CSV export) on every list, even where
        # the ModelAdmin turned its own actions off (``actions = None``).
        site_reads = [
            (func, name, self._get_action_description(func, name))
            for name, func in self.admin_site.actions
            if is_read_action(func)
        ]
        for func, name, description in self._filter_actions_by_permissions(
            request, site_reads
        ):
            actions.setdefault(name, (func, name, description))
        if not may_write(request):
            return {
                name: action
                for name, action in actions.items()
                if is_read_action(action[0])
            }
        if getattr(self, "audits_package_actions", False):
            actions = {
                name: (_audited_action(func, name), name, description)
                for name, (func, _, description) in actions.items()
            }
        return actions

    def changelist_view(self, request, extra_context=None):
        if may_write(request):
            return super().changelist_view(request, extra_context)
        # Readers get the plain action bar: no reason or minutes boxes for
        # actions they cannot run. A copy, so no other request sees it.
        reader_view = copy.copy(self)
        reader_view.action_form = ActionForm
        return super(PlantModelAdminPolicy, reader_view).changelist_view(
            request, extra_context
        )


def _audited_action(func, name: str):
    """A package's own action (beat's enable, disable, toggle, run) that writes:
    run it, then audit it as ``<model>.admin_<action>`` with the rows chosen.
    Read actions and Django's delete (audited row by row by
    ``AuditedModelAdmin.delete_queryset``) are left as they are."""
    if is_read_action(func) or name == "delete_selected":
        return func

    def run(modeladmin, request, queryset):
        pks = [str(pk) for pk in queryset.values_list("pk", flat=True)]
        response = func(modeladmin, request, queryset)
        audit.record(
            actor=request.user,
            action=f"{modeladmin.model._meta.label_lower}.admin_{name}",
            target=None,
            target_type=modeladmin.model._meta.label_lower,
            target_id=pks[0] if len(pks) == 1 else "",
            after={"rows": pks},
        )
        return response

    run.allowed_permissions = getattr(func, "allowed_permissions", ())
    return run


# --- the CSV export of any list ------------------------------------------------

# Never exported, whatever a list shows.
_SECRET_FIELDS = frozenset({"password", "credentials", "token"})


def _columns(modeladmin, request) -> list[str]:
    names = [
        name
        for name in modeladmin.get_list_display(request)
        if name != "action_checkbox"
    ]
    if names in (["__str__"], []):
        names = [field.name for field in modeladmin.model._meta.concrete_fields]
    if "pk" not in names and modeladmin.model._meta.pk.name not in names:
        names.insert(0, "pk")
    return [name for name in names if name not in _SECRET_FIELDS]


def _cell(name, obj, modeladmin):
    try:
        _, _, value = lookup_field(name, obj, modeladmin)
    except (AttributeError, models.ObjectDoesNotExist):
        return None
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, str):
        return strip_tags(value)
    return value


@admin.action(
    description="Export the selected rows to CSV (Select all: every row the "
    "filters match)",
    permissions=["view"],
)
def export_csv(modeladmin, request, queryset):
    """The list's columns for the chosen rows (all the filtered ones when
    "Select all" is ticked), audited as ``admin.csv_exported``."""
    opts = modeladmin.model._meta
    names = _columns(modeladmin, request)
    header = [
        "Id"
        if name == "pk"
        else capfirst(str(label_for_field(name, modeladmin.model, modeladmin)))
        for name in names
    ]
    select_across = request.POST.get("select_across") == "1"
    rows = queryset.count()
    filters = {
        key: values
        for key, values in request.GET.lists()
        if key not in {"p", IS_POPUP_VAR}
    }
    audit.record(
        actor=request.user,
        action="admin.csv_exported",
        target=None,
        target_type=opts.label_lower,
        target_id="",
        after={
            "rows": rows,
            "columns": header,
            "filters": filters,
            "selection": "all matching" if select_across else "selected",
        },
    )
    ordered = queryset if queryset.ordered else queryset.order_by("pk")
    data = (
        [_cell(name, obj, modeladmin) for name in names]
        for obj in ordered.iterator(chunk_size=2000)
    )
    response = StreamingHttpResponse(
        csvsafe.csv_lines(header, data), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = (
        f'attachment; filename="{opts.app_label}-{opts.model_name}-{stamp}.csv"'
    )
    return response


# --- the index by the plant's domains ------------------------------------------

# Domain -> the models in it ("app_label.ModelName", or "app_label" for all of
# an app's models not named elsewhere), in the order the index shows them.
DOMAINS: list[tuple[str, list[str]]] = [
    (
        "Production",
        [
            "runbooks.WorkOrder",
            "runbooks.Runbook",
            "runbooks.Stage",
            "runbooks.Gate",
            "runbooks.StageAssignment",
            "exceptions",
            "lines.OEESnapshot",
        ],
    ),
    (
        "Lines & SCADA",
        [
            "lines.Line",
            "lines.Station",
            "lines.Machine",
            "lines.MachineReading",
            "scada.Connector",
            "scada.AlertRule",
            "scada.AlarmEvent",
            "scada.AlarmHistory",
            "scada.AlarmFlood",
            "scada.ScadaReading",
            "scada.MaintenanceWorkOrder",
            "scada.LimsResult",
        ],
    ),
    ("Inventory", ["inventory"]),
    ("Passports & dispatch", ["passports"]),
    (
        "Compliance & reports",
        [
            "compliance.ComplianceReturn",
            "compliance.ScheduledReturn",
            "compliance.EmailDelivery",
            "compliance.ReportJob",
            "compliance.CsvSchema",
            "compliance.CategoryDeclaration",
            "compliance.ScoreSnapshot",
        ],
    ),
    ("Logs & audit", ["elog.AuditRecord", "elog.ShiftLogEntry"]),
    ("Users & access", ["accounts", "auth", "token_blacklist", "idempotency"]),
    ("Schedules", ["django_celery_beat"]),
]
OTHER = "Other"


def domain_of(app_label: str, object_name: str) -> str:
    for name, members in DOMAINS:
        if f"{app_label}.{object_name}" in members:
            return name
    for name, members in DOMAINS:
        if app_label in members:
            return name
    return OTHER


def _rank(domain: str, app_label: str, object_name: str) -> tuple[int, str]:
    members = dict(DOMAINS).get(domain, [])
    for key in (f"{app_label}.{object_name}", app_label):
        if key in members:
            return members.index(key), object_name
    return len(members), object_name


class PlantAdminSite(admin.AdminSite):
    site_header = "BPM-OS"
    site_title = "BPM-OS"
    index_title = "Back-office"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self.add_action(export_csv, "export_csv")

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, PlantModelAdminPolicy):
            bases = (PlantModelAdminPolicy, admin_class)
            attrs = {"__module__": admin_class.__module__}
            if not issubclass(admin_class, AuditedModelAdmin):
                # The packages' admins (beat schedules, groups): their saves,
                # deletes and actions land in the audit log too.
                bases = (*bases, AuditedModelAdmin)
                attrs["audits_package_actions"] = True
            admin_class = type(admin_class.__name__, bases, attrs)
        super().register(model_or_iterable, admin_class, **options)

    def get_app_list(self, request, app_label=None):
        """By domain; an app's own page (``/admin/<app_label>/``) stays Django's."""
        if app_label is not None:
            return super().get_app_list(request, app_label)
        groups: dict[str, list[dict]] = {}
        for app in self._build_app_dict(request).values():
            for model in app["models"]:
                domain = domain_of(app["app_label"], model["object_name"])
                model["app_label"] = app["app_label"]
                groups.setdefault(domain, []).append(model)
        index_url = self._index_url()
        app_list = []
        for domain in [name for name, _ in DOMAINS] + [OTHER]:
            if domain not in groups:
                continue
            slug = slugify(domain.replace("&", "and"))
            app_list.append(
                {
                    "name": domain,
                    "app_label": slug,
                    "app_url": f"{index_url}#{slug}",
                    "has_module_perms": True,
                    "models": sorted(
                        groups[domain],
                        key=lambda m, d=domain: _rank(
                            d, m["app_label"], m["object_name"]
                        ),
                    ),
                }
            )
        return app_list

    def _index_url(self) -> str:
        return reverse("admin:index", current_app=self.name)
