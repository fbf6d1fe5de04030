"""kombu's filesystem transport, with messages that appear whole: the Celery
broker of the embedded default (``make run``; settings: ``filesystem://``).

kombu's own ``_put`` creates the message file under its final name and then
writes it, while ``_get`` in another process lists the folder, moves the file
and reads it without the writer's lock: a worker that comes between the two
reads an empty file, raises ``JSONDecodeError`` and Celery stops the worker as
"unrecoverable", which stopped the whole ``make run`` on a busy machine. Here a
message is written under a name no queue matches (``.part-<uuid>``) and renamed
to its final name once complete (``os.replace``, atomic within one folder), so
a reader only ever sees whole messages.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

PART_PREFIX = ".part-"  # no queue's ".<queue>.msg" is in such a name


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put ``payload`` onto ``queue``: written aside, then renamed."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        part = os.path.join(self.data_folder_out, f"{PART_PREFIX}{uuid.uuid4()}")
        try:
            with open(part, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(part, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(part)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
