"""Identity and genealogy: a battery found by any of its identifiers, and which
cells are in which module, which modules in which pack, queried both ways."""

from __future__ import annotations

import pytest

from bpmos.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from passports import selectors, services
from passports.models import EventKind, Passport, PassportEvent, State
from tests.factories_passports import footprint, make_passport, register

pytestmark = pytest.mark.django_db
E = EventKind


@pytest.fixture
def pack():
    return register(
        "pack",
        serial="PK-2026-000417",
        barcode="bc-417-x",
        rfid="e2801160600002084e9f6a41",
    )


# --- resolution by each identifier --------------------------------------------------


def test_resolved_by_each_identifier(pack):
    uuid = str(pack.uuid)
    bpan = pack.bpan
    forms = {
        "uuid": [uuid, uuid.upper(), uuid.replace("-", ""), f"  {uuid}  "],
        "serial": ["PK-2026-000417"],
        "barcode": ["BC-417-X", "bc-417-x"],
        "rfid": ["E2801160600002084E9F6A41", "e2801160600002084e9f6a41"],
        "bpan": [
            bpan,
            bpan.lower(),
            f"{bpan[:5]}-{bpan[5:11]}-{bpan[11:15]}-{bpan[15:]}".lower(),
            f"{bpan[:10]} {bpan[10:]}",
        ],
    }
    # another battery, to be told apart; its serial given, so that its BPAN
    # (issued from the serial's number) is never this pack's: the factory's
    # own numbering reaches 417 in a long worker
    register("pack", serial="PK-2026-000418")
    for identifier, values in forms.items():
        for value in values:
            assert selectors.resolve(value) == pack, value
            assert selectors.matched_by(pack, value) == identifier, value


def test_stored_identifiers_are_normalised(pack):
    stored = Passport.objects.values("barcode", "rfid").get(pk=pack.pk)
    assert stored == {"barcode": "BC-417-X", "rfid": "E2801160600002084E9F6A41"}


@pytest.mark.parametrize(
    "value",
    [
        "PK-2026-000418",
        "pk-2026-000417",  # serials are exact
        "00000000-0000-0000-0000-000000000000",
        "INBPML0510526BP009IXW",  # a valid BPAN nobody has
        "",
        "   ",
        "X" * 65,
    ],
)
def test_unknown_identifier_is_not_found(pack, value):
    with pytest.raises(NotFound) as refused:
        selectors.resolve(value)
    assert (str(refused.value), refused.value.status_code) == (
        "No passport has this identifier.",
        404,
    )


def test_identifier_shared_by_two_batteries_is_ambiguous(pack):
    other = register("cell", barcode="PK-2026-000417")
    with pytest.raises(Conflict) as refused:
        selectors.resolve("PK-2026-000417")
    assert refused.value.code == "ambiguous_identifier"
    assert refused.value.status_code == 409
    assert sorted(refused.value.details["matches"]) == sorted(
        [str(pack.uuid), str(other.uuid)]
    )


def test_resolution_is_limited_to_the_queryset_given(pack):
    with pytest.raises(NotFound):
        selectors.resolve(pack.serial, Passport.objects.filter(kind="cell"))


def test_identifiers_are_unique_across_passports(pack):
    count = Passport.objects.count()
    for field, value in (
        ("serial", "PK-2026-000417"),
        ("barcode", "BC-417-X"),
        ("rfid", "e2801160600002084E9F6A41"),
        ("bpan", pack.bpan),
    ):
        with pytest.raises(Conflict) as refused:
            register("pack", manufacturer_code=None, **{field: value})
        assert refused.value.code == "duplicate_identifier"
        assert refused.value.details == {field: ["Already registered."]}
    assert Passport.objects.count() == count


# --- genealogy ------------------------------------------------------------------------


@pytest.fixture
def built(make_user):
    """A pack of two modules of three cells each, assembled through the service."""
    actor = make_user("supervisor")
    pack = make_passport("pack", "qa_passed", actor=actor)
    modules = [make_passport("module", "qa_passed", actor=actor) for _ in range(2)]
    cells = [
        [make_passport("cell", "qa_passed", actor=actor) for _ in range(3)]
        for _ in modules
    ]
    for module, its_cells in zip(modules, cells, strict=True):
        services.passport_assemble(
            parent_id=module.pk, component_ids=[c.pk for c in its_cells], actor=actor
        )
    services.passport_assemble(
        parent_id=pack.pk, component_ids=[m.pk for m in modules], actor=actor
    )
    return pack, modules, cells, actor


def serials(tree):
    return [(node["passport"].serial, serials(node["components"])) for node in tree]


def test_genealogy_downwards(built, django_assert_num_queries):
    pack, modules, cells, _ = built
    with django_assert_num_queries(2):
        tree = selectors.components_tree(pack)
    assert serials(tree) == [
        (module.serial, [(cell.serial, []) for cell in its_cells])
        for module, its_cells in zip(modules, cells, strict=True)
    ]
    assert serials(selectors.components_tree(modules[1])) == [
        (cell.serial, []) for cell in cells[1]
    ]
    assert selectors.components_tree(cells[0][0]) == []


