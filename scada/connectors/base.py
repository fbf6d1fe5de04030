"""The connectors contract's ``BaseConnector`` (docs/contracts/
connectors-scada-cmms-compliance.md §1).

Each kind (OPC UA, CMMS, LIMS) is one subclass built from a ``Connector``
record. The methods are the contract's, with its return shapes:

* ``test_connection()`` -> ``(ok, error_message)``
* ``fetch_data(**kwargs)`` -> a list of raw records
* ``normalize(raw)`` -> the normalized list (for SCADA: dicts with the contract's
  ``timestamp``, ``tag_name``, ``value``, ``unit``, ``quality``, ``alarm_state``)
* ``push_data(payload, **kwargs)`` -> ``(ok, error_message)`` where it applies

They are synchronous for the services, views and Celery tasks; a connector
whose protocol is asynchronous (asyncua) also offers ``async`` twins for the
collector process, which keeps its sessions open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from scada.models import Connector


class ConnectorError(Exception):
    """A field system could not be reached or answered nonsense; the message
    is for a person (it is shown in ``/api/scada/test`` and the admin)."""


class BaseConnector:
    kind: ClassVar[str]

    def __init__(self, config: Connector) -> None:
        self.config = config

    @property
    def settings(self) -> dict[str, Any]:
        return self.config.settings or {}

    @property
    def credentials(self) -> dict[str, Any]:
        return self.config.credentials or {}

    def test_connection(self) -> tuple[bool, str | None]:
        raise NotImplementedError

    def fetch_data(self, **kwargs: Any) -> list[Any]:
        raise NotImplementedError

    def normalize(self, raw: list[Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def push_data(self, payload: Any, **kwargs: Any) -> tuple[bool, str | None]:
        return False, f"A {self.kind} connector does not push data."


_REGISTRY: dict[str, type[BaseConnector]] = {}


def register(cls: type[BaseConnector]) -> type[BaseConnector]:
    """Class decorator: the class that serves ``cls.kind``."""
    _REGISTRY[cls.kind] = cls
    return cls


def connector_for(config: Connector) -> BaseConnector:
    """The connector object for a ``Connector`` record."""
    # The kinds' modules register themselves on import.
    from scada.connectors import cmms, lims, opcua  # noqa: F401

    try:
        cls = _REGISTRY[config.kind]
    except KeyError:
        raise ConnectorError(f"No connector serves the kind {config.kind!r}.") from None
    return cls(config)
