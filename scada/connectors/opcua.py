"""The OPC UA connector: a real asyncua client (docs/scada.md, "Connecting a real
OPC UA server").

Two faces, as ``scada.connectors.base`` describes:

* the collector process keeps a session open and uses the ``async`` methods:
  ``connect()``, ``read(tags)`` (every tag, in batched Read service calls of at
  most ``max_nodes_per_read`` nodes, default 1,000, sent together),
  ``subscribe(tags, on_raw, publishing_interval_ms)`` (one subscription,
  one monitored item per tag; ``on_raw`` receives lists of raw records),
  ``unsubscribe()``, ``browse(limit)``, ``heartbeat()`` (the server's clock,
  which raises ``ConnectorError`` once the link is gone) and ``disconnect()``;
* services, views and Celery use the contract's synchronous methods,
  ``test_connection()``, ``fetch_data()`` and ``normalize()``, each a short
  session in a fresh event loop.

A raw record is a ``RawValue``: the tag's name and unit and the server's
``DataValue``. ``normalize`` makes the contract's reading of it: the source
timestamp (else the server's, else now; UTC), the value (numbers and booleans
as floats, text kept as text), the tag's unit, the quality from the status
code's class (``good``, ``uncertain``, ``bad``) and ``alarm_state`` "normal"
(the alert rules decide that when the reading is stored).

Settings (``Connector.settings``): ``security_policy`` (``None``,
``Basic256Sha256``, ``Aes128Sha256RsaOaep``, ``Aes256Sha256RsaPss``),
``security_mode`` (``Sign``, ``SignAndEncrypt``), ``certificate_path``,
``private_key_path``, ``server_certificate_path``, ``application_uri``,
``timeout_s`` (default 4), ``max_nodes_per_read`` (default 1,000),
``sampling_interval_ms`` (default 0: the monitored items sample every change
the server sees; see ``subscribe``).
Credentials: ``username`` and ``password``. Every failure is a
``ConnectorError`` whose message is for a person.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog
from asyncua import Client, Node, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, Subscription
from asyncua.crypto import security_policies

from scada.connectors.base import BaseConnector, ConnectorError, register

log = structlog.get_logger(__name__)

APPLICATION_URI = "urn:bpmos:client"
DEFAULT_TIMEOUT_S = 4.0
WATCHDOG_MIN_S = 5.0
DEFAULT_MAX_NODES_PER_READ = 1_000
# A monitored item's queue on the server: the changes of one tag kept between
# two publishes (the oldest dropped first past it).
MIN_QUEUE_SIZE = 10
MAX_QUEUE_SIZE = 1_000
MAX_TEXT = 64  # ScadaReading.value_text
# At most this many values in one on_raw call (a slow store lets a publish
# queue grow; readings_store takes batches of up to 50,000).
MAX_DELIVERY = 10_000

SECURITY_POLICIES: dict[str, type[security_policies.SecurityPolicy] | None] = {
    "None": None,
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128Sha256RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256Sha256RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
SECURITY_MODES = {
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}

_CURRENT_TIME = ua.NodeId(ua.ObjectIds.Server_ServerStatus_CurrentTime)
_OBJECTS = ua.NodeId(ua.ObjectIds.ObjectsFolder)
_HIERARCHICAL = ua.NodeId(ua.ObjectIds.HierarchicalReferences)


class TagLike(Protocol):
    """What the connector needs of a tag (``scada.models.Tag`` or any record)."""

    node_id: str
    tag_name: str
    unit: str


@dataclass(frozen=True, slots=True)
class RawValue:
    """One value as the server sent it, with the tag it belongs to."""

    tag_name: str
    unit: str
    node_id: str
    data_value: ua.DataValue


def quality_of(status: ua.StatusCode | None) -> str:
    """The status code's class (its two top bits, OPC UA Part 4 §7.39)."""
    if status is None:
        return "good"
    severity = (status.value >> 30) & 0b11
    return ("good", "uncertain", "bad", "bad")[severity]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _plain_value(value: Any) -> float | str | None:
    """Numbers and booleans as floats, text as text (at most 64 characters)."""
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, ua.LocalizedText):
        value = value.Text or ""
    elif isinstance(value, datetime):
        value = _utc(value).isoformat()
    elif isinstance(value, bytes):
        value = value.hex()
    elif not isinstance(value, str):
        value = str(value)
    return value[:MAX_TEXT]


