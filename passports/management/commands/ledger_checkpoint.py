"""``manage.py ledger_checkpoint``: write the next ledger checkpoint now (what
Celery beat's ``ledger-checkpoint`` does); exit 0 when written or when no
chain grew, 1 when a grown chain does not verify (nothing written)."""

import json

from django.core.management.base import BaseCommand, CommandError

from bpmos.errors import Conflict
from passports import checkpoints


class Command(BaseCommand):
    help = (
        "Checkpoint the passport ledgers: the Merkle root of the previous "
        "checkpoint's root and the head of every chain that grew since, audited. "
        "Refuses (exit 1, nothing written) when a grown chain does not verify."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", help="Print the checkpoint as JSON."
        )

    def handle(self, *args, **options):
        try:
            checkpoint = checkpoints.checkpoint_build()
        except Conflict as exc:
            raise CommandError(exc.message, returncode=1) from exc
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    checkpoint and checkpoints.checkpoint_dict(checkpoint), indent=2
                )
            )
        elif checkpoint is None:
            self.stdout.write("No ledger grew since the last checkpoint: none written.")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Checkpoint {checkpoint.seq}: root {checkpoint.root}, "
                    f"{checkpoint.leaf_count} leaves, {checkpoint.event_count} "
                    f"events (ids {checkpoint.first_event_id}-"
                    f"{checkpoint.last_event_id})."
                )
            )
