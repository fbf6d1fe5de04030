"""Seed the demo plant (design §8). Idempotent: a second run reuses what exists.

Each app that has demo data provides ``<app>/demo.py`` with ``seed(log)`` and an
``ORDER`` (lower runs first); this command runs them in one transaction.
"""

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


class Command(BaseCommand):
    help = "Seed the demo plant: users per role, then each area's data."

    @transaction.atomic
    def handle(self, *args, **options):
        for module in demo_modules():
            module.seed(self.stdout.write)
