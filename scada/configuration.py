"""Configuring connectors and tags: every write of the connectors and tags API
(and the rules the admin's forms check with the same functions).

A connector's rules: its name is unique; its endpoint fits its kind
(``opc.tcp://host[:port][/path]`` for OPC UA, ``http(s)://host...`` for a REST
CMMS or LIMS); its kind never changes once created (its tags and readings
belong to that kind); only OPC UA subscribes; an OPC UA connector's settings
are the ones the connector reads (``OPCUA_SETTINGS``), checked for type and
range, and its credentials are ``username`` and ``password``. Credentials are
never returned nor written to the audit log (``has_credentials`` and
"(changed)" stand for them).

A tag's rules: it belongs to an OPC UA connector; its node id parses
(``ns=2;s=Line1.Temp``); its name is plant-wide unique, 1-64 letters, digits
or ``_ . : / -`` (as lines' tags); one tag per connector node; the kinds that
feed lines (state, good count, reject count, cycle time) need a machine.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from bpmos.errors import InvalidInput, NotFound
from elog import audit
from lines import services as line_services
from lines.models import MachineState
from scada.connectors.base import ConnectorError
from scada.connectors.opcua import SECURITY_MODES, SECURITY_POLICIES, parse_node_id
from scada.models import Connector, ConnectorKind, ConnectorMode, Tag, TagKind

# A tag's name is the tag of the readings it feeds: the readings' own rule.
TAG_NAME = line_services.TAG_RE
MACHINE_KINDS = frozenset(
    {TagKind.STATE, TagKind.GOOD_COUNT, TagKind.REJECT_COUNT, TagKind.CYCLE_TIME}
)
OPCUA_CREDENTIALS = frozenset({"username", "password"})

CONNECTOR_FIELDS = (
    "name",
    "kind",
    "endpoint",
    "enabled",
    "mode",
    "poll_interval_s",
    "settings",
)
TAG_FIELDS = ("connector", "node_id", "tag_name", "unit", "machine", "kind", "area")


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid input. {field}: {message}",
        code="validation_error",
        details={field: [message]},
    )


# --- checks (the API's services and the admin's forms) ------------------------


def endpoint_problem(kind: str, endpoint: str) -> str | None:
    """Why ``endpoint`` does not fit a connector of ``kind``, or None."""
    schemes = ("opc.tcp",) if kind == ConnectorKind.OPCUA else ("http", "https")
    example = (
        "opc.tcp://plc-1.plant.local:4840/path"
        if kind == ConnectorKind.OPCUA
        else "https://cmms.plant.local/api"
    )
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"Not a valid URL (e.g. {example})."
    if parts.scheme not in schemes or not parts.hostname:
        return f"A {' or '.join(s + '://' for s in schemes)} URL (e.g. {example})."
    if any(ch.isspace() for ch in endpoint):
        return "No spaces in a URL."
    return None


def _number(
    settings: dict, key: str, *, low: float, high: float, whole: bool = False
) -> None:
    if key not in settings:
        return
    value = settings[key]
    kinds = (int,) if whole else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not (low <= value <= high)
    ):
        what = "a whole number" if whole else "a number"
        raise _invalid(
            "settings", f"{key} must be {what} from {_plain(low)} to {_plain(high)}."
        )


def _plain(number: float) -> str:
    """86400000 as "86,400,000" (not "8.64e+07"), 0.1 as "0.1"."""
    return f"{int(number):,}" if number == int(number) else f"{number:g}"


OPCUA_SETTINGS = frozenset(
    {
        "security_policy",
        "security_mode",
        "certificate_path",
        "private_key_path",
        "server_certificate_path",
        "application_uri",
        "timeout_s",
        "max_nodes_per_read",
        "sampling_interval_ms",
        "state_codes",
    }
)
_STATES = frozenset(MachineState.values)


def settings_check(kind: str, settings: Any) -> None:
    """Raise a 400 naming the first problem of a connector's settings."""
    if not isinstance(settings, dict):
        raise _invalid("settings", "Must be an object.")
    if kind != ConnectorKind.OPCUA:
        return  # the CMMS and LIMS connectors check their own options
    unknown = sorted(settings.keys() - OPCUA_SETTINGS)
    if unknown:
        raise _invalid(
            "settings",
            f"Unknown option {unknown[0]!r}; OPC UA options: "
            f"{', '.join(sorted(OPCUA_SETTINGS))}.",
        )
    policy = settings.get("security_policy", "None")
    if policy not in SECURITY_POLICIES:
        raise _invalid(
            "settings", f"security_policy is one of {', '.join(SECURITY_POLICIES)}."
        )
    if settings.get("security_mode", "SignAndEncrypt") not in SECURITY_MODES:
        raise _invalid("settings", "security_mode is Sign or SignAndEncrypt.")
    for key in (
        "certificate_path",
        "private_key_path",
        "server_certificate_path",
        "application_uri",
    ):
        value = settings.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 500):
            raise _invalid("settings", f"{key} must be text (a path or a URI).")
    if policy != "None":
        missing = [
            key
            for key in ("certificate_path", "private_key_path")
            if not settings.get(key)
        ]
        if missing:
            raise _invalid(
                "settings",
                f"Security policy {policy} needs {' and '.join(missing)}.",
            )
    _number(settings, "timeout_s", low=0.1, high=120)
    _number(settings, "max_nodes_per_read", low=1, high=10_000, whole=True)
    _number(settings, "sampling_interval_ms", low=0, high=86_400_000)
    codes = settings.get("state_codes")
    if codes is not None:
        if not isinstance(codes, dict) or not codes:
            raise _invalid("settings", "state_codes maps codes to machine states.")
        for code, state in codes.items():
            if not code.lstrip("-").isdigit() or state not in _STATES:
                raise _invalid(
                    "settings",
                    f"state_codes: {code!r} -> {state!r}: a whole-number code "
                    f"and one of {', '.join(sorted(_STATES))}.",
                )


