"""Benchmark of ``Idempotency-Key`` (docs/api.md): what the header costs a POST,
and what a replay costs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bpmos_idem \\
    .venv/bin/python -m bench.idempotency [--requests 300]

The bench uses its own database, ``<DATABASE_URL's name>_bench``, which it
re-creates (migrated) on every run. Requests go through the whole Django stack
in process (``django.test.Client``: every middleware, JWT authentication, the
view, the service), one at a time, so the figures are the server's own time
without the network:

1. ``POST /api/inventory/items/{code}/reserve/`` without the header;
2. the same with a new key each time (claim, the work and the stored answer in
   one transaction);
3. the same key again (a replay: authenticate, look the key up, answer).
"""

from __future__ import annotations

import argparse
import time
import uuid

from bench.common import ms, setup_bench_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    setup_bench_django()

    from django.test import Client
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import RefreshToken

    from bpmos.accounts.models import User
    from inventory import services
    from inventory.models import Category, Location

    boss = User(username="bench-sam", role="supervisor")
    boss.set_unusable_password()
    boss.apply_role_flags()
    boss.save()
    Category.objects.create(slug="raw", name="Raw material", tracking="batch")
    Location.objects.create(code="A", name="Zone A", kind="zone")
    services.item_receive(
        code="LOT-1",
        sku="RM-ADHESIVE",
        category_slug="raw",
        location_code="A",
        quantity=10 * args.requests * 3,
        unit="kg",
        batch_ref="LOT-ADH-7",
        received_at=timezone.now(),
        actor=boss,
    )
    token = str(RefreshToken.for_user(boss).access_token)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="localhost")
    path = "/api/inventory/items/LOT-1/reserve/"
    body = {"quantity": 1, "dispatchRef": "DSP-1"}

    def run(label: str, headers) -> None:
        times = []
        for n in range(args.requests):
            started = time.perf_counter()
            response = client.post(
                path, body, content_type="application/json", headers=headers(n)
            )
            times.append(time.perf_counter() - started)
            assert response.status_code == 201, response.content
        print(f"{label:<34} {ms(times)}")

    run("no header", lambda n: {})
    run("new key each time", lambda n: {"Idempotency-Key": str(uuid.uuid4())})
    key = str(uuid.uuid4())
    client.post(
        path, body, content_type="application/json", headers={"Idempotency-Key": key}
    )
    run("replay of one key", lambda n: {"Idempotency-Key": key})


if __name__ == "__main__":
    main()
