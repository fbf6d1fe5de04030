"""``manage.py audit_keys``: the audit keyring's ids, what each key signed, and
(``--check``) whether every chain signed with them verifies."""

from django.core.management.base import BaseCommand, CommandError

from bpmos.auditkeys import keyring
from elog.signed import CHAINS


class Command(BaseCommand):
    help = (
        "Print the audit keyring (the current key's id and the retired ones'; "
        "never a key) and, for every chain signed with it (the audit log, its "
        "anchors, the passport ledgers), how many rows each key id signed, "
        "naming ids the keyring does not hold. With --check, also verify every "
        "chain; exits 1 when one is broken or holds rows of an unknown key. "
        "Run it after a key rotation (docs/security.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Verify every signed chain too."
        )

    def handle(self, *args, **options):
        ring = keyring()
        self.stdout.write("Audit keyring:")
        self.stdout.write(f"  current  {ring.current_id}")
        for key_id in ring.retired_ids:
            self.stdout.write(f"  retired  {key_id}")
        unknown = False
        for name, chain in sorted(CHAINS.items()):
            counts = chain.key_ids()
            parts = []
            for key_id, rows in counts.items():
                known = ring.key(key_id) is not None
                unknown |= not known
                parts.append(
                    f"{key_id or '(none)'} {rows}"
                    + ("" if known else " (NOT IN THE KEYRING)")
                )
            self.stdout.write(f"{name}: {', '.join(parts) or 'nothing signed'}")
        if not options["check"]:
            return
        broken = []
        for name, chain in sorted(CHAINS.items()):
            verified = chain.verify()
            line = f"{name}: {verified.summary}"
            if verified.ok:
                self.stdout.write(self.style.SUCCESS(line))
            else:
                self.stdout.write(self.style.ERROR(line))
                broken.append(name)
        if broken or unknown:
            raise CommandError(
                "Not every signed row verifies with this keyring: "
                + ", ".join(broken or ["rows signed with an unknown key"]),
                returncode=1,
            )
