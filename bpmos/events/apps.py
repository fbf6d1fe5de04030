from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "bpmos.events"
    label = "events"
    verbose_name = "Live events (outbox)"
