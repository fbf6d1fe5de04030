"""Compliance returns under concurrency (PostgreSQL): six approvals of one
return approve it once; six exports of one return are each counted and
audited, in one chain.

Transactional tests (the threads' connections must see the return), apart from
tests/test_compliance_returns.py, whose tests share a plant inside a
transaction open for the whole module (a flush cannot run inside it).
"""

from collections import Counter

import pytest

from bpmos.roles import Role
from compliance import returns
from compliance.models import ComplianceReturn
from compliance.periods import fy_period
from elog.models import AuditRecord
from elog.services import audit_chain_verify
from tests.support import run_together
from tests.test_compliance_returns import (
    FY,
    cpcb_schemas,  # noqa: F401 (autouse: the CSV layouts, shipped again after a flush)
    exports,
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql_only
def test_concurrent_approvals_approve_once(make_user):
    ret = returns.return_build(period=fy_period(FY), actor=None)
    approvers = [make_user(Role.SUPERVISOR) for _ in range(6)]
    results = run_together(
        [
            (lambda user=user: returns.return_approve(return_id=ret.pk, actor=user))
            for user in approvers
        ]
    )
    codes = Counter(getattr(r, "code", "ok") for r in results)
    assert codes == Counter({"ok": 1, "illegal_transition": 5})
    winner = next(r for r in results if isinstance(r, ComplianceReturn))
    ret.refresh_from_db()
    assert ret.approved_by_id == winner.approved_by_id
    assert AuditRecord.objects.filter(action="compliance_return_approve").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql_only
def test_concurrent_exports_are_each_counted_and_audited(make_user):
    boss = make_user(Role.SUPERVISOR)
    ret = returns.return_build(period=fy_period(FY), actor=boss)
    returns.return_approve(return_id=ret.pk, actor=boss)
    results = run_together(
        [
            lambda: returns.return_export(
                return_id=ret.pk, schema_slug=None, actor=boss, source="test"
            )
            for _ in range(6)
        ]
    )
    assert all(isinstance(r, returns.Export) for r in results), results
    ret.refresh_from_db()
    assert ret.export_count == 6
    rows = exports()
    assert sorted(row.after["exportCount"] for row in rows) == [1, 2, 3, 4, 5, 6]
    assert {row.after["source"] for row in rows} == {"test"}
    assert len({r.sha256 for r in results}) == 1  # the same bytes every time
    assert audit_chain_verify().ok is True
