"""The process's event sender loop (``bpmos.events.services._SenderLoop``)
gives up a send that does not finish in its bound, and stays usable: a layer
that stops answering must not hold the delivery thread for good."""

import asyncio
import threading

import pytest

from bpmos.events.services import _SenderLoop


def test_a_send_past_its_bound_is_cancelled_and_the_loop_still_sends():
    loop = _SenderLoop()
    cancelled = threading.Event()

    async def hangs():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def answers():
        return "sent"

    with pytest.raises(TimeoutError):
        loop.run(hangs(), timeout=0.2)
    assert cancelled.wait(10), "the hung send was not cancelled"
    assert loop.run(answers(), timeout=10) == "sent"


def test_a_send_within_its_bound_returns_its_result_or_its_error():
    loop = _SenderLoop()

    async def fails():
        raise ConnectionError("layer down")

    async def answers():
        await asyncio.sleep(0.01)
        return 42

    assert loop.run(answers(), timeout=10) == 42
    with pytest.raises(ConnectionError, match="layer down"):
        loop.run(fails(), timeout=10)