def credentials_check(kind: str, credentials: Any) -> None:
    """Raise a 400 unless ``credentials`` is an object of texts (for OPC UA:
    ``username`` and ``password``)."""
    if not isinstance(credentials, dict) or not all(
        isinstance(v, str) and len(v) <= 1000 for v in credentials.values()
    ):
        raise _invalid("credentials", "Must be an object of texts.")
    if kind == ConnectorKind.OPCUA:
        unknown = sorted(credentials.keys() - OPCUA_CREDENTIALS)
        if unknown:
            raise _invalid(
                "credentials",
                f"Unknown key {unknown[0]!r}; OPC UA takes username and password.",
            )
        if credentials.get("password") and not credentials.get("username"):
            raise _invalid("credentials", "A password needs a username.")


def connector_check(values: dict, *, instance: Connector | None = None) -> None:
    """Every rule of one connector's configuration (``values``: the fields
    after the change); raises a 400 naming the first that fails."""
    kind = values["kind"]
    if instance is not None and kind != instance.kind:
        raise _invalid("kind", "A connector's kind cannot change; make a new one.")
    problem = endpoint_problem(kind, values["endpoint"])
    if problem:
        raise _invalid("endpoint", problem)
    if values["mode"] == ConnectorMode.SUBSCRIBE and kind != ConnectorKind.OPCUA:
        raise _invalid("mode", "Only OPC UA connectors subscribe.")
    settings_check(kind, values.get("settings", {}))
    if "credentials" in values:
        credentials_check(kind, values["credentials"])
    others = Connector.objects.filter(name__iexact=values["name"])
    if instance is not None:
        others = others.exclude(pk=instance.pk)
    if others.exists():
        raise _invalid("name", "A connector with this name already exists.")


def tag_check(values: dict, *, instance: Tag | None = None) -> None:
    """Every rule of one tag (``values``: the fields after the change)."""
    connector: Connector = values["connector"]
    if connector.kind != ConnectorKind.OPCUA:
        raise _invalid("connector", "Only OPC UA connectors have tags.")
    if not TAG_NAME.match(values["tag_name"]):
        raise _invalid(
            "tag_name", "1-64 letters, digits or _ . : / - (e.g. line1.weld.temp)."
        )
    try:
        parse_node_id(values["node_id"])
    except ConnectorError as error:
        raise _invalid("node_id", str(error)) from None
    if values["kind"] in MACHINE_KINDS and values.get("machine") is None:
        raise _invalid(
            "machine",
            f"A {TagKind(values['kind']).label.lower()} tag feeds a machine: name it.",
        )
    tags = Tag.objects.exclude(pk=instance.pk) if instance else Tag.objects.all()
    if tags.filter(tag_name=values["tag_name"]).exists():
        raise _invalid("tag_name", "A tag with this name already exists.")
    if (
        connector.pk is not None
        and tags.filter(connector=connector, node_id=values["node_id"]).exists()
    ):
        raise _invalid("node_id", "This connector already has a tag for this node.")


# --- snapshots for the audit log ----------------------------------------------


def connector_snapshot(connector: Connector) -> dict:
    """The audited view of a connector: never its credentials."""
    data = {name: getattr(connector, name) for name in CONNECTOR_FIELDS}
    data["has_credentials"] = bool(connector.credentials)
    return data


def tag_snapshot(tag: Tag) -> dict:
    return {
        "connector": tag.connector_id,
        "node_id": tag.node_id,
        "tag_name": tag.tag_name,
        "unit": tag.unit,
        "machine": tag.machine_id,
        "kind": tag.kind,
        "area": tag.area,
        "enabled": tag.enabled,
    }


