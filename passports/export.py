"""A passport exported as JSON: the Battery Pass data model's structure, or an
Asset Administration Shell (AAS V3.0) environment.

Both are built from the one attribute registry (``passports.attributes``) and
show only the attributes of the tiers the reader holds, exactly as
``GET …/attributes`` does. The schemas they are validated against in the tests
are kept in ``passports/schemas/`` with their sources named there.

* ``batterypass``: one object per Battery Pass v1.2 submodel
  (``generalProductInformation``, ``carbonFootprint``, ``circularity``,
  ``materialComposition``, ``performanceAndDurability``, ``labels``,
  ``supplyChainDueDiligence``), each attribute under its data-model name with
  its value in the unit of the registry (the per-stage carbon footprint as the
  data model's list of ``{lifecycleStage, carbonFootprint}``; the serial number
  as ``productIdentifier``; the manufacturer and the economic operator as the
  data model's contact entities ``{contactName, identifier}``, filled with what
  the registry holds; the Performance aspect's ``batteryTechicalProperties`` and
  ``batteryCondition``, a dynamic attribute there in its value entity
  ``{<name>Value, lastUpdate}``: ``BATTERYPASS_PATHS``); ``lastUpdate`` names
  the time of each dynamic attribute (by its dotted place in the submodel);
  attributes with no value are left out.
* ``aas``: ``{assetAdministrationShells, submodels}``: one shell for the
  battery (``globalAssetId`` ``urn:uuid:<passport>``) referencing one submodel
  per Battery Pass submodel, whose ``semanticId`` is the submodel's SAMM URN
  (``urn:samm:io.BatteryPass.<Submodel>:1.2.0#<Submodel>``). A number is a
  ``Property`` of ``xs:double`` (a count ``xs:integer``), a text ``xs:string``
  (a link ``xs:anyURI``, a time ``xs:dateTime``), a map a
  ``SubmodelElementCollection`` and a list a ``SubmodelElementList`` (the
  per-stage carbon footprint a list of ``{lifecycleStage, carbonFootprint}``
  collections, as the data model lists it). No
  element array is empty (a submodel the reader sees nothing of has none): the
  published AAS schema asks for one item at least.

The tests also read the AAS export back with the Eclipse BaSyx SDK's strict
JSON decoder (docs/passports.md, "How the exports are checked").
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from elog import audit
from passports import attributes, selectors
from passports.models import Passport

FORMAT_BATTERYPASS = "batterypass"
FORMAT_AAS = "aas"
FORMATS = (FORMAT_BATTERYPASS, FORMAT_AAS)

DATA_MODEL_VERSION = "1.2.0"

# Battery Pass submodel (our group key) -> its SAMM namespace and aspect name.
SUBMODELS: dict[str, tuple[str, str]] = {
    "generalProductInformation": (
        "io.BatteryPass.GeneralProductInformation",
        "GeneralProductInformation",
    ),
    "carbonFootprint": (
        "io.BatteryPass.CarbonFootprint",
        "CarbonFootprintForBatteries",
    ),
    "circularity": ("io.BatteryPass.Circularity", "Circularity"),
    "materialComposition": (
        "io.BatteryPass.MaterialComposition",
        "MaterialComposition",
    ),
    "performanceAndDurability": (
        "io.BatteryPass.Performance",
        "PerformanceAndDurability",
    ),
    "labels": ("io.BatteryPass.Labels", "Labeling"),
    "supplyChainDueDiligence": (
        "io.BatteryPass.SupplyChainDueDiligence",
        "SupplyChainDueDiligence",
    ),
}

# Our life-cycle stage keys -> the data model's LifecycleStage values
# (io.BatteryPass.CarbonFootprint 1.2.0).
LIFECYCLE_STAGES = {
    "raw_material_extraction": "RawMaterialExtraction",
    "main_production": "MainProduction",
    "distribution": "Distribution",
    "end_of_life_recycling": "Recycling",
}

_COUNT_CHECKS = {attributes.is_count}
_URL_CHECKS = {attributes.is_url}


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _rows(passport: Passport, tiers) -> list[dict]:
    return [
        row
        for row in selectors.passport_attributes(passport=passport, tiers=tiers)
        if _present(row["value"])
    ]


def _per_stage(value: dict) -> list[dict[str, Any]]:
    """``{stage: kg CO2e/kWh}`` as the data model's list of
    ``CarbonFootprintPerLifecycleStageEntity`` (stage order of the registry)."""
    return [
        {
            "lifecycleStage": LIFECYCLE_STAGES[stage],
            "carbonFootprint": _json(value[stage]),
        }
        for stage in attributes.CARBON_STAGES
        if value.get(stage) is not None
    ]


# Attributes whose data-model shape differs from the registry's value.
_BATTERYPASS_SHAPES = {"carbonFootprintPerLifecycleStage": _per_stage}

# The Performance aspect's two entities (1.2.0 spells the first so).
_TECHNICAL, _CONDITION = "batteryTechicalProperties", "batteryCondition"

# Where the data model puts a registry attribute inside its submodel, when not
# under the registry's own name: 1.2.0's productIdentifier; the fields of its
# ContactInformationEntity (contactName, identifier) for the manufacturer and
# the economic operator; the Performance aspect's technical properties and
# condition, a dynamic one in its value entity ({<name>Value, lastUpdate};
# 1.2.0 spells remainingEnergy's value remainingEnergyalue). The registry keeps
# its names; an attribute not named here keeps its own at the submodel's top.
BATTERYPASS_PATHS: dict[str, tuple[str, ...]] = {
    "batteryIdentifier": ("productIdentifier",),
    "manufacturerInformation": ("manufacturerInformation", "contactName"),
    "manufacturerIdentification": ("manufacturerInformation", "identifier"),
    "operatorInformation": ("operatorInformation", "contactName"),
    **{
        key: (_TECHNICAL, key)
        for key in (
            "ratedCapacity",
            "nominalVoltage",
            "minimumVoltage",
            "maximumVoltage",
            "ratedEnergy",
            "ratedMaximumPower",
            "initialSelfDischarge",
            "expectedNumberOfCycles",
            "expectedLifetime",
            "cRateLifeCycleTest",
            "lifetimeReferenceTest",
            "capacityThresholdForExhaustion",
        )
    },
    "initialRoundTripEfficiency": (_TECHNICAL, "roundtripEfficiency"),
    "energyThroughput": (_CONDITION, "energyThroughput"),
    "roundTripEfficiencyAt50PerCentCycleLife": (
        _CONDITION,
        "roundTripEfficiencyat50PerCentCycleLife",
    ),
    "stateOfCharge": (_CONDITION, "stateOfCharge", "stateOfChargeValue"),
    "remainingCapacity": (_CONDITION, "remainingCapacity", "remainingCapacityValue"),
    "remainingEnergy": (_CONDITION, "remainingEnergy", "remainingEnergyalue"),
    "numberOfFullCycles": (
        _CONDITION,
        "numberOfFullCycles",
        "numberOfFullCyclesValue",
    ),
    "capacityThroughput": (
        _CONDITION,
        "capacityThroughput",
        "capacityThroughputValue",
    ),
}

# Attributes placed in a value entity: their time goes beside the value.
_VALUE_ENTITIES = frozenset(
    key
    for key, path in BATTERYPASS_PATHS.items()
    if path[0] == _CONDITION and len(path) == 3
)


def batterypass_path(key: str) -> tuple[str, ...]:
    """Where the registry attribute ``key`` sits in its submodel's object."""
    return BATTERYPASS_PATHS.get(key, (key,))


