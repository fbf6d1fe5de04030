"""This app's server-rendered pages (docs/pages.md; bpmos/pagekit.py).

* The dispatch board (``/board/dispatch/``): the dispatch contract's live list,
  rendered here and then followed over the contract's own SSE stream with a
  single-use ticket (``bpmos/static/bpmos/board-dispatch.js``). Its move-to-past
  and reactivate buttons call the API (``POST /api/products/lifecycle``, the
  same services) and are shown only to the roles that API route allows.
* The passport page (``/p/<uuid or BPAN>``): a battery's public passport with
  a QR code of its own address. What is public is the passport API's split
  (``passports.models.PUBLIC_FIELDS``/``RESTRICTED_FIELDS`` through
  ``passports.api.serializers.public_groups``/``full_groups``); who sees the
  restricted groups is the API's rule (``may_see_restricted``), for the
  signed-in session's user. It shows the battery's EU status
  (``batteryStatus``), its second-life links (the passport it came from, the
  ones that superseded it: each a link to that passport's own page) and its
  printed QR codes (the GS1 Digital Link's when it has a GTIN, the BPAN's
  when it has a BPAN) as images of the QR API (``passports.qr``): public
  data only, whoever reads the page.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import segno
from django.http import HttpResponseRedirect
from django.urls import re_path, reverse
from django.utils.safestring import mark_safe

from bpmos import access
from bpmos.errors import Conflict, NotFound
from bpmos.events.selectors import latest_event_id
from bpmos.pagekit import page, render_page, role_of
from passports import attributes, gs1, qr, secondlife
from passports import selectors as passport_selectors
from passports.api import serializers as passport_s
from passports.api.views import PUBLIC_IDENTIFIERS, may_see_restricted
from passports.dispatch import selectors as dispatch_selectors
from passports.dispatch.api import serializers as dispatch_s
from passports.events import DISPATCH_TOPIC
from passports.models import RESTRICTED_FIELDS, Passport

# The routes the board's script calls: the page hands them to it, so the
# script names no path of its own.
DISPATCH_API = {
    "list": "dispatch-dispatchable",
    "lifecycle": "dispatch-lifecycle",
    "ticket": "dispatch-stream-ticket",
}
# How many products off the desk the board offers to reactivate.
REACTIVATABLE_SHOWN = 50


# --- the dispatch board ---------------------------------------------------------


def may_move(role: str | None) -> bool:
    """Whether ``role`` may move products to past and reactivate them: the rule
    of the API route the buttons call (``POST /api/products/lifecycle``)."""
    return access.allows(access.rule_for(DISPATCH_API["lifecycle"], "POST"), role)


def _reactivatable_row(passport: Passport) -> dict[str, Any]:
    return {
        "productId": passport.serial,
        "jobId": str(passport.job_id),
        "bpan": passport.bpan,
        "model": passport.model,
        "reason": passport.job_reason,
        "movedAt": passport.moved_at,
    }


@page("board-dispatch")
def dispatch_board(request):
    # Where the stream resumes: read before the list, so an event committed
    # between the two is replayed (and applied twice harmlessly), never lost.
    resume_from = latest_event_id(topics=[DISPATCH_TOPIC])
    products = dispatch_s.DispatchableProductSerializer(
        dispatch_selectors.dispatchable_list(), many=True
    ).data
    can_move = may_move(role_of(request))
    past = (
        [
            _reactivatable_row(p)
            for p in dispatch_selectors.reactivatable_list(limit=REACTIVATABLE_SHOWN)
        ]
        if can_move
        else []
    )
    return render_page(
        request,
        "pages/board_dispatch.html",
        {
            "products": products,
            "past": past,
            "can_move": can_move,
            "board_config": {
                "canMove": can_move,
                "lastEventId": resume_from,
                "api": {k: reverse(f"api:{name}") for k, name in DISPATCH_API.items()},
            },
        },
    )


# --- the passport page ----------------------------------------------------------

# The QR code: error correction M (readable with a smudge), drawn as SVG.
QR_MAKE: dict[str, Any] = {"error": "m"}
QR_SVG: dict[str, Any] = {
    "scale": 5,
    "border": 2,
    "dark": "#000",
    "light": "#fff",
    "title": "QR code of this passport's address",
}


def passport_url(request, passport: Passport) -> str:
    """The absolute address of ``passport``'s page (by its UUID, which every
    passport has and never changes): what its QR code holds."""
    return request.build_absolute_uri(
        reverse("passport-page", args=[str(passport.uuid)])
    )


def qr_svg(url: str) -> str:
    """An inline SVG QR code holding exactly ``url``."""
    return segno.make(url, **QR_MAKE).svg_inline(**QR_SVG)


def _shown(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_shown(amount)} %" for key, amount in value.items())
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"  # 100.00 -> 100, as the API's JSON
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# Labels with units where the field's own name says them in short; any other
# field is labelled by its verbose name.
FIELD_LABELS: dict[str, str] = {
    "uuid": "UUID",
    "bpan": "BPAN",
    "gtin": "GTIN",
    "rfid": "RFID tag",
    "manufacturer_id": "Manufacturer ID",
    "rated_capacity_ah": "Rated capacity (Ah)",
    "nominal_voltage_v": "Nominal voltage (V)",
    "energy_kwh": "Energy (kWh)",
    "mass_kg": "Mass (kg)",
    "carbon_footprint_kg_co2e_per_kwh": "Carbon footprint (kg CO₂e/kWh)",
    "soh_percent": "State of health (%)",
    "soc_percent": "State of charge (%)",
    "temperature_c": "Temperature (°C)",
}


def _field_label(name: str) -> str:
    if name in FIELD_LABELS:
        return FIELD_LABELS[name]
    label = str(Passport._meta.get_field(name).verbose_name)
    return label[:1].upper() + label[1:]


def _group_rows(groups: dict[str, dict]) -> list[dict[str, Any]]:
    """The attribute groups (as the API builds them) as titled rows; each
    field keeps its model name and whether it is a restricted one."""
    shown = []
    for group, values in groups.items():
        fields = []
        for key, value in values.items():
            name = passport_s.snake(key)
            fields.append(
                {
                    "name": name,
                    "key": key,
                    "label": _field_label(name),
                    "value": _shown(value),
                    "restricted": name in RESTRICTED_FIELDS.get(group, ()),
                }
            )
        title = passport_s.snake(group).replace("_", " ")
        shown.append(
            {
                "group": group,
                "title": title[:1].upper() + title[1:],
                "fields": fields,
                "restricted": group not in passport_s.PUBLIC_GROUPS,
            }
        )
    return shown


def _public_passport(identifier: str) -> Passport | None:
    """The passport the page's identifier names, among the identifiers the
    public API answers to (UUID, BPAN, serial; not barcode or RFID)."""
    try:
        passport = passport_selectors.resolve(identifier)
    except (NotFound, Conflict):
        return None
    if passport_selectors.matched_by(passport, identifier) not in PUBLIC_IDENTIFIERS:
        return None
    return passport


def _link(ref: dict[str, Any] | None) -> dict[str, Any] | None:
    """A second-life link (``secondlife.lineage``'s public reference: id,
    serial, BPAN, status) with the address of that passport's page."""
    if ref is None:
        return None
    return ref | {"url": reverse("passport-page", args=[ref["id"]])}


