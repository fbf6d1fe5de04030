"""The shape every live event has, and the registry of declared event names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bpmos import access

# event name -> the TypedDict its ``data`` must follow; filled by each area's
# events.py through ``declare`` so tests can check every payload's shape.
DECLARED: dict[str, type] = {}


def declare(name: str, payload_type: type) -> str:
    """Register an event name with its payload type; returns the name."""
    if name in DECLARED and DECLARED[name] is not payload_type:
        raise ValueError(f"event {name!r} declared twice with different payloads")
    DECLARED[name] = payload_type
    return name


@dataclass(frozen=True)
class Event:
    """A domain event: a declared ``name``, the topics it goes to, its data."""

    name: str
    topics: tuple[str, ...]
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in DECLARED:
            raise ValueError(f"event {self.name!r} is not declared")
        if not self.topics:
            raise ValueError("an event needs at least one topic")
        undeclared = [t for t in self.topics if access.topic_rule(t) is None]
        if undeclared:
            # Nobody could ever subscribe to it: a typo, or a topic missing from
            # bpmos.access.TOPICS.
            raise ValueError(f"event {self.name!r} has undeclared topics {undeclared}")
