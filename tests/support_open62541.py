"""A second OPC UA stack for the interoperability tests: an open62541 server
(PyPI ``o6``) in a child process (``tests/open62541_server.py``), driven over
its stdin like ``tests/support_opcua.py``'s asyncua server is driven in a
thread.

    server = Open62541Server(users={"plc": "secret"})
    ids = server.add_variables("Line1", {"Temp": 21.5, "Count": 3},
                               types={"Count": "Int32"})
    server.add_variable("Line1", "Speed", 3.0, node_id="ns=2;i=1001")
    server.start()
    server.set_value(ids["Temp"], 99.0, status="BadSensorFailure")
    server.stop(); server.start()   # a new process: same port, nodes, last values

``o6`` without a licence ends the process that imported it after ten
minutes, so pytest never imports it: each server is a process of its own
(one per test, started in a fraction of a second). ``available()`` says
whether ``o6`` is installed (the tests are skipped without it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua

from tests.support import WAIT_SECONDS
from tests.support_opcua import free_port

SCRIPT = Path(__file__).with_name("open62541_server.py")
PREFIX = "O6TEST "

# Python values to the OPC UA type the server gives the variable.
_TYPES = {bool: "Boolean", int: "Int32", float: "Double", str: "String"}


def available() -> bool:
    return importlib.util.find_spec("o6") is not None


def status_value(status: str | int | None) -> int:
    """``"BadSensorFailure"`` (the spec's name) or a number, as the 32-bit code."""
    if status is None:
        return 0
    if isinstance(status, str):
        return getattr(ua.StatusCodes, status)
    return int(status)


class Open62541Server:
    """One open62541 server process (see the module docstring)."""

    def __init__(
        self,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        security: dict[str, Any] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}"
        self.users = users
        self.security = security
        self._variables: dict[str, dict[str, Any]] = {}  # by node id text
        self._ticks: list[dict[str, Any]] = []
        self._process: subprocess.Popen | None = None
        self._answers: queue.Queue = queue.Queue()
        self.output: list[str] = []  # what the server printed besides answers

    # --- lifecycle -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self) -> None:
        """Start a server process (again: the same port, nodes and last values)."""
        if self._process is not None:
            return
        self._answers = queue.Queue()
        self._process = subprocess.Popen(
            [sys.executable, str(SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(
            target=self._read_output,
            args=(self._process, self._answers),
            name="open62541-output",
            daemon=True,
        ).start()
        config = {
            "port": self.port,
            "users": self.users,
            "security": self.security,
            "variables": list(self._variables.values()),
            "ticks": self._ticks,
        }
        self._send(config, wait=False)
        ready = self._answer()
        if not ready.get("ready"):
            self._kill()
            raise RuntimeError(f"the open62541 server did not start: {ready}")

    def stop(self) -> None:
        """End the server process: clients see the link go. The values it
        served (the ticking counters' too) are served again by ``start()``."""
        if self._process is None:
            return
        try:
            last = self._command({"op": "exit"})
            self._remember(last.get("values") or {})
            self._process.wait(timeout=WAIT_SECONDS)
        finally:
            self._kill()

    def kill(self) -> None:
        """End the server process at once (SIGKILL: no goodbye to clients, as
        a power cut). The values it served are asked for first, so
        ``start()`` serves them again (a PLC keeps its counters)."""
        if self._process is not None:
            self._remember(self._command({"op": "values"}).get("values") or {})
        self._kill()

    def close(self) -> None:
        if self._process is not None:
            with contextlib.suppress(Exception):
                self.stop()
        self._kill()

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=WAIT_SECONDS)

    def __enter__(self) -> Open62541Server:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- talking to the process ---------------------------------------------------

    def _read_output(self, process: subprocess.Popen, answers: queue.Queue) -> None:
        for line in process.stdout:
            if line.startswith(PREFIX):
                answers.put(json.loads(line[len(PREFIX) :]))
            else:
                self.output.append(line.rstrip("\n"))
        answers.put({"ok": False, "error": f"exited ({process.wait()})"})

    def _send(self, payload: dict[str, Any], *, wait: bool = True) -> dict | None:
        self._process.stdin.write(json.dumps(payload) + "\n")
        self._process.stdin.flush()
        return self._answer() if wait else None

    def _answer(self) -> dict[str, Any]:
        try:
            return self._answers.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            raise TimeoutError("the open62541 server did not answer") from None

    def _command(self, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self._send(payload)
        if not answer.get("ok"):
            raise RuntimeError(f"open62541 server: {answer.get('error')}")
        return answer

    def _remember(self, values: dict[str, Any]) -> None:
        for node_id, value in values.items():
            if node_id in self._variables:
                self._variables[node_id]["value"] = value

    # --- variables ---------------------------------------------------------------

    def add_variable(
        self,
        folder: str,
        name: str,
        value: Any,
        *,
        node_id: str | None = None,
        type: str | None = None,
        tick_s: float | None = None,
    ) -> str:
        """Add ``Objects/<folder>/<name>`` (node id ``ns=2;s=<folder>.<name>``
        unless given, e.g. ``ns=2;i=1001``); ``tick_s``: an Int32 counter the
        server itself raises by one every ``tick_s`` seconds. Returns the
        node id."""
        node_id = node_id or f"ns=2;s={folder}.{name}"
        spec = {
            "node_id": node_id,
            "folder": folder,
            "name": name,
            "type": type or _TYPES[builtin_type(value)],
            "value": value,
            "status": 0,
            "source_timestamp": None,
        }
        self._variables[node_id] = spec
        if tick_s is not None:
            self._ticks.append({"node_id": node_id, "every_s": tick_s})
            if self._process is not None:
                raise RuntimeError("a ticking variable is added before start()")
        if self._process is not None:
            self._command({"op": "add", "variable": spec})
        return node_id

    def add_variables(
        self, folder: str, values: dict[str, Any], *, types: dict | None = None
    ) -> dict[str, str]:
        """``add_variable`` for each of ``values``; returns name -> node id."""
        return {
            name: self.add_variable(folder, name, value, type=(types or {}).get(name))
            for name, value in values.items()
        }

    def set_value(
        self,
        node_id: str,
        value: Any,
        *,
        status: str | int | None = None,
        source_timestamp: datetime | bool | None = None,
    ) -> None:
        """Write ``value`` with a status (``"UncertainLastUsableValue"``...) and a
        source timestamp (default now; ``False``: none, as a device that does
        not stamp its values), as a PLC would."""
        spec = self._variables[node_id]
        if source_timestamp is False:
            stamp = "none"
        else:
            stamp = source_timestamp.isoformat() if source_timestamp else None
        spec.update(value=value, status=status_value(status), source_timestamp=stamp)
        if self._process is not None:
            self._command({"op": "set", **spec})

    def served(self, node_id: str) -> Any:
        """The value the server serves now (a ticking counter's latest)."""
        answer = self._command({"op": "values"})
        return answer["values"][node_id]


def builtin_type(value: Any) -> type:
    return bool if isinstance(value, bool) else type(value)


@pytest.fixture
def open62541_server() -> Iterator:
    """``open62541_server(users=..., security=...)`` -> a new, not yet started
    ``Open62541Server`` (add variables, then ``start()``); all closed at the
    end of the test. Skipped when ``o6`` is not installed."""
    if not available():
        pytest.skip("o6 (open62541) is not installed")
    assert "o6" not in sys.modules, "o6 ends its importer after 10 min: never import it"
    made: list[Open62541Server] = []

    def make(**options: Any) -> Open62541Server:
        server = Open62541Server(**options)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()
