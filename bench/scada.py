"""Benchmark of the OPC UA connector (docs/scada.md): poll latency and
subscription throughput against a real asyncua server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bpmos_opcua \\
    REDIS_URL=redis://127.0.0.1:6379/9 \\
    .venv/bin/python -m bench.scada [--tags 1000 10000] [--rounds 30] [--seconds 10]
                                    [--server asyncua|open62541]

The bench uses its own database, ``<DATABASE_URL's name>_bench``, which it
re-creates (migrated) on every run; nothing else is touched. The OPC UA server
is asyncua's (``--server open62541``: open62541's, PyPI ``o6``, a dev
requirement), in a process of its own on 127.0.0.1 (a free port), with N
Double variables under ``Objects/Bench``; a connector and N tags are configured
for it in the bench database. (``o6`` unlicensed ends the process that imports
it after ten minutes: only the server process does, and a run of one N stays
well under that.)

For each N (default 1,000 and 10,000), all in one run so the figures compare
on the same (noisy) machine:

1. Poll latency, in ``--rounds`` rounds, each with the three reads one after
   the other on open sessions:
   a. ceiling: one bare asyncua ``client.read_values(nodes)`` of the same N
      nodes (one Read service call, nothing else);
   b. the connector's ``read(tags)``: Read calls of 1,000 nodes sent together,
      the raw values paired with their tags;
   c. the same plus ``normalize`` (the contract's readings, ready to store).
   p50/p99 in ms, and per 1,000 tags (goal: b <= 40 ms per 1,000 tags).
2. Subscription throughput for ``--seconds``: the server changes every value
   as fast as it can (fresh source timestamps); the connector's subscription
   (publishing interval 100 ms) hands each publish to ``normalize`` and
   ``readings_store`` (PostgreSQL, one INSERT ... ON CONFLICT a batch, audited).
   Value changes written by the server per second, delivered to the connector
   per second, and stored per second.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import time
from datetime import UTC, datetime

from bench.common import free_port, ms, percentile, setup_bench_django

POLL_GOAL_MS_PER_1000 = 40.0
PUBLISHING_INTERVAL_MS = 100


# --- the server ------------------------------------------------------------------


async def _serve_async(count: int, endpoint: str, conn) -> None:
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    index = await server.register_namespace("urn:bpmos:bench")
    folder = await server.nodes.objects.add_folder(ua.NodeId("Bench", index), "Bench")
    now = datetime.now(UTC)
    ids = []
    for i in range(count):
        node = await folder.add_variable(
            ua.NodeId(f"Bench.V{i:05d}", index), f"V{i:05d}", 0.0, ua.VariantType.Double
        )
        await server.write_attribute_value(
            node.nodeid,
            ua.DataValue(
                ua.Variant(0.0, ua.VariantType.Double),
                SourceTimestamp=now,
                ServerTimestamp=now,
            ),
        )
        ids.append(node.nodeid)
    await server.start()
    conn.send([node_id.to_string() for node_id in ids])
    loop = asyncio.get_running_loop()
    writes = 0
    writer: asyncio.Task | None = None

    async def write_forever() -> None:
        nonlocal writes
        value = 0.0
        while True:
            value += 1.0
            for node_id in ids:
                stamp = datetime.now(UTC)
                await server.write_attribute_value(
                    node_id,
                    ua.DataValue(
                        ua.Variant(value, ua.VariantType.Double),
                        SourceTimestamp=stamp,
                        ServerTimestamp=stamp,
                    ),
                )
                writes += 1
            await asyncio.sleep(0)  # let the publishes out

    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "write":
            writes = 0
            writer = asyncio.create_task(write_forever())
        elif command == "halt":
            if writer is not None:
                writer.cancel()
            conn.send(writes)
        else:  # "stop"
            await server.stop()
            conn.send("stopped")
            return


def _serve(count: int, endpoint: str, conn) -> None:
    """The server process's main: asyncua's server with ``count`` variables."""
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    asyncio.run(_serve_async(count, endpoint, conn))


def _serve_open62541(count: int, endpoint: str, conn) -> None:
    """The server process's main: open62541's (``o6``) with ``count`` variables,
    written in one batch (Server.write of a mapping) per round."""
    import threading

    import o6
    from o6.ns import ns0

    port = int(endpoint.rsplit(":", 1)[1].split("/")[0])
    server = o6.Server(port=port)
    index = server._add_namespace("urn:bpmos:bench", 2)
    server.start()
    folder = server.addObject(
        "Bench",
        server.objectsNode,
        nodeId=f"ns={index};s=Bench",
        ns=index,
        typeDefinition=o6.NodeId(ns0.objtypes.FolderType),
    )
    ids = [f"ns={index};s=Bench.V{i:05d}" for i in range(count)]
    for i, node_id in enumerate(ids):
        server.addVariable(f"V{i:05d}", folder, 0.0, nodeId=node_id, ns=index)
    conn.send(ids)
    state = {"writes": 0}
    halt = threading.Event()

    def write_forever() -> None:
        value = 0.0
        while not halt.is_set():
            value += 1.0
            stamp = o6.DateTime(datetime.now(UTC))
            server.write(
                {
                    node_id: o6.DataValue(value=value, sourceTimestamp=stamp)
                    for node_id in ids
                }
            )
            state["writes"] += count

    writer: threading.Thread | None = None
    while True:
        command = conn.recv()
        if command == "write":
            state["writes"] = 0
            halt.clear()
            writer = threading.Thread(target=write_forever, daemon=True)
            writer.start()
        elif command == "halt":
            halt.set()
            if writer is not None:
                writer.join()
            conn.send(state["writes"])
        else:  # "stop"
            server.stop()
            conn.send("stopped")
            return


class BenchServer:
    """asyncua's server with N variables in a process of its own (a plant's
    server is another machine: here at least another interpreter, so the
    connector's figures do not include the server's share of one GIL)."""

    def __init__(self, count: int, kind: str = "asyncua") -> None:
        self.count = count
        self.port = free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/bench"
        serve = _serve if kind == "asyncua" else _serve_open62541
        self.node_ids: list[str] = []
        self.writes = 0
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(count, self.endpoint, child), daemon=True
        )

    def start(self) -> None:
        self.process.start()
        if not self.conn.poll(600):
            raise RuntimeError("the OPC UA server did not start")
        self.node_ids = self.conn.recv()

    def start_writing(self) -> None:
        self.conn.send("write")

    def stop_writing(self) -> None:
        self.conn.send("halt")
        self.writes = self.conn.recv()

    def close(self) -> None:
        if self.process.is_alive():
            self.conn.send("stop")
            self.conn.poll(30)
            self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()


# --- the measurements ---------------------------------------------------------------


def configure(server: BenchServer):
    """A connector and N tags for the server, in the bench database."""
    from scada.models import Connector, ScadaReading, Tag

    ScadaReading.objects.all().delete()
    Connector.objects.all().delete()
    connector = Connector.objects.create(
        name=f"Bench {server.count}",
        kind="opcua",
        endpoint=server.endpoint,
        settings={"max_nodes_per_read": 1000, "timeout_s": 30},
    )
    Tag.objects.bulk_create(
        Tag(connector=connector, node_id=node_id, tag_name=f"bench.v{i:05d}", unit="u")
        for i, node_id in enumerate(server.node_ids)
    )
    return connector, list(connector.tags.order_by("id"))


async def poll_latency(connector, tags, rounds: int) -> dict[str, list[float]]:
    from asyncua import Client

    from scada.connectors.opcua import OpcUaConnector

    client = OpcUaConnector(connector)
    # The same watchdog as the connector's (asyncua's 1 s default drops a
    # session whose 10,000-node read takes longer on a busy machine).
    bare = Client(connector.endpoint, timeout=30, watchdog_intervall=30)
    await client.connect()
    await bare.connect()
    try:
        nodes = [bare.get_node(tag.node_id) for tag in tags]
        times: dict[str, list[float]] = {"bare": [], "read": [], "normalize": []}
        for warm in range(rounds + 2):
            started = time.perf_counter()
            values = await bare.read_values(nodes)
            bare_s = time.perf_counter() - started
            started = time.perf_counter()
            raw = await client.read(tags)
            read_s = time.perf_counter() - started
            client.normalize(raw)
            normalized_s = time.perf_counter() - started
            assert len(values) == len(raw) == len(tags)
            if warm >= 2:  # the first two open the sessions' caches
                times["bare"].append(bare_s)
                times["read"].append(read_s)
                times["normalize"].append(normalized_s)
        return times
    finally:
        await client.disconnect()
        await bare.disconnect()


async def subscription_throughput(connector, tags, server, seconds: float) -> dict:
    from django.db import connection

    from scada.connectors.opcua import OpcUaConnector
    from scada.readings import readings_store

    client = OpcUaConnector(connector)
    counts = {"delivered": 0, "stored": 0, "duplicates": 0, "batches": 0}
    marks = {"delivered_at": 0.0, "stored_at": 0.0}

    def store(batch) -> None:
        try:
            result = readings_store(
                connector_id=connector.pk, readings=client.normalize(batch)
            )
        finally:
            connection.close()  # this worker thread's connection
        counts["stored"] += result["stored"]
        counts["duplicates"] += result["duplicates"]
        counts["batches"] += 1
        marks["stored_at"] = time.perf_counter()

    busy = {"stores": 0}

    async def on_raw(batch) -> None:
        counts["delivered"] += len(batch)
        marks["delivered_at"] = time.perf_counter()
        busy["stores"] += 1
        try:
            await asyncio.to_thread(store, batch)
        finally:
            busy["stores"] -= 1

    async def quiet(seconds: float = 1.5) -> None:
        """Wait until no store runs and nothing was delivered nor stored for
        ``seconds``."""
        while True:
            last = max(marks.values())
            await asyncio.sleep(seconds)
            if not busy["stores"] and max(marks.values()) == last:
                return

    await client.connect()
    try:
        await client.subscribe(tags, on_raw, PUBLISHING_INTERVAL_MS)
        await quiet()  # the initial values first, then the clock starts
        start = dict(counts)
        server.start_writing()
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        await asyncio.to_thread(server.stop_writing)
        written_for = time.perf_counter() - started
        await quiet()  # what was written is delivered and stored
        await client.unsubscribe()
    finally:
        await client.disconnect()
    delivered = counts["delivered"] - start["delivered"]
    stored = counts["stored"] - start["stored"]
    return {
        "seconds": written_for,
        "written": server.writes,
        "written_rate": server.writes / written_for,
        "delivered": delivered,
        "delivered_rate": delivered / (marks["delivered_at"] - started),
        "stored": stored,
        "stored_rate": stored / (marks["stored_at"] - started),
        "duplicates": counts["duplicates"] - start["duplicates"],
        "batches": counts["batches"] - start["batches"],
    }


def report_poll(count: int, times: dict[str, list[float]]) -> None:
    per_1000 = 1000 / count
    print(f"\n== poll of {count:,} tags ({len(times['read'])} rounds)")
    for label, key in [
        ("bare read_values (ceiling)", "bare"),
        ("connector read", "read"),
        ("connector read + normalize", "normalize"),
    ]:
        values = times[key]
        print(
            f"  {label:<28} {ms(values)}   per 1,000 tags: p50 "
            f"{percentile(values, 50) * 1000 * per_1000:6.2f} ms"
        )
    read_p50 = percentile(times["read"], 50) * 1000 * per_1000
    bare_p50 = percentile(times["bare"], 50) * 1000 * per_1000
    verdict = "met" if read_p50 <= POLL_GOAL_MS_PER_1000 else "NOT met"
    print(
        f"  goal <= {POLL_GOAL_MS_PER_1000:.0f} ms per 1,000 tags: {verdict} "
        f"(p50 {read_p50:.2f} ms; ceiling {bare_p50:.2f} ms, "
        f"connector/ceiling {read_p50 / bare_p50:.2f}x)"
    )


def report_subscription(count: int, result: dict) -> None:
    print(
        f"== subscription of {count:,} tags: the server wrote for "
        f"{result['seconds']:.1f} s, publishing every {PUBLISHING_INTERVAL_MS} ms"
    )
    print(
        f"  value changes written by the server  {result['written']:>9,} "
        f"{result['written_rate']:>9,.0f} /s"
    )
    print(
        f"  delivered to the connector           {result['delivered']:>9,} "
        f"{result['delivered_rate']:>9,.0f} /s (to the last delivery)"
    )
    print(
        f"  stored through readings_store        {result['stored']:>9,} "
        f"{result['stored_rate']:>9,.0f} /s (to the last store; "
        f"{result['batches']} batches, {result['duplicates']} duplicates)"
    )
    print(
        "  (changes past a monitored item's queue, or more than the client "
        "decodes, are not delivered: the server drops the oldest)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--server", choices=["asyncua", "open62541"], default="asyncua")
    args = parser.parse_args()
    setup_bench_django()
    # asyncua logs its publish loop's end after a disconnect as an error.
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    for count in args.tags:
        server = BenchServer(count, args.server)
        try:
            started = time.perf_counter()
            server.start()
            print(
                f"\n{args.server} server with {count:,} variables up in "
                f"{time.perf_counter() - started:.1f} s ({server.endpoint})"
            )
            connector, tags = configure(server)
            rounds = args.rounds if count <= 1_000 else max(5, args.rounds // 3)
            report_poll(count, asyncio.run(poll_latency(connector, tags, rounds)))
            report_subscription(
                count,
                asyncio.run(
                    subscription_throughput(connector, tags, server, args.seconds)
                ),
            )
        finally:
            server.close()


if __name__ == "__main__":
    main()