def batterypass(passport: Passport, rows: list[dict], tiers) -> dict[str, Any]:
    """The Battery Pass data model's structure (see the module docstring)."""
    body: dict[str, Any] = {
        "dataModel": "BatteryPass",
        "dataModelVersion": DATA_MODEL_VERSION,
        "passportIdentifier": str(passport.uuid),
        "exportedAt": _json(timezone.now()),
        "tiers": [str(tier) for tier in tiers],
    }
    updates: dict[str, Any] = {}
    for group in SUBMODELS:
        body[group] = {}
    for row in rows:
        attribute = row["attribute"]
        shape = _BATTERYPASS_SHAPES.get(attribute.key, _json)
        *parents, name = path = batterypass_path(attribute.key)
        target = body[attribute.group]
        for parent in parents:
            target = target.setdefault(parent, {})
        target[name] = shape(row["value"])
        if row.get("lastUpdate") is not None:
            updates[".".join(path)] = _json(row["lastUpdate"])
            if attribute.key in _VALUE_ENTITIES:
                target["lastUpdate"] = _json(row["lastUpdate"])
    body["lastUpdate"] = updates
    return body


# --- AAS ---------------------------------------------------------------------------

_ID_SHORT_BAD = re.compile(r"[^A-Za-z0-9_]")


def id_short(name: str) -> str:
    """An AAS idShort from any name: letters, digits and underscores, starting
    with a letter (AAS V3.0 constraint AASd-002)."""
    cleaned = _ID_SHORT_BAD.sub("_", str(name)) or "value"
    if not cleaned[0].isalpha():
        cleaned = "x" + cleaned
    if len(cleaned) == 1:  # the pattern asks for two characters at least
        cleaned += "_"
    return cleaned[:128]


def _value_type(value: Any, attribute=None) -> str:
    if isinstance(value, bool):
        return "xs:boolean"
    if isinstance(value, int) or (
        attribute is not None and attribute.check in _COUNT_CHECKS
    ):
        return "xs:integer"
    if isinstance(value, float | Decimal):
        return "xs:double"
    if attribute is not None and attribute.check in _URL_CHECKS:
        return "xs:anyURI"
    if isinstance(value, datetime):
        return "xs:dateTime"
    return "xs:string"


