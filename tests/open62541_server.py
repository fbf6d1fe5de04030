"""An open62541 OPC UA server (the PyPI package ``o6``) for the interoperability
tests, run as a process of its own by ``tests/support_open62541.py``:

    python tests/open62541_server.py      # then JSON lines on stdin

``o6`` without a licence runs in "Script Mode": importing it starts a timer
that ends the *whole process* after ten minutes. It is therefore imported
only here, in a short-lived child process, never by pytest itself.

The first line on stdin is the configuration::

    {"port": 48401, "namespace": "urn:bpmos:test",
     "users": {"plc": "secret"} | null,
     "security": {"certificate": "...", "private_key": "...",
                  "trust": ["client.der"], "application_uri": "urn:..."} | null,
     "variables": [{"node_id": "ns=2;s=Line1.Temp", "folder": "Line1",
                    "name": "Temp", "type": "Double", "value": 21.5,
                    "status": 0, "source_timestamp": "2026-...+00:00" | "none" | null}],
     "ticks": [{"node_id": "ns=2;i=1001", "every_s": 0.2}]}

then one command a line, each answered by a line starting ``O6TEST``
followed by JSON (``{"ok": true}`` or ``{"ok": false, "error": "..."}``):

    {"op": "add", "variable": {...as above...}}
    {"op": "set", "node_id": "...", "value": ..., "status": 0, "source_timestamp": null}
    {"op": "exit"}

A ``tick`` adds one to an Int32 variable every ``every_s`` seconds (a PLC
counter): values that change without the test writing them.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any

PREFIX = "O6TEST "


def answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(PREFIX + json.dumps(payload) + "\n")
    sys.stdout.flush()


def main() -> None:
    config = json.loads(sys.stdin.readline())
    import o6
    from o6.ns import ns0

    types = {
        "Double": o6.Double,
        "Int32": o6.Int32,
        "Int64": o6.Int64,
        "Boolean": o6.Boolean,
        "String": o6.String,
    }

    class Users(o6.AccessControl):
        """Only the configured users, each with its password."""

        def __init__(self, users: dict[str, str]) -> None:
            super().__init__(anonymous=False, username=True)
            self.users = users

        def activateSession(self, endpoint, remoteCertificate, session, token):
            if isinstance(token, ns0.datatypes.UserNameIdentityToken):
                password = token.password
                if isinstance(password, bytes | bytearray):
                    password = bytes(password).decode("utf-8", "replace")
                if self.users.get(token.userName) == password:
                    return None
            raise o6.StatusCodeError(o6.StatusCode.BAD_USER_ACCESS_DENIED)

    options: dict[str, Any] = {}
    security = config.get("security")
    if security:
        options.update(
            certificate=security["certificate"],
            privateKey=security["private_key"],
            trustList=security.get("trust") or None,
            # o6 has no "None for discovery only": secure only refuses even
            # GetEndpoints on an unencrypted channel.
            secureOnly=security.get("secure_only", True),
            applicationUri=security.get("application_uri"),
        )
    users = config.get("users")
    if users:
        options.update(accessControl=Users(users), allowNonePolicyPassword=True)
    server = o6.Server(port=config["port"], **options)
    namespace = server._add_namespace(config.get("namespace", "urn:bpmos:test"), 2)
    server.start()

    folders: dict[str, Any] = {}
    kinds: dict[str, Any] = {}  # node id -> its o6 type
    lock = threading.Lock()

    def data_value(spec: dict[str, Any]) -> Any:
        kind = kinds[spec["node_id"]]
        value = o6.DataValue(
            value=kind(spec["value"]),
            status=o6.StatusCode(int(spec.get("status") or 0)),
        )
        stamp = spec.get("source_timestamp")
        if stamp != "none":  # "none": a device that does not stamp its values
            stamp = datetime.fromisoformat(stamp) if stamp else datetime.now(UTC)
            # From text: o6.DateTime(datetime) goes through a float and loses
            # microseconds (.123000 became .1229984).
            value.sourceTimestamp = o6.DateTime(
                stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            )
        return value

    def add(spec: dict[str, Any]) -> None:
        folder = folders.get(spec["folder"])
        if folder is None:
            folder = server.addObject(
                spec["folder"],
                server.objectsNode,
                nodeId=f"ns={namespace};s={spec['folder']}",
                ns=namespace,
                typeDefinition=o6.NodeId(ns0.objtypes.FolderType),
            )
            folders[spec["folder"]] = folder
        kind = types[spec["type"]]
        kinds[spec["node_id"]] = kind
        server.addVariable(
            spec["name"],
            folder,
            kind(spec["value"]),
            nodeId=spec["node_id"],
            ns=namespace,
        )
        write(spec)

    def write(spec: dict[str, Any]) -> None:
        status = server.write(spec["node_id"], data_value(spec))
        if status != o6.StatusCode.GOOD:
            raise RuntimeError(f"write of {spec['node_id']} refused: {status!r}")

    values: dict[str, Any] = {}
    for spec in config.get("variables", []):
        add(spec)
        values[spec["node_id"]] = spec["value"]

    stop = threading.Event()

    def tick(node_id: str, every_s: float) -> None:
        while not stop.wait(every_s):
            with lock:
                values[node_id] = int(values[node_id]) + 1
                write({"node_id": node_id, "value": values[node_id]})

    for spec in config.get("ticks", []):
        threading.Thread(
            target=tick, args=(spec["node_id"], spec["every_s"]), daemon=True
        ).start()

    answer({"ok": True, "ready": True, "endpoint": server.endpointUrl})
    for line in sys.stdin:
        command = json.loads(line)
        try:
            with lock:
                if command["op"] == "add":
                    add(command["variable"])
                    values[command["variable"]["node_id"]] = command["variable"][
                        "value"
                    ]
                elif command["op"] == "set":
                    write(command)
                    values[command["node_id"]] = command["value"]
                elif command["op"] == "exit":
                    break
                elif command["op"] != "values":
                    raise ValueError(f"unknown op {command['op']!r}")
        except Exception as error:  # reported to the test, which fails on it
            answer({"ok": False, "error": f"{type(error).__name__}: {error}"})
        else:
            answer({"ok": True, "values": values})
    stop.set()
    server.stop()
    answer({"ok": True, "stopped": True, "values": values})


if __name__ == "__main__":
    main()
