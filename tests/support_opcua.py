"""A real OPC UA server for tests and benches: asyncua's ``Server`` on
127.0.0.1 (a free port), run in a thread with its own event loop, so the
synchronous test code (and the connector's own event loops) talk to it over
TCP as to a plant's server.

    with OpcUaTestServer() as server:
        ids = server.add_variables("Line1", {"Temp": 21.5, "Good": 0, "State": "idle"})
        server.set_value(ids["Temp"], 99.0, status="BadSensorFailure")
        server.endpoint           # "opc.tcp://127.0.0.1:<port>/bpmos"
        server.read_requests      # node counts of every Read a client sent
        server.stop(); server.start()   # same port, same nodes, last values

Variables live under ``Objects/<folder>`` with string node ids
``ns=<index>;s=<folder>.<name>`` (the namespace ``urn:bpmos:test`` is the first
registered one, index 2), so a restarted server serves the same ids: what a
collector needs to resubscribe. ``read_requests`` counts the Read service calls
arriving from clients (the server's PreRead callback, external sessions only):
one entry per call, holding how many nodes it read.

``users`` ({"name": "password"}) makes the server refuse anonymous sessions
and any other user; ``security`` ("Basic256Sha256_SignAndEncrypt", ...) with
``certificate``/``private_key`` paths serves only that policy.

The fixtures ``opcua_server`` (a started server with no variables for each
test: the module's ``shared_opcua_server``, emptied between tests) and
``make_opcua_server`` (build your own; all closed at the end of the test) are
imported by the test modules that need them (``make_opcua_server =
support_opcua.make_opcua_server`` and the same for ``opcua_server`` and
``shared_opcua_server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from asyncua import Server, ua
from asyncua.common.callback import CallbackType
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.user_managers import UserManager

from tests.support import WAIT_SECONDS

NAMESPACE = "urn:bpmos:test"

# asyncua logs every request at INFO and warns about each unknown handle; the
# tests' output stays readable without them.
for _name in ("asyncua", "asyncua.server", "asyncua.client"):
    logging.getLogger(_name).setLevel(logging.ERROR)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class _Variable:
    folder: str
    name: str
    value: Any
    variant_type: ua.VariantType | None
    status: ua.StatusCode | None = None
    source_timestamp: datetime | None = None

    @property
    def string_id(self) -> str:
        return f"{self.folder}.{self.name}"


class _PasswordUsers(UserManager):
    """Only the configured users, each with its password."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


def _status(status: str | int | ua.StatusCode | None) -> ua.StatusCode | None:
    if status is None or isinstance(status, ua.StatusCode):
        return status
    if isinstance(status, str):
        return ua.StatusCode(getattr(ua.StatusCodes, status))
    return ua.StatusCode(status)