def _lexical(value: Any, value_type: str) -> str:
    if value_type == "xs:integer":
        return str(int(value))
    if value_type == "xs:boolean":
        return "true" if value else "false"
    if isinstance(value, Decimal | float):
        return format(Decimal(str(value)).normalize(), "f")
    return str(_json(value))


def _element(name: str | None, value: Any, attribute=None) -> dict[str, Any]:
    if isinstance(value, dict):
        element: dict[str, Any] = {"modelType": "SubmodelElementCollection"}
        members = [_element(id_short(k), v) for k, v in value.items() if v is not None]
        if members:  # AAS V3.0: an element list, when given, holds one at least
            element["value"] = members
    elif isinstance(value, list | tuple):
        items = [v for v in value if v is not None]
        kind = _value_type(items[0]) if items else "xs:string"
        element = {
            "modelType": "SubmodelElementList",
            "typeValueListElement": "Property",
            "valueTypeListElement": kind,
        }
        if items:
            element["value"] = [
                {"modelType": "Property", "valueType": kind, "value": _lexical(v, kind)}
                for v in items
            ]
    else:
        kind = _value_type(value, attribute)
        element = {
            "modelType": "Property",
            "valueType": kind,
            "value": _lexical(value, kind),
        }
    if name is not None:
        element = {"idShort": name, **element}
    return element


def _per_stage_element(name: str, value: dict) -> dict[str, Any]:
    """The per-stage carbon footprint as the data model lists it: a
    ``SubmodelElementList`` of one ``{lifecycleStage, carbonFootprint}``
    collection per stage (its items without idShort, AASd-120)."""
    element: dict[str, Any] = {
        "idShort": name,
        "modelType": "SubmodelElementList",
        "typeValueListElement": "SubmodelElementCollection",
    }
    items = [
        {
            "modelType": "SubmodelElementCollection",
            "value": [_element(k, v) for k, v in entry.items()],
        }
        for entry in _per_stage(value)
    ]
    if items:
        element["value"] = items
    return element


# Attributes whose AAS element differs from the generic one of their value.
_AAS_SHAPES = {"carbonFootprintPerLifecycleStage": _per_stage_element}


def _reference(kind: str, key_type: str, value: str) -> dict[str, Any]:
    return {"type": kind, "keys": [{"type": key_type, "value": value}]}


def aas(passport: Passport, rows: list[dict]) -> dict[str, Any]:
    """An AAS V3.0 environment (see the module docstring)."""
    asset = f"urn:uuid:{passport.uuid}"
    shell_id = f"{asset}:aas"
    elements: dict[str, list] = {group: [] for group in SUBMODELS}
    for row in rows:
        attribute = row["attribute"]
        if attribute.key in _AAS_SHAPES:
            element = _AAS_SHAPES[attribute.key](attribute.key, row["value"])
        else:
            element = _element(attribute.key, row["value"], attribute)
        if row.get("lastUpdate") is not None:
            element["qualifiers"] = [
                {
                    "type": "lastUpdate",
                    "valueType": "xs:dateTime",
                    "value": _json(row["lastUpdate"]),
                }
            ]
        elements[attribute.group].append(element)
    submodels = []
    for group, (namespace, aspect) in SUBMODELS.items():
        submodel = {
            "modelType": "Submodel",
            "id": f"{asset}:submodel:{group}",
            "idShort": aspect,
            "kind": "Instance",
            "semanticId": _reference(
                "ExternalReference",
                "GlobalReference",
                f"urn:samm:{namespace}:{DATA_MODEL_VERSION}#{aspect}",
            ),
        }
        # A submodel the reader may see nothing of is left empty: the
        # published schema refuses an empty submodelElements array.
        if elements[group]:
            submodel["submodelElements"] = elements[group]
        submodels.append(submodel)
    shell = {
        "modelType": "AssetAdministrationShell",
        "id": shell_id,
        "idShort": id_short(f"BatteryPassport_{passport.serial}"),
        "assetInformation": {"assetKind": "Instance", "globalAssetId": asset},
        "submodels": [
            _reference("ModelReference", "Submodel", sm["id"]) for sm in submodels
        ],
    }
    return {"assetAdministrationShells": [shell], "submodels": submodels}


def passport_export(
    *, passport: Passport, tiers, fmt: str, actor: Any
) -> dict[str, Any]:
    """The passport in ``fmt`` (``FORMATS``) with the attributes of ``tiers``;
    audited (``passport.exported``: the format and the tiers shown)."""
    rows = _rows(passport, tiers)
    body = (
        batterypass(passport, rows, tiers)
        if fmt == FORMAT_BATTERYPASS
        else aas(passport, rows)
    )
    audit.record(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action="passport.exported",
        target=passport,
        after={
            "format": fmt,
            "tiers": [str(t) for t in tiers],
            "attributes": len(rows),
        },
    )
    return body
