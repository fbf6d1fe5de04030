"""``manage.py verify_audit``: walk the audit chain; exit 0 if intact, 1 if not."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from elog.anchors import anchor_file, anchors_read
from elog.services import DEFAULT_BATCH_SIZE, audit_chain_verify


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain and name the first altered, removed or "
        "inserted record. Exits 0 when intact, 1 when broken. Keep the printed "
        "head (seq and hash) somewhere outside the database and pass it back with "
        "--anchor-seq/--anchor-hash to detect removal of the newest records."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help="Records fetched per round trip (default %(default)s).",
        )
        parser.add_argument("--anchor-seq", type=int, help="seq of a trusted head.")
        parser.add_argument("--anchor-hash", help="hash of that trusted head.")
        parser.add_argument(
            "--anchors",
            nargs="?",
            const="",
            metavar="FILE",
            help="Verify against the newest valid anchor of FILE (without FILE: "
            "BPMOS_AUDIT_ANCHOR_FILE, where beat writes them; elog/anchors.py).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the result as JSON."
        )

    def handle(self, *args, **options):
        anchor_seq, anchor_hash = options["anchor_seq"], options["anchor_hash"]
        if options["anchors"] is not None:
            if anchor_seq is not None or anchor_hash:
                raise CommandError("Give --anchors or --anchor-seq/--anchor-hash.")
            path = Path(options["anchors"]) if options["anchors"] else anchor_file()
            found = anchors_read(path)
            if found.bad_lines:
                self.stderr.write(
                    f"{path}: lines {', '.join(map(str, found.bad_lines))} are not "
                    "anchors signed with this plant's audit key; ignored."
                )
            for number, key_id in found.unknown_keys.items():
                self.stderr.write(
                    f"{path}: line {number} is signed with audit key {key_id!r}, "
                    "which the keyring does not hold: unverifiable, ignored."
                )
            newest = found.newest
            if newest is None:
                raise CommandError(f"{path} holds no valid anchor.")
            anchor_seq, anchor_hash = newest.seq, newest.hash
            self.stdout.write(
                f"Against the anchor of {newest.at.isoformat()}: seq {newest.seq}."
            )
        result = audit_chain_verify(
            batch_size=options["batch_size"],
            anchor_seq=anchor_seq,
            anchor_hash=anchor_hash,
        )
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
        elif result.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Audit chain intact: {result.checked} records checked."
                )
            )
            if result.head_seq is not None:
                self.stdout.write(
                    f"Head: seq {result.head_seq} hash {result.head_hash}"
                )
        else:
            broken = result.first_broken
            self.stdout.write(
                f"Audit chain BROKEN at record #{broken.seq} "
                f"(id {broken.id}): {broken.problem}.\n{broken.message}\n"
                f"{result.checked} records checked; newest record: "
                f"seq {result.head_seq} hash {result.head_hash}"
            )
            if broken.problem != "unverifiable":
                for run in result.unverifiable:
                    self.stdout.write(
                        f"Also unverifiable (key {run.key_id!r} not in the "
                        f"keyring): {run.records} records between #{run.first_seq} "
                        f"and #{run.last_seq}."
                    )
        if not result.ok:
            raise CommandError("The audit chain is broken.", returncode=1)