def test_genealogy_upwards(built, django_assert_num_queries):
    pack, modules, cells, _ = built
    cell = Passport.objects.get(pk=cells[1][2].pk)
    with django_assert_num_queries(2):
        assert selectors.ancestors(cell) == [modules[1], pack]
    assert selectors.ancestors(Passport.objects.get(pk=modules[0].pk)) == [pack]
    assert selectors.ancestors(pack) == []


def test_assembly_is_in_each_component_ledger(built):
    pack, modules, cells, actor = built
    for parent, components in ((modules[0], cells[0]), (pack, modules)):
        for component in components:
            component.refresh_from_db()
            last = PassportEvent.objects.filter(passport=component).latest("version")
            assert (component.state, component.parent_id) == (
                State.ASSEMBLED,
                parent.pk,
            )
            assert (last.kind, last.data, last.actor_username) == (
                E.ASSEMBLED,
                {"parent": str(parent.uuid), "parentSerial": parent.serial},
                actor.username,
            )
    pack.refresh_from_db()
    assert (pack.state, pack.version) == (State.QA_PASSED, 2)  # the parent's ledger


def test_assembly_refuses_wrong_kinds_and_writes_nothing():
    pack = make_passport("pack", "qa_passed")
    module = make_passport("module", "qa_passed")
    cells = [make_passport("cell", "qa_passed") for _ in range(2)]
    other_module = make_passport("module", "qa_passed")
    other_pack = make_passport("pack", "qa_passed")
    cases = [
        (
            pack,
            [cells[0].pk],
            "Cell C-",
            "cannot go into a pack; a cell goes into a module.",
        ),
        (
            module,
            [cells[1].pk, other_pack.pk],
            "Pack P-",
            "cannot go into a module; a pack goes into nothing.",
        ),
        (
            module,
            [other_module.pk],
            "Module M-",
            "cannot go into a module; a module goes into a pack.",
        ),
    ]
    for parent, components, start, end in cases:
        before = [footprint(Passport(pk=pk)) for pk in components]
        with pytest.raises(InvalidInput) as refused:
            services.passport_assemble(
                parent_id=parent.pk, component_ids=components, actor=None
            )
        (message,) = refused.value.details["components"]
        assert message.startswith(start), message
        assert message.endswith(end), message
        assert [footprint(Passport(pk=pk)) for pk in components] == before


def test_assembly_refuses_a_component_already_in_another_parent(built):
    _, modules, cells, _ = built
    spare = make_passport("module", "qa_passed")
    fresh = make_passport("cell", "qa_passed")
    before = [footprint(fresh), footprint(cells[0][0])]
    with pytest.raises(Conflict) as refused:
        services.passport_assemble(
            parent_id=spare.pk, component_ids=[fresh.pk, cells[0][0].pk], actor=None
        )
    assert refused.value.code == "already_assembled"
    assert refused.value.details == {
        "component": cells[0][0].pk,
        "parent": modules[0].pk,
    }
    # all or nothing: the fresh cell listed first was not assembled either
    assert [footprint(fresh), footprint(cells[0][0])] == before


@pytest.mark.parametrize(
    ("state", "on_hold", "code"),
    [
        ("qa_passed", True, "on_hold"),
        ("manufactured", False, "illegal_transition"),
        ("qa_failed", False, "illegal_transition"),
        ("reserved", False, "illegal_transition"),
        ("end_of_life", False, "illegal_transition"),
    ],
)
def test_assembly_refuses_a_component_that_may_not_be_built_in(state, on_hold, code):
    module = make_passport("module", "qa_passed")
    good = make_passport("cell", "warehoused")
    bad = make_passport("cell", state, on_hold=on_hold)
    before = [footprint(good), footprint(bad)]
    with pytest.raises(IllegalTransition) as refused:
        services.passport_assemble(
            parent_id=module.pk, component_ids=[good.pk, bad.pk], actor=None
        )
    assert (refused.value.code, refused.value.status_code) == (code, 409)
    assert [footprint(good), footprint(bad)] == before
    assert selectors.components_tree(module) == []


@pytest.mark.parametrize(
    "state", ["dispatched", "in_service", "end_of_life", "recycled"]
)
def test_nothing_is_assembled_into_a_pack_that_left_the_plant(state):
    pack = make_passport("pack", state)
    module = make_passport("module", "qa_passed")
    before = footprint(module)
    with pytest.raises(IllegalTransition) as refused:
        services.passport_assemble(
            parent_id=pack.pk, component_ids=[module.pk], actor=None
        )
    assert refused.value.details == {"state": state}
    assert footprint(module) == before


def test_assembly_refuses_bad_lists():
    module = make_passport("module", "qa_passed")
    cell = make_passport("cell", "qa_passed")
    for components, message in (
        ([], "A non-empty list of passports."),
        ("1,2", "A non-empty list of passports."),
        ([cell.pk, cell.pk], "A passport is listed twice."),
        ([module.pk], "A passport cannot contain itself."),
    ):
        with pytest.raises(InvalidInput) as refused:
            services.passport_assemble(
                parent_id=module.pk, component_ids=components, actor=None
            )
        assert refused.value.details == {"components": [message]}
    with pytest.raises(NotFound):
        services.passport_assemble(
            parent_id=module.pk, component_ids=[cell.pk + 999], actor=None
        )
    with pytest.raises(NotFound):
        services.passport_assemble(
            parent_id=module.pk + 999, component_ids=[cell.pk], actor=None
        )
    assert Passport.objects.get(pk=cell.pk).parent_id is None
