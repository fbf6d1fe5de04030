"""Seed the demo plant (the users per role, then each area's data). Idempotent: a
second run reuses what exists.

Each app that has demo data provides ``<app>/demo.py`` with ``seed(log)`` and an
``ORDER`` (lower runs first); this command runs them in one transaction. A first
run takes from about 15 s to over a minute on a busy machine, so it says what it
is doing as it goes: each step as it starts (``[3/7] runbooks``), each of the
step's lines with the seconds since the start, and each step's duration.
"""

import time
from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction


def demo_modules():
    """The demo modules of the installed apps, in their declared order."""
    found = []
    for config in apps.get_app_configs():
        name = f"{config.name}.demo"
        if find_spec(name) is not None:
            found.append(import_module(name))
    return sorted(found, key=lambda module: getattr(module, "ORDER", 100))


def step_name(module) -> str:
    """``passports.demo`` -> ``passports``; ``bpmos.accounts.demo`` -> ``accounts``."""
    return module.__name__.rsplit(".", 2)[-2]


class Command(BaseCommand):
    help = "Seed the demo plant: users per role, then each area's data."

    @transaction.atomic
    def handle(self, *args, **options):
        quiet = options["verbosity"] == 0
        started = time.monotonic()

        def say(line: str) -> None:
            if not quiet:
                self.stdout.write(f"[{time.monotonic() - started:5.1f}s] {line}")
                self.stdout.flush()  # progress, even when piped into a file

        modules = demo_modules()
        names = [step_name(module) for module in modules]
        say(
            f"seed_demo: {len(modules)} steps ({', '.join(names)}); "
            "a first run takes up to a minute or two, a later one seconds"
        )
        for number, (module, name) in enumerate(zip(modules, names, strict=True), 1):
            step_started = time.monotonic()
            say(f"[{number}/{len(modules)}] {name} ...")
            module.seed(lambda line: say(f"  {line}"))
            say(
                f"[{number}/{len(modules)}] {name} done in "
                f"{time.monotonic() - step_started:.1f}s"
            )
        say(f"seed_demo: done in {time.monotonic() - started:.1f}s")