def second_life_links(passport: Passport) -> dict[str, Any]:
    """The page's second-life part: where the battery's passport came from and
    the passports that superseded it, each linking to its public page. No
    query for a battery that never changed (``secondlife.lineage``)."""
    lineage = secondlife.lineage(passport)
    return {
        "predecessor": _link(lineage["predecessor"]),
        "successors": [_link(ref) for ref in lineage["successors"]],
    }


# The QR codes printed on the battery, in the order they are shown, with
# what each holds (passports.qr; docs/passports.md, "Identifiers and QR codes").
QR_SYMBOLS: dict[str, str] = {
    "digital-link": "GS1 Digital Link",
    "bpan": "Battery Pack Aadhaar (BPAN)",
}


def printed_codes(request, passport: Passport) -> list[dict[str, str]]:
    """The QR codes the battery carries, as images of the public QR API: the
    Digital Link's when the passport has a GTIN, the BPAN's when it has a
    BPAN. ``text`` is what a person reads under the symbol."""
    texts = {
        "digital-link": qr.digital_link(request, passport),
        "bpan": passport.bpan,
    }
    codes = []
    for symbol, title in QR_SYMBOLS.items():
        if not texts[symbol]:
            continue
        image = reverse("api:passport-qr", args=[str(passport.uuid), symbol])
        codes.append(
            {
                "symbol": symbol,
                "title": title,
                "text": texts[symbol],
                "svg": f"{image}?image=svg",
                "png": f"{image}?image=png",
            }
        )
    return codes