def _status_name(status: ua.StatusCode) -> str:
    try:
        return status.name
    except Exception:  # an unknown code
        return f"0x{status.value:08X}"


def _error_text(error: BaseException) -> str:
    if isinstance(error, ua.UaStatusCodeError):
        name = ua.status_codes.get_name_and_doc(error.code)
        return f"{name[0]} ({name[1].rstrip('.')})" if name[1] else name[0]
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@register
class OpcUaConnector(BaseConnector):
    """An OPC UA server's tags, read in batches or followed by a subscription."""

    kind = "opcua"

    def __init__(self, config) -> None:
        super().__init__(config)
        self.client: Client | None = None
        self._subscription: Subscription | None = None
        self._pump: asyncio.Task | None = None
        self._nodes: dict[str, Node] = {}  # node id text -> the session's node

    # --- settings --------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self.config.endpoint

    @property
    def timeout_s(self) -> float:
        return float(self.settings.get("timeout_s") or DEFAULT_TIMEOUT_S)

    @property
    def max_nodes_per_read(self) -> int:
        return int(
            self.settings.get("max_nodes_per_read") or DEFAULT_MAX_NODES_PER_READ
        )

    @property
    def sampling_interval_ms(self) -> float:
        return float(self.settings.get("sampling_interval_ms") or 0)

    # --- the session -----------------------------------------------------------

    async def connect(self) -> None:
        """Open a session (security and user from the settings and credentials)."""
        if self.client is not None:
            return
        # asyncua's watchdog probes the server every interval and gives up on
        # the link when one probe takes longer: at its default of 1 s, decoding
        # a 10,000-item publish on a busy machine was taken for a dead server.
        client = Client(
            self.endpoint,
            timeout=self.timeout_s,
            watchdog_intervall=max(self.timeout_s, WATCHDOG_MIN_S),
        )
        client.name = client.description = "BPM-OS"
        # The URI in the client certificate's subject alternative name.
        client.application_uri = self.settings.get("application_uri") or APPLICATION_URI
        username = self.credentials.get("username")
        if username:
            client.set_user(str(username))
            client.set_password(str(self.credentials.get("password") or ""))
        try:
            await self._secure(client)
            await asyncio.wait_for(client.connect(), self.timeout_s * 2)
        except ConnectorError:
            await self._close_quietly(client)
            raise
        except TimeoutError:
            await self._close_quietly(client)
            raise ConnectorError(
                f"The OPC UA server at {self.endpoint} did not answer within "
                f"{self.timeout_s:g} s."
            ) from None
        except ua.UaStatusCodeError as error:
            await self._close_quietly(client)
            raise ConnectorError(
                f"The OPC UA server at {self.endpoint} refused the session: "
                f"{_error_text(error)}."
            ) from error
        except (OSError, ConnectionError) as error:
            await self._close_quietly(client)
            raise ConnectorError(
                f"Cannot reach the OPC UA server at {self.endpoint}: "
                f"{error.strerror or _error_text(error)}."
            ) from error
        except Exception as error:  # asyncua raises many kinds; all are a failure here
            await self._close_quietly(client)
            raise ConnectorError(
                f"Cannot open a session with the OPC UA server at {self.endpoint}: "
                f"{_error_text(error)}."
            ) from error
        self.client = client
        self._nodes = {}

    async def _secure(self, client: Client) -> None:
        name = str(self.settings.get("security_policy") or "None")
        if name not in SECURITY_POLICIES:
            raise ConnectorError(
                f"Unknown security policy {name!r}: one of "
                f"{', '.join(SECURITY_POLICIES)}."
            )
        policy = SECURITY_POLICIES[name]
        if policy is None:
            return
        mode_name = str(self.settings.get("security_mode") or "SignAndEncrypt")
        if mode_name not in SECURITY_MODES:
            raise ConnectorError(
                f"Unknown security mode {mode_name!r}: Sign or SignAndEncrypt."
            )
        paths = {}
        for key in ("certificate_path", "private_key_path", "server_certificate_path"):
            value = self.settings.get(key)
            if not value:
                continue
            if not Path(value).is_file():
                raise ConnectorError(f"{key} {value!r} is not a readable file.")
            paths[key] = str(value)
        missing = {"certificate_path", "private_key_path"} - paths.keys()
        if missing:
            raise ConnectorError(
                f"Security policy {name} needs {' and '.join(sorted(missing))}."
            )
        pinned = paths.get("server_certificate_path")
        try:
            await asyncio.wait_for(
                client.set_security(
                    policy,
                    paths["certificate_path"],
                    paths["private_key_path"],
                    server_certificate=pinned,
                    mode=SECURITY_MODES[mode_name],
                ),
                self.timeout_s * 2,
            )
        except ua.UaStatusCodeError as error:
            if pinned:
                raise
            # Without a pinned certificate the client asks for the server's
            # endpoints (and certificate) on an unencrypted channel first; a
            # server that refuses every unencrypted channel (open62541 "secure
            # only") can only be reached with its certificate pinned.
            raise ConnectorError(
                f"The OPC UA server at {self.endpoint} did not list its endpoints "
                f"on an unencrypted channel ({_error_text(error)}): pin its "
                "certificate with settings.server_certificate_path."
            ) from error

    async def disconnect(self) -> None:
        """Close the subscription and the session; never raises (the link may
        already be gone)."""
        await self.unsubscribe()
        client, self.client = self.client, None
        if client is not None:
            await self._close_quietly(client)

    async def _close_quietly(self, client: Client) -> None:
        try:
            await asyncio.wait_for(client.disconnect(), self.timeout_s)
        except Exception:  # the server is gone: only our side is left to close
            try:
                client.disconnect_socket()
            except Exception:
                log.debug("opcua_socket_close_failed", endpoint=self.endpoint)

    def _client(self) -> Client:
        if self.client is None:
            raise ConnectorError("Not connected to the OPC UA server; connect first.")
        return self.client

    async def _call(self, what: str, awaitable: Awaitable[Any]) -> Any:
        """Await a service call; a failure becomes a ``ConnectorError``."""
        try:
            return await asyncio.wait_for(awaitable, self.timeout_s)
        except ConnectorError:
            raise
        except TimeoutError:
            raise ConnectorError(
                f"The OPC UA server at {self.endpoint} did not answer {what} "
                f"within {self.timeout_s:g} s."
            ) from None
        except Exception as error:
            raise ConnectorError(
                f"{what.capitalize()} failed on the OPC UA server at "
                f"{self.endpoint}: {_error_text(error)}."
            ) from error

    # --- reading ---------------------------------------------------------------

    def _node(self, tag: TagLike) -> Node:
        node = self._nodes.get(tag.node_id)
        if node is None:
            node = self._client().get_node(parse_node_id(tag.node_id, tag.tag_name))
            self._nodes[tag.node_id] = node
        return node

    async def read(self, tags: Sequence[TagLike]) -> list[RawValue]:
        """Every tag's current value: Read service calls of at most
        ``max_nodes_per_read`` nodes each, sent together (never one per node).

        The Reads ask for the source timestamp only (asyncua's default). A
        server that honours that (open62541 does; asyncua's own server sends
        both anyway) then sends no server timestamp, which ``normalize`` falls
        back on: the values that came without a source timestamp (and not
        bad) are read again asking for both. Asking for both every time cost
        a tenth more per poll against open62541 (docs/scada.md, Benchmark)."""
        nodes = [self._node(tag) for tag in tags]
        values = await self._read_values(nodes, ua.TimestampsToReturn.Source)
        unstamped = [
            index
            for index, value in enumerate(values)
            if value.SourceTimestamp is None and quality_of(value.StatusCode) != "bad"
        ]
        if unstamped:
            again = await self._read_values(
                [nodes[index] for index in unstamped], ua.TimestampsToReturn.Both
            )
            for index, value in zip(unstamped, again, strict=True):
                values[index] = value
        return [
            RawValue(tag.tag_name, tag.unit or "", tag.node_id, value)
            for tag, value in zip(tags, values, strict=True)
        ]

    async def _read_values(
        self, nodes: list[Node], timestamps: ua.TimestampsToReturn
    ) -> list[ua.DataValue]:
        client = self._client()
        size = self.max_nodes_per_read
        chunks = [nodes[i : i + size] for i in range(0, len(nodes), size)]
        results = await self._call(
            "a read",
            asyncio.gather(
                *(
                    client.uaclient.read(_read_params(chunk, timestamps))
                    for chunk in chunks
                )
            ),
        )
        return [value for chunk in results for value in chunk]

    async def heartbeat(self) -> datetime:
        """The server's clock (ServerStatus.CurrentTime): proof the link is up.
        Raises ``ConnectorError`` once it is gone."""
        client = self._client()
        [value] = await self._call(
            "the heartbeat",
            client.uaclient.read_attributes([_CURRENT_TIME], ua.AttributeIds.Value),
        )
        if quality_of(value.StatusCode) == "bad" or value.Value is None:
            raise ConnectorError(
                f"The OPC UA server at {self.endpoint} did not give its time "
                f"({_status_name(value.StatusCode)})."
            )
        return _utc(value.Value.Value)

    # --- subscriptions -----------------------------------------------------------

    async def subscribe(
        self,
        tags: Sequence[TagLike],
        on_raw: Callable[[list[RawValue]], Any],
        publishing_interval_ms: float,
    ) -> None:
        """Follow ``tags`` with one subscription (a monitored item per tag).

        ``on_raw`` (a function or a coroutine function) receives the raw values
        of each publish as one list: first every tag's current value, then
        each change. A tag the server refuses (unknown node id) is delivered
        once, as a bad value carrying the refusal's status.

        Each monitored item asks for a sampling interval of
        ``sampling_interval_ms`` (default 0: every change the server sees) and
        a queue of the changes of one publishing interval (``queue_size``).
        A server that samples on a clock (open62541 does; asyncua's server
        reports every write whatever was asked) would otherwise report only
        the last value of each publishing interval: a station Blocked for
        half a second between two publishes would never be heard.
        """
        client = self._client()
        await self.unsubscribe()
        by_node: dict[ua.NodeId, TagLike] = {}
        for tag in tags:
            by_node[self._node(tag).nodeid] = tag
        # The iterator queue holds what on_raw has not taken yet; room for a few
        # publishes of every tag, so a slow store does not drop values.
        subscription = await self._call(
            "creating a subscription",
            client.create_subscription(
                publishing_interval_ms,
                None,
                queue_maxsize=max(10_000, 10 * len(by_node)),
                overflow=OverflowPolicy.WARN,
            ),
        )
        self._subscription = subscription
        nodes = [self._nodes[tag.node_id] for tag in by_node.values()]
        handles = await self._call(
            "creating monitored items",
            subscription.subscribe_data_change(
                nodes,
                sampling_interval=self.sampling_interval_ms,
                queuesize=queue_size(publishing_interval_ms, self.sampling_interval_ms),
            )
            if nodes
            else asyncio.sleep(0, []),
        )
        refused = [
            RawValue(
                tag.tag_name,
                tag.unit or "",
                tag.node_id,
                ua.DataValue(StatusCode=handle, ServerTimestamp=datetime.now(UTC)),
            )
            for tag, handle in zip(by_node.values(), handles, strict=True)
            if isinstance(handle, ua.StatusCode)
        ]
        if refused:
            log.warning(
                "opcua_monitored_items_refused",
                endpoint=self.endpoint,
                tags=[raw.tag_name for raw in refused][:20],
            )
            await self._deliver(on_raw, refused)
        self._pump = asyncio.create_task(
            self._pump_changes(subscription, by_node, on_raw),
            name=f"opcua-subscription-{self.config.pk}",
        )

    async def _pump_changes(
        self,
        subscription: Subscription,
        by_node: dict[ua.NodeId, TagLike],
        on_raw: Callable[[list[RawValue]], Any],
    ) -> None:
        # asyncua puts a publish's notifications on the queue in one go, so what
        # is queued when one arrives is the rest of that publish (and maybe
        # more): delivered together. (asyncua is pinned; the queue is its
        # iterator's own.)
        queue = subscription._event_queue
        async for event in subscription:
            batch = [event]
            while queue is not None and not queue.empty() and len(batch) < MAX_DELIVERY:
                more = queue.get_nowait()
                if more is None:  # the subscription was deleted
                    queue.put_nowait(None)  # ends the loop after this batch
                    break
                batch.append(more)
            raws = [
                raw
                for item in batch
                if (raw := self._raw_of(item, by_node)) is not None
            ]
            if raws:
                try:
                    await self._deliver(on_raw, raws)
                except Exception:
                    log.exception("opcua_on_raw_failed", endpoint=self.endpoint)

    @staticmethod
    def _raw_of(event: Any, by_node: dict[ua.NodeId, TagLike]) -> RawValue | None:
        if not isinstance(event, DataChangeEvent):
            return None
        tag = by_node.get(event.node.nodeid)
        if tag is None:
            return None
        return RawValue(
            tag.tag_name, tag.unit or "", tag.node_id, event.data.monitored_item.Value
        )

    @staticmethod
    async def _deliver(on_raw: Callable, raws: list[RawValue]) -> None:
        result = on_raw(raws)
        if inspect.isawaitable(result):
            await result

    async def unsubscribe(self) -> None:
        """Delete the subscription (if any) and stop delivering its values."""
        subscription, self._subscription = self._subscription, None
        pump, self._pump = self._pump, None
        if subscription is not None:
            try:
                await asyncio.wait_for(subscription.delete(), self.timeout_s)
            except Exception:  # the link is gone: the server drops it by itself
                log.debug("opcua_unsubscribe_failed", endpoint=self.endpoint)
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump

    # --- browsing ------------------------------------------------------------------

    async def browse(self, limit: int = 5000) -> list[dict[str, str]]:
        """The server's variables under Objects (at most ``limit``), each
        ``{"node_id", "browse_path", "data_type"}``, breadth first, one Browse
        call per level (in chunks). The standard's own nodes (namespace 0,
        the Server object's diagnostics) are left out: they are not the
        plant's."""
        client = self._client()
        found: list[tuple[ua.NodeId, str]] = []
        seen: set[ua.NodeId] = {_OBJECTS}
        level: list[tuple[ua.NodeId, str]] = [(_OBJECTS, "Objects")]
        while level and len(found) < limit:
            next_level: list[tuple[ua.NodeId, str]] = []
            for start in range(0, len(level), self.max_nodes_per_read):
                chunk = level[start : start + self.max_nodes_per_read]
                results = await self._browse_chunk(client, [n for n, _ in chunk])
                for (_, path), references in zip(chunk, results, strict=True):
                    for ref in references:
                        node_id = ua.NodeId(
                            ref.NodeId.Identifier, ref.NodeId.NamespaceIndex
                        )
                        if node_id.NamespaceIndex == 0 or node_id in seen:
                            continue
                        seen.add(node_id)
                        child_path = f"{path}/{ref.BrowseName.Name}"
                        if ref.NodeClass == ua.NodeClass.Variable:
                            found.append((node_id, child_path))
                        next_level.append((node_id, child_path))
            level = next_level
        found = found[:limit]
        types = await self._data_type_names(client, [node for node, _ in found])
        return [
            {"node_id": node.to_string(), "browse_path": path, "data_type": type_name}
            for (node, path), type_name in zip(found, types, strict=True)
        ]

    async def _browse_chunk(
        self, client: Client, node_ids: list[ua.NodeId]
    ) -> list[list[ua.ReferenceDescription]]:
        params = ua.BrowseParameters()
        params.View = ua.ViewDescription()
        params.RequestedMaxReferencesPerNode = 0
        for node_id in node_ids:
            description = ua.BrowseDescription()
            description.NodeId = node_id
            description.BrowseDirection = ua.BrowseDirection.Forward
            description.ReferenceTypeId = _HIERARCHICAL
            description.IncludeSubtypes = True
            description.NodeClassMask = int(ua.NodeClass.Object) | int(
                ua.NodeClass.Variable
            )
            description.ResultMask = int(ua.BrowseResultMask.All)
            params.NodesToBrowse.append(description)
        results = await self._call("a browse", client.uaclient.browse(params))
        out = []
        for result in results:
            references = list(result.References or [])
            point = result.ContinuationPoint
            while point:
                more = ua.BrowseNextParameters()
                more.ContinuationPoints = [point]
                [next_result] = await self._call(
                    "a browse", client.uaclient.browse_next(more)
                )
                references.extend(next_result.References or [])
                point = next_result.ContinuationPoint
            out.append(references)
        return out

    async def _data_type_names(
        self, client: Client, nodes: list[ua.NodeId]
    ) -> list[str]:
        type_ids: list[ua.NodeId | None] = []
        for start in range(0, len(nodes), self.max_nodes_per_read):
            chunk = nodes[start : start + self.max_nodes_per_read]
            values = await self._call(
                "reading data types",
                client.uaclient.read_attributes(chunk, ua.AttributeIds.DataType),
            )
            type_ids.extend(
                value.Value.Value if value.Value is not None else None
                for value in values
            )
        names: dict[ua.NodeId, str] = {}
        custom = sorted(
            {t for t in type_ids if t is not None and t.NamespaceIndex != 0},
            key=lambda t: t.to_string(),
        )
        for type_id in {t for t in type_ids if t is not None and t.NamespaceIndex == 0}:
            names[type_id] = ua.ObjectIdNames.get(
                type_id.Identifier, type_id.to_string()
            )
        if custom:
            values = await self._call(
                "reading data types",
                client.uaclient.read_attributes(custom, ua.AttributeIds.BrowseName),
            )
            for type_id, value in zip(custom, values, strict=True):
                browse_name = value.Value.Value if value.Value is not None else None
                names[type_id] = (
                    getattr(browse_name, "Name", None) or type_id.to_string()
                )
        return [names.get(t, "") if t is not None else "" for t in type_ids]

    # --- the contract (synchronous) -----------------------------------------------

    def test_connection(self) -> tuple[bool, str | None]:
        """Open a session, read the server's clock, close it."""

        async def check() -> None:
            try:
                await self.connect()
                await self.heartbeat()
            finally:
                await self.disconnect()

        try:
            run_async(check)
        except ConnectorError as error:
            return False, str(error)
        return True, None

    def fetch_data(self, **kwargs: Any) -> list[RawValue]:
        """Every enabled tag's value (``tags=`` to read others), in one session."""
        tags = kwargs.get("tags")
        if tags is None:
            tags = list(self.config.tags.filter(enabled=True).order_by("id"))

        async def fetch() -> list[RawValue]:
            try:
                await self.connect()
                return await self.read(tags) if tags else []
            finally:
                await self.disconnect()

        return run_async(fetch)

    def browse_nodes(self, limit: int = 5000) -> list[dict[str, str]]:
        """``browse`` in a short session of its own."""

        async def walk() -> list[dict[str, str]]:
            try:
                await self.connect()
                return await self.browse(limit)
            finally:
                await self.disconnect()

        return run_async(walk)

    def normalize(self, raw: Iterable[RawValue]) -> list[dict[str, Any]]:
        """The contract's readings (see the module docstring)."""
        now = datetime.now(UTC)
        readings = []
        for item in raw:
            data_value = item.data_value
            quality = quality_of(data_value.StatusCode)
            variant = data_value.Value
            raw_value = variant.Value if variant is not None else None
            value = _plain_value(raw_value)
            if value is None and raw_value is not None and quality == "good":
                quality = "bad"  # NaN or infinity: not a measurement
            readings.append(
                {
                    "timestamp": _utc(data_value.SourceTimestamp)
                    or _utc(data_value.ServerTimestamp)
                    or now,
                    "tag_name": item.tag_name,
                    "value": value,
                    "unit": item.unit,
                    "quality": quality,
                    "alarm_state": "normal",
                }
            )
        return readings