def _changes(before: dict, after: dict) -> tuple[dict, dict]:
    keys = [key for key in after if before.get(key) != after[key]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


# --- connectors ---------------------------------------------------------------


def _connector_locked(connector_id: int) -> Connector:
    connector = Connector.objects.select_for_update().filter(pk=connector_id).first()
    if connector is None:
        raise NotFound(f"Connector {connector_id} does not exist.")
    return connector


@transaction.atomic
def connector_create(*, actor, **values: Any) -> Connector:
    """Configure a connector (fields as ``Connector``'s; ``credentials`` kept
    secret). 400 when a rule fails; nothing is created then."""
    values.setdefault("mode", ConnectorMode.POLL)
    values.setdefault("settings", {})
    values.setdefault("credentials", {})
    connector_check(values)
    connector = Connector(**values)
    try:
        with transaction.atomic():
            connector.save()
    except IntegrityError:  # a concurrent create took the name
        raise _invalid("name", "A connector with this name already exists.") from None
    audit.record(
        actor=actor,
        action="scada.connector_created",
        target=connector,
        after=connector_snapshot(connector),
    )
    return connector


@transaction.atomic
def connector_update(*, connector_id: int, actor, **changes: Any) -> Connector:
    """Change a connector's configuration (only the fields given). The
    collector picks the change up through ``updated_at``."""
    connector = _connector_locked(connector_id)
    before = connector_snapshot(connector)
    values = {name: getattr(connector, name) for name in CONNECTOR_FIELDS}
    values.update(changes)
    connector_check(values, instance=connector)
    credentials_changed = (
        "credentials" in changes and changes["credentials"] != connector.credentials
    )
    for name, value in changes.items():
        setattr(connector, name, value)
    old, new = _changes(before, connector_snapshot(connector))
    if credentials_changed:
        new["credentials"] = "(changed)"
    if not new:
        return connector  # nothing changed: no save, no audit
    try:
        with transaction.atomic():
            connector.save()
    except IntegrityError:
        raise _invalid("name", "A connector with this name already exists.") from None
    audit.record(
        actor=actor,
        action="scada.connector_changed",
        target=connector,
        before=old,
        after=new,
    )
    return connector


@transaction.atomic
def connector_delete(*, connector_id: int, actor) -> None:
    """Remove a connector and its tags; its readings and alarms stay (their
    connector becomes empty)."""
    connector = _connector_locked(connector_id)
    snapshot = connector_snapshot(connector)
    snapshot["tags"] = list(connector.tags.values_list("tag_name", flat=True))
    connector.delete()
    audit.record(
        actor=actor,
        action="scada.connector_deleted",
        target_type="scada.connector",
        target_id=str(connector_id),
        before=snapshot,
    )


# --- tags ---------------------------------------------------------------------


def _tag_locked(tag_id: int) -> Tag:
    tag = Tag.objects.select_for_update().filter(pk=tag_id).first()
    if tag is None:
        raise NotFound(f"Tag {tag_id} does not exist.")
    return tag


def _save_tag(tag: Tag) -> None:
    try:
        with transaction.atomic():
            tag.save()
    except IntegrityError:  # a concurrent write took the name or the node
        raise _invalid(
            "tag_name", "A tag with this name or node already exists."
        ) from None


@transaction.atomic
def tag_create(*, actor, **values: Any) -> Tag:
    """Map a connector's node to a plant-wide tag name (and maybe a machine)."""
    values.setdefault("kind", TagKind.ANALOG)
    values.setdefault("machine", None)
    tag_check(values)
    tag = Tag(**values)
    _save_tag(tag)
    audit.record(
        actor=actor, action="scada.tag_created", target=tag, after=tag_snapshot(tag)
    )
    return tag


@transaction.atomic
def tag_update(*, tag_id: int, actor, **changes: Any) -> Tag:
    """Change a tag (only the fields given)."""
    tag = _tag_locked(tag_id)
    before = tag_snapshot(tag)
    values = {name: getattr(tag, name) for name in TAG_FIELDS}
    values.update(changes)
    tag_check(values, instance=tag)
    for name, value in changes.items():
        setattr(tag, name, value)
    old, new = _changes(before, tag_snapshot(tag))
    if not new:
        return tag
    _save_tag(tag)
    audit.record(
        actor=actor, action="scada.tag_changed", target=tag, before=old, after=new
    )
    return tag


@transaction.atomic
def tag_delete(*, tag_id: int, actor) -> None:
    """Remove a tag; its readings stay under its name."""
    tag = _tag_locked(tag_id)
    snapshot = tag_snapshot(tag)
    tag.delete()
    audit.record(
        actor=actor,
        action="scada.tag_deleted",
        target_type="scada.tag",
        target_id=str(tag_id),
        before=snapshot,
    )
