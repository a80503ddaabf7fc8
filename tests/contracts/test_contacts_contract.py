"""Contacts, their search, tags and custom fields: one contract over the in-memory and the SQL
implementation (see conftest.py)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from contract_world import NOW, AnyUnitOfWork, World

from ghl_core.contacts.filters import parse_filter
from ghl_core.contacts.models import Contact, DuplicatePolicy
from ghl_core.contacts.ports import DuplicateContact
from ghl_core.contacts.search import SearchPage, SearchSpec, Sort, search_tokens
from ghl_core.custom_fields.errors import DuplicateFieldKey
from ghl_core.custom_fields.models import CustomFieldDefinition, FieldType
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.pagination import PageRequest, decode_cursor
from ghl_core.tags.errors import DuplicateTag
from ghl_core.tags.models import Tag

STRICT = DuplicatePolicy()
LOOSE = DuplicatePolicy(allow_duplicates=True)


def contact(world: World, minutes: int = 0, **fields: object) -> Contact:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "location_id": world.location_id,
        "created_at": NOW + timedelta(minutes=minutes),
        "updated_at": NOW + timedelta(minutes=minutes),
        **fields,
    }
    return Contact(**values)  # type: ignore[arg-type]


async def add_all(uow: AnyUnitOfWork, *contacts: Contact, policy: DuplicatePolicy = STRICT) -> None:
    for c in contacts:
        await uow.contacts.add(c, policy)


async def test_one_live_contact_per_email_and_phone_while_duplicates_are_forbidden(world: World) -> None:
    first = contact(world, email="ann@contract.test", phone="+13125550100")
    async with world.uow(world.scope) as uow:
        await add_all(uow, first)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        with pytest.raises(DuplicateContact) as refused:
            await uow.contacts.add(contact(world, 1, email="ann@contract.test"), STRICT)
        assert refused.value.existing_ids == [first.id]
    async with world.uow(world.scope) as uow:
        with pytest.raises(DuplicateContact):
            await uow.contacts.add(contact(world, 1, phone="+13125550100"), STRICT)
    async with world.uow(world.other_scope) as uow:  # another location may have the same person
        other = contact(world, 1, email="ann@contract.test")
        other.location_id = world.other_location_id
        await uow.contacts.add(other, STRICT)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        await uow.contacts.set_policy(world.location_id, LOOSE)
        twin = contact(world, 2, email="ann@contract.test")
        await uow.contacts.add(twin, LOOSE)
        assert await uow.contacts.policy(world.location_id) == LOOSE
        matches = await uow.contacts.find_matches("ann@contract.test", None)
        assert [c.id for c in matches] == [first.id, twin.id]
        with pytest.raises(DuplicateContact):
            await uow.contacts.set_policy(world.location_id, STRICT)


async def test_reads_writes_and_scope(world: World) -> None:
    old, new, gone = contact(world, 0), contact(world, 1), contact(world, 2, deleted_at=NOW)
    async with world.uow(world.scope) as uow:
        await add_all(uow, old, new, gone)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        page = await uow.contacts.list(PageRequest(limit=1))
        assert [c.id for c in page.items] == [new.id]
        assert page.next_cursor is not None
        rest = await uow.contacts.list(PageRequest(limit=5, after=decode_cursor(page.next_cursor)))
        assert [c.id for c in rest.items] == [old.id]
        everything = await uow.contacts.list(PageRequest(), include_deleted=True)
        assert [c.id for c in everything.items] == [gone.id, new.id, old.id]
        many = await uow.contacts.get_many([old.id, gone.id, uuid.uuid4()])
        assert set(many) == {old.id, gone.id}
        loaded = await uow.contacts.get(old.id, for_update=True)
        assert loaded == old
    async with world.uow(world.other_scope) as uow:
        assert await uow.contacts.get(old.id) is None
        assert await uow.contacts.get_many([old.id]) == {}
        assert (await uow.contacts.list(PageRequest())).items == []


async def test_activity_birthdays_and_custom_dates(world: World) -> None:
    born = contact(world, date_of_birth=date(1990, 3, 2), custom_fields={"renewal": "2026-05-01"})
    other = contact(world, 1, date_of_birth=date(1990, 3, 3))
    async with world.uow(world.scope) as uow:
        await add_all(uow, born, other)
        assert await uow.contacts.touch_activity(born.id, NOW + timedelta(hours=2))
        assert await uow.contacts.touch_activity(born.id, NOW)  # never moves back
        assert not await uow.contacts.touch_activity(uuid.uuid4(), NOW)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        touched = await uow.contacts.get(born.id)
        assert touched is not None
        assert touched.last_activity_at == NOW + timedelta(hours=2)
        assert await uow.contacts.ids_with_birthday(world.location_id, 3, 2) == [born.id]
        found = await uow.contacts.ids_with_custom_date(world.location_id, "renewal", date(2026, 5, 1))
        assert found == [born.id]


async def test_erasing_history_scrubs_the_contacts_audit_entries(world: World) -> None:
    person = contact(world, email="erase@contract.test")
    entry = AuditEntry(
        agency_id=world.agency_id,
        location_id=world.location_id,
        actor_type="operator",
        actor_id=None,
        action="create",
        entity_type="contact",
        entity_id=person.id,
        before=None,
        after={"email": "erase@contract.test"},
        created_at=NOW,
    )
    async with world.uow(world.scope) as uow:
        await add_all(uow, person)
        await uow.audit.record(entry)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        assert await uow.contacts.erase_history(person.id) == 1
        await uow.commit()
    async with world.uow(world.scope) as uow:
        page = await uow.audit.list(world.location_id, PageRequest(), entity_id=person.id)
        # The SQL trail stores a missing `before` as JSON null, which the erasure rewrites too.
        assert [(e.before, e.after) for e in page.items] == [({"erased": True}, {"erased": True})]


async def _search(uow: AnyUnitOfWork, world: World, spec: SearchSpec, limit: int = 20) -> list[uuid.UUID]:
    page = await uow.contact_search.search(world.location_id, spec, SearchPage(limit=limit))
    return [c.id for c in page.items]


async def test_search_filters_text_sorts_and_pages(world: World) -> None:
    ann = contact(world, 0, first_name="Ann", last_name="Zeta", email="ann@acme.test", tags=["vip"])
    bob = contact(world, 1, first_name="Bob", company_name="Widgets Inc", phone="+13125550142")
    cid = contact(world, 2, first_name="Cid", tags=["vip", "lead"], custom_fields={"score": 12})
    gone = contact(world, 3, first_name="Ann", deleted_at=NOW)
    async with world.uow(world.scope) as uow:
        await add_all(uow, ann, bob, cid, gone)
        await uow.commit()
    vip = parse_filter({"field": "tags", "operator": "has_any", "value": ["vip"]}, {})
    score = parse_filter(
        {"field": "custom_fields.score", "operator": "gt", "value": 10}, {"score": FieldType.NUMBER}
    )
    async with world.uow(world.scope) as uow:
        assert await _search(uow, world, SearchSpec()) == [cid.id, bob.id, ann.id]
        assert await _search(uow, world, SearchSpec(filter=vip)) == [cid.id, ann.id]
        assert await _search(uow, world, SearchSpec(filter=score)) == [cid.id]
        assert await _search(uow, world, SearchSpec(tokens=search_tokens("ann"))) == [ann.id]
        assert await _search(uow, world, SearchSpec(tokens=search_tokens("idget"))) == [bob.id]
        assert await _search(uow, world, SearchSpec(tokens=search_tokens("(312) 555-0142"))) == [bob.id]
        by_name = SearchSpec(sort=Sort("first_name", "asc"))
        assert await _search(uow, world, by_name) == [ann.id, bob.id, cid.id]
        first = await uow.contact_search.search(world.location_id, by_name, SearchPage(limit=2))
        assert first.next_cursor is not None
        cursor = decode_cursor(first.next_cursor)
        assert cursor[:2] == ("first_name", "asc")
        after = await uow.contact_search.search(
            world.location_id, by_name, SearchPage(limit=2, after=(cursor[2], cursor[3]))
        )
        assert [c.id for c in after.items] == [cid.id]
        result = await uow.contact_search.search_with_total(world.location_id, SearchSpec(), SearchPage())
        assert result.total is not None
        assert (result.total.value, result.total.exact) == (3, True)
        assert await uow.contact_search.count_up_to(world.location_id, SearchSpec(), 2) == 2
    async with world.uow(world.other_scope) as uow:
        assert await _search(uow, world, SearchSpec()) == []


async def test_tags_are_unique_per_location_and_retag_many_contacts(world: World) -> None:
    one = contact(world, 0, tags=["lead", "old"])
    two = contact(world, 1, tags=["old"])
    three = contact(world, 2, tags=["vip"])
    async with world.uow(world.scope) as uow:
        await add_all(uow, one, two, three)
        await uow.tags.ensure(world.location_id, ["old", "lead", "vip"])
        await uow.tags.ensure(world.location_id, ["vip"])
        await uow.commit()
    async with world.uow(world.scope) as uow:
        names = [t.name for t in (await uow.tags.list(world.location_id, PageRequest())).items]
        assert names == ["lead", "old", "vip"]
        old = await uow.tags.by_name(world.location_id, "old")
        assert old is not None
        with pytest.raises(DuplicateTag) as refused:
            await uow.tags.add(Tag(uuid.uuid4(), world.location_id, "old", NOW, NOW))
        assert refused.value.existing_id == old.id
    async with world.uow(world.scope) as uow:
        changes = await uow.tags.retag(
            world.location_id, having="old", rename=("old", "new"), add=["lead"], now=NOW, actor_id=None
        )
        assert sorted((c.contact.id, tuple(c.contact.tags)) for c in changes) == sorted(
            [(one.id, ("lead", "new")), (two.id, ("new", "lead"))]
        )
        by_id = await uow.tags.retag(
            world.location_id, contact_ids=[three.id], remove=["vip"], now=NOW, actor_id=None
        )
        assert [(c.contact.tags, c.before) for c in by_id] == [([], ["vip"])]
        assert await uow.tags.live_contact_ids(world.location_id, [one.id, uuid.uuid4()]) == {one.id}
        await uow.commit()
    async with world.uow(world.other_scope) as uow:
        assert (await uow.tags.list(world.location_id, PageRequest())).items == []


async def test_custom_field_definitions_and_stored_values(world: World) -> None:
    def definition(
        key: str, kind: FieldType, options: list[str] | None = None, minutes: int = 0
    ) -> CustomFieldDefinition:
        at = NOW + timedelta(minutes=minutes)
        return CustomFieldDefinition(
            uuid.uuid4(), world.location_id, key, key.title(), kind, at, at, options=options or []
        )

    colours = definition("colours", FieldType.MULTIPLE_OPTIONS, ["red", "blue"])
    size = definition("size", FieldType.SINGLE_OPTION, ["s", "m"], minutes=1)
    a = contact(world, 0, custom_fields={"colours": ["red", "blue"], "size": "s"})
    b = contact(world, 1, custom_fields={"colours": ["red"], "size": "m"})
    async with world.uow(world.scope) as uow:
        await add_all(uow, a, b)
        await uow.custom_fields.add(colours)
        await uow.custom_fields.add(size)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        with pytest.raises(DuplicateFieldKey):
            await uow.custom_fields.add(definition("size", FieldType.TEXT))
    async with world.uow(world.scope) as uow:
        assert [d.key for d in await uow.custom_fields.definitions(world.location_id)] == ["colours", "size"]
        removed = await uow.custom_fields.remove_options(
            world.location_id, "colours", ["red"], multiple=True, now=NOW
        )
        assert removed == 2
        assert (
            await uow.custom_fields.remove_options(world.location_id, "size", ["s"], multiple=False, now=NOW)
            == 1
        )
        assert sorted(await uow.custom_fields.stored_values(world.location_id, "colours")) == [
            (a.id, ["blue"])
        ]
        assert await uow.custom_fields.set_values(world.location_id, "size", {b.id: "s"}, NOW) == 1
        assert await uow.custom_fields.remove_key(world.location_id, "colours", NOW) == 1
        await uow.commit()
    async with world.uow(world.scope) as uow:
        stored = await uow.contacts.get_many([a.id, b.id])
        assert (stored[a.id].custom_fields, stored[b.id].custom_fields) == ({}, {"size": "s"})
    async with world.uow(world.other_scope) as uow:
        assert await uow.custom_fields.definitions(world.location_id) == []
        assert await uow.custom_fields.get(colours.id) is None