def queue_size(publishing_interval_ms: float, sampling_interval_ms: float) -> int:
    """The changes of one tag a monitored item keeps between two publishes:
    one publishing interval's samples (counting 10 ms a sample when the
    server samples every change), from 10 to 1,000."""
    per_publish = math.ceil(publishing_interval_ms / max(sampling_interval_ms, 10.0))
    return max(MIN_QUEUE_SIZE, min(MAX_QUEUE_SIZE, per_publish))


def _read_params(
    nodes: Sequence[Node], timestamps: ua.TimestampsToReturn
) -> ua.ReadParameters:
    """A Read of the nodes' values with the timestamps asked for."""
    params = ua.ReadParameters()
    params.TimestampsToReturn = timestamps
    params.NodesToRead = [
        ua.ReadValueId(NodeId=node.nodeid, AttributeId=ua.AttributeIds.Value)
        for node in nodes
    ]
    return params


def parse_node_id(text: str, tag_name: str = "") -> ua.NodeId:
    """``ns=2;s=Line1.Temp`` as a NodeId; ``ConnectorError`` if it is not one."""
    try:
        return ua.NodeId.from_string(text)
    except Exception:
        who = f"Tag {tag_name}: " if tag_name else ""
        raise ConnectorError(
            f"{who}{text!r} is not an OPC UA node id "
            "(e.g. ns=2;s=Line1.Temp or ns=2;i=1001)."
        ) from None


def run_async(function: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``function()`` to completion in a fresh event loop (in a thread of
    its own when this thread already runs a loop, e.g. under daphne)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(function())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, function()).result()
