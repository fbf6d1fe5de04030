"""``manage.py verify_ledger``: walk every passport's ledger; exit 0 if intact,
1 if broken (naming the first broken link), 2 if ``--passport`` names none.
``--checkpoints``: recompute every ledger checkpoint's Merkle root and check its
leaves against the ledgers as well (``passports.checkpoints``)."""

import json

from django.core.management.base import BaseCommand, CommandError

from bpmos.errors import DomainError
from passports import checkpoints, ledger, selectors


class Command(BaseCommand):
    help = (
        "Verify the passport ledgers: each event's HMAC, the hash chain, the "
        "version numbering, the lifecycle rules, and that each passport's state, "
        "custodian, version and head hash are what its ledger says. Names the "
        "first broken link. Exits 0 when intact, 1 when broken."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--passport",
            metavar="IDENTIFIER",
            help="Check one passport only (UUID, serial, barcode, RFID or BPAN).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Passports loaded per round trip (default %(default)s).",
        )
        parser.add_argument(
            "--checkpoints",
            action="store_true",
            help="Also recompute every checkpoint's Merkle root and check each "
            "checkpointed head against the ledgers (a truncated or rewritten "
            "chain, a removed checkpoint).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the result as JSON."
        )

    def handle(self, *args, **options):
        ids = None
        if options["passport"]:
            try:
                ids = [selectors.resolve(options["passport"]).pk]
            except DomainError as exc:
                raise CommandError(exc.message, returncode=2) from exc
        result = ledger.verify(passport_ids=ids, batch=options["batch_size"])
        marks = None
        if options["checkpoints"]:
            marks = checkpoints.checkpoints_verify()
        counts = f"{result.passports} passports, {result.events} events checked."
        if options["json"]:
            body = result.as_dict()
            if marks is not None:
                body["checkpoints"] = marks.as_dict()
            self.stdout.write(json.dumps(body, indent=2))
        else:
            if result.ok:
                self.stdout.write(self.style.SUCCESS(f"Ledger intact: {counts}"))
            else:
                broken = result.first_broken
                self.stdout.write(
                    f"Ledger BROKEN: passport {broken.serial} (id "
                    f"{broken.passport_id}), event {broken.version} (id "
                    f"{broken.event_id}): {broken.problem}.\n{broken.message}\n{counts}"
                )
            if marks is not None:
                marked = (
                    f"{marks.checkpoints} checkpoints, {marks.leaves} leaves checked."
                )
                if marks.ok:
                    self.stdout.write(
                        self.style.SUCCESS(f"Checkpoints intact: {marked}")
                    )
                else:
                    problem = marks.first_broken
                    self.stdout.write(
                        f"Checkpoints BROKEN at checkpoint {problem.seq}: "
                        f"{problem.problem}.\n{problem.message}\n{marked}"
                    )
        if not result.ok:
            raise CommandError("A passport ledger is broken.", returncode=1)
        if marks is not None and not marks.ok:
            raise CommandError("The ledger checkpoints are broken.", returncode=1)
