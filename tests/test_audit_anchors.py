"""The audit chain's head anchored outside the database (elog/anchors.py): the
anchors beat writes, what they detect (the newest records removed), and what
they refuse (a broken chain, a line not signed with the plant's key)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bpmos.auditkeys import keyring
from elog import anchors, audit, chain_status
from elog.models import AuditRecord
from tests.test_audit_chain import TABLE, trigger_bypassed

T0 = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


@pytest.fixture
def anchor_file(tmp_path, settings):
    path = tmp_path / "anchors" / "audit-anchors.jsonl"
    settings.BPMOS_AUDIT_ANCHOR_FILE = str(path)
    return path


def _records(make_user, n: int) -> None:
    admin = make_user("admin")
    for step in range(n):
        audit.record(actor=admin, action="user.role_changed", after={"step": step})


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_head_is_appended_signed_and_only_when_it_grew(db, make_user, anchor_file):
    _records(make_user, 3)
    head = AuditRecord.objects.order_by("-seq").first()
    first = anchors.audit_anchor_write(now=T0)
    assert (first.seq, first.hash) == (head.seq, head.hash)
    ring = keyring()
    assert _lines(anchor_file) == [
        {
            "v": 2,
            "seq": head.seq,
            "hash": head.hash,
            "at": "2026-12-03T18:00:00Z",
            "kid": ring.current_id,
            "sig": anchors._signature(
                head.seq,
                head.hash,
                "2026-12-03T18:00:00Z",
                ring.current_id,
                ring.current_key,
            ),
        }
    ]
    # nothing new: nothing written
    assert anchors.audit_anchor_write(now=T0) is None
    assert len(_lines(anchor_file)) == 1
    _records(make_user, 2)
    second = anchors.audit_anchor_write(now=T0)
    assert second.seq == head.seq + 2
    assert [line["seq"] for line in _lines(anchor_file)] == [head.seq, head.seq + 2]


def test_an_empty_chain_is_not_anchored(db, anchor_file):
    assert anchors.audit_anchor_write() is None
    assert not anchor_file.exists()


def test_removing_the_newest_records_is_found_against_the_anchor(
    db, make_user, anchor_file
):
    _records(make_user, 5)
    anchored = anchors.audit_anchor_write(now=T0)
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq > %s", [anchored.seq - 2])
    from elog.services import audit_chain_verify

    assert audit_chain_verify().ok is True  # intact in itself
    result = anchors.verify_against_anchors()
    assert result.ok is False
    assert result.first_broken.problem == "removed"
    assert f"#{anchored.seq}" in result.first_broken.message
    # the stored verification the auditor's dashboard shows sees it too
    status = chain_status.audit_chain_status_refresh()
    assert status["ok"] is False
    assert status["firstBroken"]["problem"] == "removed"


def test_a_broken_chain_is_never_anchored(db, make_user, anchor_file):
    _records(make_user, 4)
    anchors.audit_anchor_write(now=T0)
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE seq = (SELECT MAX(seq) FROM {TABLE})"
        )
    _records(make_user, 1)  # a new head on the truncated chain
    assert anchors.audit_anchor_write(now=T0) is None
    assert len(_lines(anchor_file)) == 1


def test_lines_not_signed_with_the_plant_key_are_ignored(
    db, make_user, anchor_file, settings
):
    _records(make_user, 2)
    genuine = anchors.audit_anchor_write(now=T0)
    forged = {
        "v": 1,
        "seq": 1,
        "hash": "0" * 64,
        "at": "2026-12-03T19:00:00Z",
        "sig": "f" * 64,
    }
    with anchor_file.open("a") as handle:
        handle.write(json.dumps(forged) + "\n")
        handle.write("not json\n")
        handle.write(json.dumps({**forged, "seq": True}) + "\n")
    found = anchors.anchors_read()
    assert found.anchors == [genuine]
    assert found.bad_lines == [2, 3, 4]
    # the same file read with another key holds no anchor at all
    settings.BPMOS_AUDIT_KEY = "another-plant-" + "k" * 40
    assert anchors.anchors_read().anchors == []


def test_verify_audit_takes_the_anchor_file(db, make_user, anchor_file):
    _records(make_user, 3)
    anchors.audit_anchor_write(now=T0)
    out = io.StringIO()
    call_command("verify_audit", "--anchors", str(anchor_file), stdout=out)
    assert "Audit chain intact" in out.getvalue()
    assert "Against the anchor of 2026-12-03T18:00:00+00:00" in out.getvalue()
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE seq = (SELECT MAX(seq) FROM {TABLE})"
        )
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit", "--anchors", stdout=out)
    assert "BROKEN" in out.getvalue()
    assert "newest records were removed" in out.getvalue()


def test_verify_audit_refuses_a_file_without_anchors(db, anchor_file):
    anchor_file.parent.mkdir(parents=True)
    anchor_file.write_text("garbage\n")
    with pytest.raises(CommandError, match="holds no valid anchor"):
        call_command(
            "verify_audit", "--anchors", stdout=io.StringIO(), stderr=io.StringIO()
        )


def test_the_beat_task_anchors(db, make_user, anchor_file):
    from elog.tasks_chain import audit_anchor_write_task

    _records(make_user, 2)
    seq = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    assert audit_anchor_write_task() == seq
    assert audit_anchor_write_task() is None
    from bpmos.celery import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["audit-anchor-write"]["task"] == (
        "elog.tasks_chain.audit_anchor_write_task"
    )