class OpcUaTestServer:
    """One asyncua server in a background thread (see the module docstring)."""

    def __init__(
        self,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        security: str | None = None,
        certificate: str | None = None,
        private_key: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/bpmos"
        self.users = users
        self.security = security
        self.certificate = certificate
        self.private_key = private_key
        self.read_requests: list[int] = []
        self.namespace_index = 2
        self._variables: dict[str, _Variable] = {}  # by node id text
        self._server: Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="opcua-test-server", daemon=True
        )
        self._thread.start()

    # --- running coroutines on the server's loop ---------------------------------

    def call(
        self, coro: Coroutine[Any, Any, Any], timeout: float = WAIT_SECONDS
    ) -> Any:
        """Run ``coro`` on the server's event loop and return its result;
        ``TimeoutError`` after ``timeout`` seconds."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- lifecycle ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Start listening (again, on the same port, with the same variables)."""
        if self._server is None:
            # asyncua's init() builds the standard address space: 6-9 s of CPU
            # at load 8 on 2 cores (nice 19), and a 30 s bound ran out once in
            # a loaded run of tests/test_scada_opcua.py (an error at teardown).
            self.call(self._start(), timeout=2 * WAIT_SECONDS)

    def stop(self) -> None:
        """Stop listening; clients see the link go (the variables are kept)."""
        if self._server is not None:
            self._remember_values()
            server, self._server = self._server, None
            self.call(self._stop(server))

    def close(self) -> None:
        """Stop the server and its thread (the end of a test)."""
        self.stop()
        self.call(self._cancel_leftovers())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> OpcUaTestServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def _stop(self, server: Server) -> None:
        # The server's clock task writes CurrentTime once a second and
        # Server.stop() waits for its sleep to end: up to 1 s per stop. End it
        # now (the sockets and sessions close as before).
        iserver = server.iserver
        clock, iserver.time_task = iserver.time_task, None
        if clock is not None:
            iserver._time_task_stop = True
            clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clock
        await server.stop()

    async def _cancel_leftovers(self) -> None:
        """End what the stopped server left running (the timers of sessions
        and subscriptions whose clients never closed them)."""
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    def reset(self) -> None:
        """Back to a started server with no variables (what ``opcua_server``
        gives each test): the folders added are deleted, the Read counts
        cleared; a server a test stopped is started again."""
        if self._server is not None:
            self.call(self._delete_folders())
        self._variables.clear()
        self.read_requests.clear()
        self.start()

    async def _delete_folders(self) -> None:
        objects = self._server.nodes.objects
        ours = [
            child
            for child in await objects.get_children()
            if child.nodeid.NamespaceIndex == self.namespace_index
        ]
        if ours:
            await self._server.delete_nodes(ours, recursive=True)

    async def _start(self) -> None:
        server = Server(user_manager=_PasswordUsers(self.users) if self.users else None)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("BPM-OS test server")
        if self.security:
            await server.load_certificate(self.certificate)
            await server.load_private_key(self.private_key)
            server.set_security_policy([getattr(ua.SecurityPolicyType, self.security)])
        if self.users:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        self.namespace_index = await server.register_namespace(NAMESPACE)
        server.subscribe_server_callback(CallbackType.PreRead, self._count_read)
        objects = server.nodes.objects
        folders: dict[str, Any] = {}
        for variable in self._variables.values():
            await self._add(server, objects, folders, variable)
        await server.start()
        self._server = server

    def _count_read(self, event: Any, dispatcher: Any) -> None:
        if event.is_external:
            self.read_requests.append(len(event.request_params.NodesToRead))

    async def _add(
        self, server: Server, objects: Any, folders: dict, variable: _Variable
    ) -> None:
        folder = folders.get(variable.folder)
        if folder is None:
            folder = await objects.add_folder(
                ua.NodeId(variable.folder, self.namespace_index), variable.folder
            )
            folders[variable.folder] = folder
        node = await folder.add_variable(
            ua.NodeId(variable.string_id, self.namespace_index),
            variable.name,
            variable.value,
            varianttype=variable.variant_type,
        )
        await node.set_writable()
        # As a PLC's values do, each carries the time it was taken.
        variable.source_timestamp = variable.source_timestamp or datetime.now(UTC)
        await server.write_attribute_value(node.nodeid, self._data_value(variable))

    def _data_value(self, variable: _Variable) -> ua.DataValue:
        variant = ua.Variant(variable.value, variable.variant_type)
        now = datetime.now(UTC)
        return ua.DataValue(
            variant,
            StatusCode=variable.status or ua.StatusCode(ua.StatusCodes.Good),
            SourceTimestamp=variable.source_timestamp or now,
            ServerTimestamp=now,
        )

    def _remember_values(self) -> None:
        """Keep the served values, so a restart serves them again."""
        for node_id, variable in self._variables.items():
            value = self._server.read_attribute_value(ua.NodeId.from_string(node_id))
            if value.Value is not None and value.Value.Value is not None:
                variable.value = value.Value.Value

    # --- variables -----------------------------------------------------------------

    def add_variables(
        self,
        folder: str,
        values: dict[str, Any],
        *,
        variant_types: dict[str, ua.VariantType] | None = None,
    ) -> dict[str, str]:
        """Add ``values`` (name -> initial value) under ``Objects/<folder>``;
        returns name -> node id text (``ns=2;s=<folder>.<name>``)."""
        added = {}
        for name, value in values.items():
            variable = _Variable(folder, name, value, (variant_types or {}).get(name))
            node_id = f"ns={self.namespace_index};s={variable.string_id}"
            self._variables[node_id] = variable
            added[name] = node_id
            if self._server is not None:
                self.call(self._add_live(variable))
        return added

    async def _add_live(self, variable: _Variable) -> None:
        objects = self._server.nodes.objects
        folders = {}
        for child in await objects.get_children():
            name = (await child.read_browse_name()).Name
            folders[name] = child
        await self._add(self._server, objects, folders, variable)

    def set_value(
        self,
        node_id: str,
        value: Any,
        *,
        status: str | int | ua.StatusCode | None = None,
        source_timestamp: datetime | None = None,
    ) -> None:
        """Write ``value`` (with a status code such as ``"BadSensorFailure"`` or
        ``"UncertainLastUsableValue"``, and a source timestamp, default now)."""
        variable = self._variables[node_id]
        variable.value = value
        variable.status = _status(status)
        variable.source_timestamp = source_timestamp
        if self._server is not None:
            self.call(
                self._server.write_attribute_value(
                    ua.NodeId.from_string(node_id), self._data_value(variable)
                )
            )

    def set_values(self, values: dict[str, Any]) -> None:
        """Write several values (node id -> value) in one go, all good, now."""
        self.call(self._write_many(values))

    async def _write_many(self, values: dict[str, Any]) -> None:
        for node_id, value in values.items():
            variable = self._variables[node_id]
            variable.value, variable.status, variable.source_timestamp = (
                value,
                None,
                None,
            )
            await self._server.write_attribute_value(
                ua.NodeId.from_string(node_id), self._data_value(variable)
            )


@pytest.fixture
def make_opcua_server() -> Iterator:
    """``make_opcua_server(users={...})`` -> a started ``OpcUaTestServer``;
    every server made is closed at the end of the test."""
    made: list[OpcUaTestServer] = []

    def make(**options: Any) -> OpcUaTestServer:
        server = OpcUaTestServer(**options)
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture(scope="module")
def shared_opcua_server() -> Iterator[OpcUaTestServer]:
    """One server for a module's tests (an asyncua server takes seconds to
    start); ``opcua_server`` resets it for each test."""
    with OpcUaTestServer() as server:
        yield server


@pytest.fixture
def opcua_server(shared_opcua_server) -> Iterator[OpcUaTestServer]:
    """A started server with no variables yet (``add_variables`` them): the
    module's shared server, emptied and started again after the test (a test
    may ``stop()``/``start()`` it). Servers with users or security come from
    ``make_opcua_server``."""
    shared_opcua_server.reset()
    yield shared_opcua_server
    shared_opcua_server.reset()
