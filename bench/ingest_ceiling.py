"""The ingest ceiling for ``bench.lines``: a JSON batch POST stored by COPY,
nothing of ours.

The "JSON batch POST of 1,000 readings -> COPY" row of docs/performance.md's
ceilings: a bare WSGI app under the same gunicorn (2 sync workers) that parses
the body with ``json.loads`` and COPYs its rows into ``lines_machinereading``
in one transaction. No authentication, no checks, no idempotency, no machine
status, no audit record, no events. Served as

    gunicorn bench.ingest_ceiling:application

on the database of ``DATABASE_URL`` (the bench's own).
"""

import json
import os
import re

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402

_PATH = re.compile(r"^/api/machines/(\d+)/readings$")
_COPY = (
    "COPY lines_machinereading (machine_id, tag, ts, value, text, note, unit, quality)"
    " FROM STDIN"
)


def application(environ, start_response):
    found = _PATH.match(environ.get("PATH_INFO", ""))
    if environ["REQUEST_METHOD"] != "POST" or found is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    machine_id = int(found.group(1))
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    rows = json.loads(body)
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.copy(_COPY) as copy,
    ):
        for row in rows:
            state = row["tag"] == "state"
            copy.write_row(
                (
                    machine_id,
                    row["tag"],
                    row["ts"],
                    None if state else row["value"],
                    row["value"] if state else "",
                    row.get("reason", ""),
                    "",
                    "good",
                )
            )
    start_response("201 Created", [("Content-Type", "application/json")])
    return [json.dumps({"accepted": len(rows)}).encode()]
