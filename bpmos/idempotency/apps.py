from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    name = "bpmos.idempotency"
    label = "idempotency"
    verbose_name = "API idempotency keys"
