"""The fast tier: the services of tenancy to pipelines run once each on `build_memory_container()`, with
no database (the cases that pin their rules run over PostgreSQL in tests/http; these show the services
are whole on the in-memory adapters, and that the container wires them)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ghl_adapters.memory.container import MemoryContainer, build_memory_container
from ghl_core.contacts.csv_rows import CsvRow
from ghl_core.contacts.import_models import ImportOptions, ImportStatus
from ghl_core.contacts.selection import ContactSelection
from ghl_core.pipelines.models import BoardFilter
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.pagination import PageRequest
from ghl_core.tasks.models import TaskFilter
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation


@dataclass(frozen=True)
class App:
    container: MemoryContainer
    actor: Actor
    other: Actor


@pytest.fixture
async def app() -> App:
    container = build_memory_container(clock=FixedClock())
    operator = Actor.operator()
    agency = await container.tenancy.create_agency(operator, "Fast Agency")
    here = await container.tenancy.create_location(
        operator, NewLocation("Here", tier=PlanTier.PRO), agency.id
    )
    there = await container.tenancy.create_location(operator, NewLocation("There"), agency.id)
    return App(container, Actor.operator_at(here.id), Actor.operator_at(there.id))


async def test_contacts_tags_custom_fields_and_search(app: App) -> None:
    c, actor = app.container, app.actor
    field = await c.custom_field_service.create(actor, {"key": "score", "label": "Score", "type": "number"})
    ann = await c.contacts.create(
        actor, {"first_name": "Ann", "email": "ann@example.com", "custom_fields": {"score": 7}}
    )
    bob = await c.contacts.create(actor, {"first_name": "Bob", "phone": "+13125550199"})
    tag = await c.tag_service.create(actor, "vip")
    result = await c.tag_service.bulk(actor, {"contact_ids": [str(ann.id), str(bob.id)], "add": ["vip"]})
    assert result.changed == 2
    found = await c.contact_search.search(
        actor, {"filter": {"field": "custom_fields.score", "operator": "gt", "value": 5}}
    )
    assert [x.id for x in found.page.items] == [ann.id]
    chosen = await c.contact_finder.find(actor, ContactSelection(tags=("vip",), query="bob"), None, None)
    assert [x.id for x in chosen.page.items] == [bob.id]
    assert [d.id for d in await c.custom_field_service.list(actor)] == [field.id]
    assert (await c.tag_service.get(actor, tag.id)).name == "vip"
    with pytest.raises(NotFound):
        await c.contacts.get(app.other, ann.id)


async def test_smart_lists_notes_and_tasks(app: App) -> None:
    c, actor = app.container, app.actor
    ann = await c.contacts.create(actor, {"first_name": "Ann", "tags": ["lead"]})
    smart = await c.smart_lists.create(
        actor, {"name": "Leads", "filter": {"field": "tags", "operator": "has_any", "value": ["lead"]}}
    )
    listed = await c.smart_lists.contacts(actor, smart.id, None, None)
    assert [x.id for x in listed.page.items] == [ann.id]
    note = await c.notes.create(actor, ann.id, {"body": "Called, no answer"})
    assert [n.id for n in (await c.notes.list(actor, ann.id, PageRequest())).items] == [note.id]
    task = await c.tasks.create(actor, ann.id, {"title": "Call back"})
    assert [t.id for t in (await c.tasks.list(actor, TaskFilter(), PageRequest())).items] == [task.id]


async def test_pipelines_and_opportunities(app: App) -> None:
    c, actor = app.container, app.actor
    ann = await c.contacts.create(actor, {"first_name": "Ann"})
    pipeline = await c.pipelines.create(
        actor, {"name": "Sales", "stages": [{"name": "New"}, {"name": "Won"}]}
    )
    deal = await c.opportunities.create(
        actor, {"pipeline_id": str(pipeline.id), "contact_id": str(ann.id), "name": "Cleaning"}
    )
    moved = await c.opportunities.move(actor, deal.id, {"stage_id": str(pipeline.stages[1].id)})
    assert moved.stage_id == pipeline.stages[1].id
    board = await c.pipelines.board(actor, pipeline.id, BoardFilter(), 10)
    assert [col.summary.count for col in board.columns] == [0, 1]
    assert len(await c.opportunities.moves(actor, deal.id)) == 2


async def test_an_import_and_an_export(app: App) -> None:
    c, actor = app.container, app.actor
    job = await c.contact_imports.start(actor, ["first_name", "email"], ImportOptions(tags=("imported",)))
    rows = [
        CsvRow(2, {"first_name": "Ann", "email": "ann@example.com"}),
        CsvRow(3, {"first_name": "Bob", "email": "not an e-mail"}),
    ]
    done = await c.contact_imports.run(actor, job.id, rows)
    assert done.status is ImportStatus.DONE
    assert (done.counters.created, done.counters.failed) == (1, 1)
    assert [e.line for e in await c.contact_imports.error_report(actor, job.id)] == [3]
    stream = await c.contact_exports.export(actor)
    exported = "".join([chunk async for chunk in stream])
    assert "ann@example.com" in exported


async def test_audit_api_keys_and_jobs(app: App) -> None:
    c, actor = app.container, app.actor
    await c.contacts.create(actor, {"first_name": "Ann"})
    trail = await c.audit.list(actor, PageRequest())
    assert sorted(e.entity_type for e in trail.items) == ["contact", "location"]
    assert (await c.jobs.failed(actor, PageRequest())).items == []
