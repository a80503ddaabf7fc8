"""Notes, tasks, smart lists, pipelines, opportunities and contact imports: one contract over the
in-memory and the SQL implementation (see conftest.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from contract_world import NOW, World
from test_contacts_contract import add_all, contact

from ghl_core.contacts.import_models import (
    ContactImport,
    ImportOptions,
    ImportStatus,
    RowError,
)
from ghl_core.notes.models import Note
from ghl_core.pipelines.models import (
    BoardFilter,
    Money,
    Opportunity,
    OpportunityMove,
    OpportunityStatus,
    Pipeline,
    Stage,
)
from ghl_core.pipelines.ports import DuplicateName
from ghl_core.shared.pagination import PageRequest
from ghl_core.smart_lists.models import SmartList
from ghl_core.smart_lists.ports import DuplicateSmartList
from ghl_core.tasks.models import Task, TaskFilter


async def test_notes_pinned_first_then_newest_and_added_once(world: World) -> None:
    person = contact(world)
    notes = [
        Note(uuid.uuid4(), world.location_id, person.id, f"n{i}", NOW + timedelta(minutes=i), NOW)
        for i in range(3)
    ]
    notes[0].pinned = True
    async with world.uow(world.scope) as uow:
        await add_all(uow, person)
        for note in notes:
            assert await uow.notes.add(note)
        assert not await uow.notes.add(notes[1])
        await uow.commit()
    async with world.uow(world.scope) as uow:
        page = await uow.notes.list_for_contact(person.id, PageRequest(limit=2))
        assert [n.id for n in page.items] == [notes[0].id, notes[2].id]
        assert page.next_cursor is not None
        notes[2].deleted_at = NOW
        await uow.notes.update(notes[2])
        rest = await uow.notes.list_for_contact(person.id, PageRequest())
        assert [n.id for n in rest.items] == [notes[0].id, notes[1].id]
    async with world.uow(world.other_scope) as uow:
        assert await uow.notes.get(notes[0].id) is None


async def test_tasks_soonest_due_first_undated_last(world: World) -> None:
    person, gone = contact(world), contact(world, 1, deleted_at=NOW)
    soon = Task(uuid.uuid4(), world.location_id, person.id, "soon", NOW, NOW, due_at=NOW + timedelta(days=1))
    later = Task(
        uuid.uuid4(), world.location_id, person.id, "later", NOW, NOW, due_at=NOW + timedelta(days=2)
    )
    undated = Task(uuid.uuid4(), world.location_id, person.id, "undated", NOW, NOW)
    orphan = Task(uuid.uuid4(), world.location_id, gone.id, "orphan", NOW, NOW, due_at=NOW)
    async with world.uow(world.scope) as uow:
        await add_all(uow, person, gone)
        for task in (undated, later, soon, orphan):
            assert await uow.tasks.add(task)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        mine = await uow.tasks.list_for_contact(person.id, PageRequest())
        assert [t.id for t in mine.items] == [soon.id, later.id, undated.id]
        listed = await uow.tasks.list(TaskFilter(), PageRequest(limit=2))
        assert [t.id for t in listed.items] == [soon.id, later.id]
        dated = await uow.tasks.list(TaskFilter(due_before=NOW + timedelta(days=2)), PageRequest())
        assert [t.id for t in dated.items] == [soon.id]


async def test_smart_list_names_are_unique_in_any_case(world: World) -> None:
    first = SmartList(uuid.uuid4(), world.location_id, "VIPs", NOW, NOW)
    second = SmartList(uuid.uuid4(), world.location_id, "Leads", NOW + timedelta(minutes=1), NOW)
    async with world.uow(world.scope) as uow:
        await uow.smart_lists.add(first)
        await uow.smart_lists.add(second)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        with pytest.raises(DuplicateSmartList):
            await uow.smart_lists.add(SmartList(uuid.uuid4(), world.location_id, "vips", NOW, NOW))
    async with world.uow(world.scope) as uow:
        assert [s.id for s in (await uow.smart_lists.list(PageRequest())).items] == [second.id, first.id]
    async with world.uow(world.other_scope) as uow:
        assert await uow.smart_lists.get(first.id) is None


def _pipeline(world: World, name: str, stages: int = 3) -> Pipeline:
    pipeline_id = uuid.uuid4()
    return Pipeline(
        pipeline_id,
        world.location_id,
        name,
        NOW,
        NOW,
        stages=[
            Stage(uuid.uuid4(), pipeline_id, world.location_id, f"S{i}", i, NOW, NOW) for i in range(stages)
        ],
    )


async def test_pipelines_keep_their_stages_in_order(world: World) -> None:
    pipeline = _pipeline(world, "Sales")
    async with world.uow(world.scope) as uow:
        await uow.pipelines.add(pipeline)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        with pytest.raises(DuplicateName):
            await uow.pipelines.add(_pipeline(world, "sales"))
    s0, s1, s2 = pipeline.stages
    extra = Stage(uuid.uuid4(), pipeline.id, world.location_id, "New", 1, NOW, NOW)
    async with world.uow(world.scope) as uow:
        await uow.pipelines.add_stage(extra)
        await uow.pipelines.reorder_stages(pipeline.id, [s2.id, s1.id, extra.id, s0.id])
        await uow.pipelines.remove_stage(Stage(s1.id, pipeline.id, world.location_id, "S1", 1, NOW, NOW))
        s0.name = "First"
        await uow.pipelines.rename_stage(s0)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        loaded = await uow.pipelines.get(world.location_id, pipeline.id)
        assert loaded is not None
        assert [(s.id, s.position) for s in loaded.stages] == [(s2.id, 0), (extra.id, 1), (s0.id, 2)]
        assert loaded.stages[2].name == "First"
        listed = await uow.pipelines.list(world.location_id, PageRequest())
        assert [p.id for p in listed.items] == [pipeline.id]
    async with world.uow(world.other_scope) as uow:
        assert await uow.pipelines.get(world.location_id, pipeline.id) is None


async def test_opportunities_boards_and_moves(world: World) -> None:
    pipeline = _pipeline(world, "Deals", stages=2)
    first, second = pipeline.stages
    vip, plain = contact(world, tags=["vip"]), contact(world, 1)

    def deal(person_id: uuid.UUID, stage: Stage, minutes: int, amount: int) -> Opportunity:
        moment = NOW + timedelta(minutes=minutes)
        return Opportunity(
            uuid.uuid4(),
            world.location_id,
            pipeline.id,
            stage.id,
            person_id,
            f"deal {minutes}",
            moment,
            moment,
            moment,
            moment,
            value=Money(amount, "USD"),
        )

    a, b, c = deal(vip.id, first, 0, 100), deal(plain.id, first, 1, 250), deal(vip.id, second, 2, 5)
    async with world.uow(world.scope) as uow:
        await add_all(uow, vip, plain)
        await uow.pipelines.add(pipeline)
        for item in (a, b, c):
            assert await uow.opportunities.add(item)
        assert not await uow.opportunities.add(a)
        move = OpportunityMove(uuid.uuid4(), a.id, world.location_id, second.id, OpportunityStatus.WON, NOW)
        await uow.opportunities.add_move(move)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        summaries = await uow.opportunities.board_summaries(world.location_id, pipeline.id, BoardFilter())
        assert summaries[first.id].count == 2
        assert summaries[first.id].totals == {"USD": 350}
        tagged = await uow.opportunities.board_summaries(
            world.location_id, pipeline.id, BoardFilter(contact_tag="vip")
        )
        assert {sid: s.count for sid, s in tagged.items()} == {first.id: 1, second.id: 1}
        pages = await uow.opportunities.board_pages(world.location_id, [first.id], BoardFilter(), 1)
        assert [o.id for o in pages[first.id].items] == [b.id]
        assert pages[first.id].next_cursor is not None
        listed = await uow.opportunities.list(world.location_id, PageRequest(), contact_id=vip.id)
        assert [o.id for o in listed.items] == [c.id, a.id]
        assert await uow.pipelines.count_opportunities(world.location_id, pipeline.id, first.id) == 2
        assert [m.id for m in await uow.opportunities.moves(world.location_id, a.id)] == [move.id]
        await uow.contacts.move_references(vip.id, plain.id)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        moved = await uow.opportunities.get(world.location_id, c.id)
        assert moved is not None
        assert moved.contact_id == plain.id
    async with world.uow(world.other_scope) as uow:
        assert await uow.opportunities.get(world.location_id, a.id) is None


async def test_an_import_keeps_its_record_and_its_error_report(world: World) -> None:
    job = ContactImport(uuid.uuid4(), world.location_id, ImportStatus.QUEUED, ImportOptions(), NOW)
    known = contact(world, email="known@contract.test")
    async with world.uow(world.scope) as uow:
        await add_all(uow, known)
        await uow.contact_imports.add(job)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        job.status, job.counters.processed = ImportStatus.RUNNING, 3
        await uow.contact_imports.save(job, [RowError(2, "bad e-mail"), RowError(3, "bad phone")])
        await uow.contact_imports.save(job, [RowError(5, "too long")])
        await uow.commit()
    async with world.uow(world.scope) as uow:
        loaded = await uow.contact_imports.get(job.id, errors=2)
        assert loaded is not None
        assert (loaded.status, loaded.counters.processed) == (ImportStatus.RUNNING, 3)
        assert [e.line for e in loaded.errors] == [2, 3]
        assert [e.line for e in await uow.contact_imports.errors(job.id)] == [2, 3, 5]
        found = await uow.contact_imports.matches(["known@contract.test"], [])
        assert [c.id for c in found] == [known.id]
        batch = await uow.contact_imports.export_batch(None, 10, None)
        assert [c.id for c in batch] == [known.id]
        assert await uow.contact_imports.export_batch((known.created_at, known.id), 10, None) == []
    async with world.uow(world.other_scope) as uow:
        assert await uow.contact_imports.get(job.id) is None
