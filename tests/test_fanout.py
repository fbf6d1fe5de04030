"""The process-wide fan-out: one group membership per topic, one encoding per event."""

from __future__ import annotations

import asyncio
import json

from channels.layers import InMemoryChannelLayer

from bpmos.events.fanout import LocalFanout
from bpmos.events.services import group_name


class Recorder:
    def __init__(self):
        self.texts: list[str] = []

    async def offer(self, event: dict, text: str) -> None:
        self.texts.append(text)


def message(event_id: int, topics: list[str]) -> dict:
    return {
        "type": "event.message",
        "event": {
            "id": event_id,
            "name": "station.changed",
            "topics": topics,
            "occurredAt": "2026-01-01T00:00:00Z",
            "data": {"state": "Running"},
        },
    }


async def wait_for(condition) -> None:
    async with asyncio.timeout(2):
        while not condition():
            await asyncio.sleep(0.01)


async def stop(fanout: LocalFanout) -> None:
    for task in fanout._tasks:
        task.cancel()
    await asyncio.gather(*fanout._tasks, return_exceptions=True)


async def test_subscribers_of_a_process_share_one_group_membership():
    layer = InMemoryChannelLayer()
    fanout = LocalFanout(layer)
    first, second = Recorder(), Recorder()
    await fanout.join(first, "lines")
    await fanout.join(second, "lines")
    try:
        assert list(layer.groups[group_name("lines")]) == [fanout.channel]
        await layer.group_send(group_name("lines"), message(7, ["lines", "line.3"]))
        await wait_for(lambda: first.texts and second.texts)
        sent = message(7, ["lines", "line.3"])["event"]
        assert json.loads(first.texts[0]) == {"type": "event", **sent}
        assert first.texts[0] is second.texts[0]  # encoded once for both
    finally:
        await stop(fanout)


async def test_last_subscriber_leaving_leaves_the_group():
    layer = InMemoryChannelLayer()
    fanout = LocalFanout(layer)
    first, second = Recorder(), Recorder()
    await fanout.join(first, "lines")
    await fanout.join(second, "lines")
    try:
        await fanout.leave(first, "lines")
        assert list(layer.groups[group_name("lines")]) == [fanout.channel]
        await fanout.leave(first, "lines")  # twice: no effect
        await fanout.leave(second, "lines")
        assert group_name("lines") not in layer.groups
        assert fanout.subscribers == {}
    finally:
        await stop(fanout)


async def test_an_event_goes_only_to_subscribers_of_its_topics():
    layer = InMemoryChannelLayer()
    fanout = LocalFanout(layer)
    line, other = Recorder(), Recorder()
    await fanout.join(line, "line.3")
    await fanout.join(other, "line.4")
    try:
        assert await fanout.deliver(message(9, ["lines", "line.3"])) == 1
        assert (len(line.texts), other.texts) == (1, [])
    finally:
        await stop(fanout)
