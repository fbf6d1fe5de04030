"""The embedded default's Celery broker (bpmos/fsbroker.py): kombu's
filesystem transport, whose messages appear in the queue folder only whole."""

from __future__ import annotations

import os
import threading
import time
from queue import Empty

import pytest
from kombu import Connection

from bpmos import fsbroker
from tests.support import join_or_fail


@pytest.fixture
def folders(tmp_path):
    for sub in ("queue", "processed", "control"):
        (tmp_path / sub).mkdir()
    return {
        "control_folder": str(tmp_path / "control"),
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "processed_folder": str(tmp_path / "processed"),
        "store_processed": False,
    }


def connect(folders) -> Connection:
    return Connection(
        "filesystem://",
        transport="bpmos.fsbroker:Transport",
        transport_options=folders,
    )


def test_filesystem_urls_mean_it_and_other_urls_are_left_alone():
    from bpmos.celery import app

    fs = app.connection_for_write("filesystem://")
    assert fs.transport_cls == "filesystem"
    assert fs.get_transport_cls() is fsbroker.Transport
    redis = app.connection_for_write("redis://127.0.0.1:1/0")
    assert redis.get_transport_cls() is not fsbroker.Transport


def test_a_message_goes_through_and_leaves_no_part_behind(folders):
    with connect(folders) as conn:
        channel = conn.channel()
        channel._put("celery", {"task": "x", "n": 1})
        assert [n for n in os.listdir(folders["data_folder_in"]) if "part" in n] == []
        assert channel._get("celery") == {"task": "x", "n": 1}
        with pytest.raises(Empty):
            channel._get("celery")


def test_a_message_still_being_written_is_not_read(folders):
    """What stopped the worker: a reader that found a message file before its
    writer had written it read an empty file (JSONDecodeError). A message
    being written now has a name no queue matches."""
    part = os.path.join(folders["data_folder_out"], f"{fsbroker.PART_PREFIX}abc")
    with open(part, "wb"):
        pass  # created, nothing written yet
    with connect(folders) as conn, pytest.raises(Empty):
        conn.channel()._get("celery")
    assert os.path.exists(part)


def test_many_writers_and_a_reader_never_see_a_partial_message(folders):
    per_writer, writers_n = 150, 4

    def write(offset):
        with connect(folders) as conn:
            channel = conn.channel()
            for i in range(per_writer):
                channel._put("celery", {"n": offset + i, "pad": "x" * 20_000})

    writers = [
        threading.Thread(target=write, args=(k * 1000,), daemon=True)
        for k in range(writers_n)
    ]
    for w in writers:
        w.start()
    got = []
    deadline = time.monotonic() + 60
    with connect(folders) as conn:
        channel = conn.channel()
        while len(got) < per_writer * writers_n and time.monotonic() < deadline:
            try:
                got.append(channel._get("celery")["n"])  # raises on a partial file
            except Empty:
                time.sleep(0.001)
    join_or_fail(*writers)
    assert sorted(got) == sorted(
        k * 1000 + i for k in range(writers_n) for i in range(per_writer)
    )
