"""Admin of compliance's score area: the Aadhaar Ready % snapshots, read-only
(Celery beat writes them; docs/compliance.md)."""

from django.contrib import admin
from django.utils.html import format_html_join

from bpmos.adminkit import AdminReaderMixin, ReadOnlyAdminMixin
from compliance import score
from compliance.models import ScoreSnapshot


@admin.register(ScoreSnapshot)
class ScoreSnapshotAdmin(ReadOnlyAdminMixin, AdminReaderMixin, admin.ModelAdmin):
    """Every computation of the score, newest first: how many passports were
    checked, how many were ready, per kind, and the rules they failed."""

    list_display = [
        "computed_at",
        "percent_ready",
        "ready",
        "total",
        "top_rule",
        "duration_ms",
    ]
    date_hierarchy = "computed_at"
    ordering = ["-computed_at", "-id"]
    actions = None
    fields = [
        "computed_at",
        "percent_ready",
        "ready",
        "total",
        "per_kind_table",
        "failing_rules_table",
        "completeness_table",
        "duration_ms",
    ]
    readonly_fields = fields

    @admin.display(description="Aadhaar Ready %")
    def percent_ready(self, obj: ScoreSnapshot) -> str:
        value = score.percent(obj.ready, obj.total)
        return "—" if value is None else f"{value} %"

    @admin.display(description="Most failed rule")
    def top_rule(self, obj: ScoreSnapshot) -> str:
        if not obj.failing_rules:
            return "—"
        first = obj.failing_rules[0]
        return f"{first['rule']} ({first['count']})"

    @admin.display(description="Per kind")
    def per_kind_table(self, obj: ScoreSnapshot) -> str:
        rows = [
            (kind, counts.get("ready", 0), counts.get("total", 0))
            for kind, counts in obj.per_kind.items()
        ]
        return format_html_join("", "<div>{}: {} of {} ready</div>", rows) or "—"

    @admin.display(description="Failing rules")
    def failing_rules_table(self, obj: ScoreSnapshot) -> str:
        rows = [
            (item["rule"], item["count"], item["message"]) for item in obj.failing_rules
        ]
        return format_html_join("", "<div><b>{}</b> ({}): {}</div>", rows) or "—"

    @admin.display(description="EU attribute completeness")
    def completeness_table(self, obj: ScoreSnapshot) -> str:
        data = obj.completeness or {}
        rows = [
            (category, counts.get("complete", 0), counts.get("total", 0))
            for category, counts in data.get("perCategory", {}).items()
        ]
        rows += [
            (f"missing {item['key']}", item["count"], obj.total)
            for item in data.get("missing", [])[:10]
        ]
        return format_html_join("", "<div>{}: {} of {}</div>", rows) or "—"
