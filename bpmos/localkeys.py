"""The embedded mode's own secret key: random on first run, kept in the data dir.

Production takes its key from ``DJANGO_SECRET_KEY`` and refuses to start without
it. The embedded mode (``make run``, the tests) must not fall back to a key
written in the code: anyone who can read the code and reach the port could mint
an admin token or re-forge the audit chain. So the first process to start makes
a random key under ``BPMOS_DATA_DIR`` (``var/`` by default, never committed),
readable by its owner only, and every later process and run reads the same one.
Deleting the file logs everyone out and makes earlier audit records fail
verification (their HMAC used the old key).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

KEY_FILE_NAME = "secret_key"


def local_secret_key(data_dir: Path) -> str:
    """The key stored in ``data_dir``, created (0600) if there is none yet.

    Safe when several processes start at once (daphne, the Celery worker and
    beat under ``make run``): the key is written to a private temporary file and
    hard-linked into place, which fails if another process got there first;
    everyone then reads the one file that won.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        _create(path)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 50:
        raise RuntimeError(
            f"{path} holds no usable key; delete it to have a new one made"
        )
    return key


def _create(path: Path) -> None:
    tmp = path.with_name(f".{KEY_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(64) + "\n")
        # If another process made it first, theirs is the key.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