@page("passport-page")
def passport_page(request, identifier: str):
    passport = _public_passport(identifier)
    if passport is None:
        return render_page(
            request,
            "pages/passport_missing.html",
            {"identifier": identifier[:64]},
            status=404,
        )
    restricted = may_see_restricted(request.user)
    groups = (
        passport_s.full_groups(passport)
        if restricted
        else passport_s.public_groups(passport)
    )
    events = passport_selectors.event_list(passport=passport)
    url = passport_url(request, passport)
    return render_page(
        request,
        "pages/passport.html",
        {
            "passport": passport,
            "restricted": restricted,
            "groups": _group_rows(groups),
            "history": passport_s.PublicEventSerializer(events, many=True).data,
            "page_url": url,
            "qr": mark_safe(qr_svg(url)),  # segno's own SVG: no text of the request
            "battery_status": attributes.eu_status(
                state=passport.state, battery_status=passport.battery_status
            ),
            "second_life": second_life_links(passport),
            "codes": printed_codes(request, passport),
        },
    )


# --- the GS1 Digital Link resolver -----------------------------------------------


class _TemporaryRedirect(HttpResponseRedirect):
    # 307, as GS1 resolvers answer (GS1-Conformant resolver standard 1.1):
    # the link stays the battery's name; where it leads may change.
    status_code = 307


def _wants_json(request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


@page("passport-digital-link")
def digital_link_resolve(request, gtin, serial=None, lot=None, cpv=None):
    """``/01/{gtin}[/22/{cpv}][/10/{lot}]/21/{serial}`` → 307 to the battery's
    public passport page (or, for a client that asks for JSON only, to the
    public passport API). A malformed link (a wrong GTIN check digit, a serial
    GS1 does not allow, no serial) is 400; a lot other than the battery's, or
    no battery with this GTIN and serial, is 404."""
    try:
        link = gs1.parse_path(gtin=gtin, serial=serial, lot=lot, cpv=cpv)
    except gs1.GS1Error as exc:
        return render_page(
            request,
            "pages/digital_link_invalid.html",
            {"path": request.path[:120], "problem": str(exc)},
            status=400,
        )
    passport = passport_selectors.passport_by_digital_link(
        gtin=link.gtin, serial=link.serial
    )
    if passport is None or (link.lot is not None and link.lot != passport.lot):
        return render_page(
            request,
            "pages/passport_missing.html",
            {"identifier": request.path[:64]},
            status=404,
        )
    if _wants_json(request):
        target = reverse("api:passport-public", args=[str(passport.uuid)])
    else:
        target = reverse("passport-page", args=[str(passport.uuid)])
    return _TemporaryRedirect(target)


urlpatterns: list = [
    re_path(
        rf"^{gs1.PATH_PATTERN}/?$",
        digital_link_resolve,
        name="passport-digital-link",
    ),
    re_path(r"^board/dispatch/$", dispatch_board, name="board-dispatch"),
    re_path(r"^p/(?P<identifier>[^/]{1,100})/?$", passport_page, name="passport-page"),
]
