"""bpmos.readcache: computed payloads kept in the cache until a write (or the
clock) makes them wrong; the plant screens' read models of lines.readmodels.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from bpmos.readcache import ReadModel
from lines import selectors, services
from tests.factories_lines import make_line

pytestmark = pytest.mark.django_db(transaction=True)


class Counting:
    """A compute function that counts its calls and returns a new payload each
    time, valid until ``valid_until``."""

    def __init__(self, valid_until=None):
        self.calls = 0
        self.valid_until = valid_until

    def __call__(self):
        self.calls += 1
        return {"computed": self.calls}, self.valid_until


@pytest.fixture
def model():
    return ReadModel("test-model", ["lines.Line"])


def test_a_payload_is_computed_once_then_served(model):
    compute = Counting()
    assert model.get("a", compute) == {"computed": 1}
    assert model.get("a", compute) == {"computed": 1}
    assert compute.calls == 1
    other = Counting()
    assert model.get("b", other) == {"computed": 1}  # keys are separate


def test_invalidate_drops_every_payload(model):
    first, second = Counting(), Counting()
    model.get("a", first)
    model.get("b", second)
    model.invalidate()
    assert model.get("a", first) == {"computed": 2}
    assert model.get("b", second) == {"computed": 2}


def test_changed_invalidates_now_and_again_at_commit(model):
    compute = Counting()
    model.get("a", compute)
    with transaction.atomic():
        model.changed()
        # The writer's own transaction sees its change.
        assert model.get("a", compute) == {"computed": 2}
        # A payload computed before the commit (as another reader might) ...
        assert model.get("a", compute) == {"computed": 2}
    # ... is dropped when the write commits.
    assert model.get("a", compute) == {"computed": 3}
    assert model.get("a", compute) == {"computed": 3}


def test_a_payload_is_kept_only_until_its_valid_until(model):
    # Kept: valid for a minute, far more than a loaded machine takes between the
    # two reads (1.5 s, as this test had, was not: the cache stores whole seconds
    # left, so a read 0.5 s late found nothing stored).
    kept = Counting(valid_until=timezone.now() + timedelta(minutes=1))
    model.get("a", kept)
    assert model.get("a", kept) == {"computed": 1}
    # Gone once its moment has passed, however late this test gets there.
    soon = timezone.now() + timedelta(seconds=1)
    expiring = Counting(valid_until=soon)
    model.get("c", expiring)
    time.sleep(max(0.0, (soon - timezone.now()).total_seconds()) + 0.2)
    assert model.get("c", expiring) == {"computed": 2}
    # Already past: served but not stored.
    late = Counting(valid_until=timezone.now() - timedelta(seconds=1))
    model.get("b", late)
    model.get("b", late)
    assert late.calls == 2


def test_saving_a_named_model_invalidates(model):
    model.connect()
    compute = Counting()
    model.get("a", compute)
    make_line()  # a Line save (and stations and machines, not named here)
    assert model.get("a", compute) == {"computed": 2}


def test_without_the_cache_every_read_computes(settings, model):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    compute = Counting()
    assert model.get("a", compute) == {"computed": 1}
    assert model.get("a", compute) == {"computed": 2}
    model.changed()  # logs, does not fail the write


def test_line_views_are_valid_until_a_snapshot_ages_or_the_shift_ends():
    line = make_line()
    morning = timezone.now().replace(hour=7, minute=0, second=0, microsecond=0)
    # No snapshot: until the 06:00 shift ends at 14:00.
    views = selectors.line_status_list(now=morning)
    assert selectors.views_valid_until(views, morning) == morning.replace(hour=14)
    services.oee_snapshot_refresh(line_id=line.pk, now=morning)
    views = selectors.line_status_list(now=morning)
    computed = views[0].snapshot.computed_at
    assert selectors.views_valid_until(views, morning) == (
        computed + selectors.SNAPSHOT_MAX_AGE
    )
    # Late in the shift the shift's end comes first.
    late = morning.replace(hour=13, minute=59)
    services.oee_snapshot_refresh(line_id=line.pk, now=late)
    views = selectors.line_status_list(now=late)
    assert selectors.views_valid_until(views, late) == late.replace(hour=14, minute=0)


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="embedded: no Redis")
def test_redis_backend_keeps_one_client_per_pool():
    from bpmos.cache import RedisCache

    backend = RedisCache(django_settings.REDIS_URL, {"KEY_PREFIX": "test-one-client"})
    backend.set("k", {"a": 1})
    assert backend.get_many(["k", "missing"]) == {"k": {"a": 1}}
    client = backend._cache.get_client("k")
    assert backend._cache.get_client("other") is client
    assert backend._cache.get_client("k", write=True) is client  # one server
    backend.delete("k")
    assert backend.get("k") is None
