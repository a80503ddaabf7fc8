"""Importing contacts from CSV rows: a streaming engine over rows, written in batches.

Each batch is one transaction: its contacts, their audit rows and events, and the import's counters and
error report commit together, so a crash loses no accounting and never leaves half a row. A row is
validated as the API validates a contact; a bad row is rejected with its line number and reason. A row
matching an existing contact changes it only when a value differs, so running the same file twice
changes nothing the second time.

Before the first batch, the rows are read once more to find who is who over the whole file
(ghl_core.contacts.import_identities): rows linked by a shared e-mail address or phone number become one
contact whatever their order, and a group of rows that links two existing contacts is refused. So the
rows must be readable twice or three times (a CsvSource, a list), not a one-shot iterator.

An import started with a `source` (over the API) is durable: its job is enqueued with it
(ghl_core.contacts.import_jobs), and a run of that job after a crash resumes it where its last committed
batch ended (`run(resume=True)`, ghl_core.contacts.import_resume). The rows are made ready for their batch
in ghl_core.contacts.import_rows."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from ghl_core.contacts.csv_rows import CsvRow
from ghl_core.contacts.fields import clean_contact_fields, clean_tags
from ghl_core.contacts.import_decisions import BatchDecisions, BatchPlan, update_records
from ghl_core.contacts.import_identities import Identities, RowIdentifiers, quick_email_key, resolve
from ghl_core.contacts.import_jobs import import_job
from ghl_core.contacts.import_mapping import resolve_mapping, row_cell
from ghl_core.contacts.import_models import (
    ERROR_CAP,
    ContactImport,
    DuplicateMode,
    ImportCounters,
    ImportOptions,
    ImportStatus,
    NewContactEncoder,
    NewContactRows,
    RowError,
)
from ghl_core.contacts.import_resume import ImportTakenOver, check_progress, reopen_groups, skip_rows
from ghl_core.contacts.import_rows import (
    MEMO_CAP,
    ImportContext,
    Prepared,
    RowPreparer,
    groups_written,
)
from ghl_core.contacts.models import Contact
from ghl_core.contacts.ports import ContactImportsUnitOfWork, DuplicateContact
from ghl_core.custom_fields.cached import cached_definitions
from ghl_core.shared.cache import ReadCache
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.phones import quick_phone_key
from ghl_core.shared.recording import record_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, Permission

BATCH_SIZE = 500
# A running import's process reports in after every batch; silence this long means it stopped.
STALE_AFTER = timedelta(minutes=2)
# ... and this often while it reads the file for who is who, before its first batch.
HEARTBEAT_EVERY = timedelta(seconds=20)
_ATTEMPTS = 3
# The import refreshes the planner's statistics for contacts once it has created this many, then each time
# that number doubles (about ten times for a million rows): a location that grows from nothing by an import
# otherwise looks empty to the planner, whose look-ups then read every contact of the location.
STATISTICS_FIRST = 2_000

Progress = Callable[[ImportCounters], None]


class _Raced(Exception):
    """A concurrent writer took an identifier between our look-up and our write: redo the batch."""


class ContactImportService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[ContactImportsUnitOfWork],
        clock: Clock,
        encode: NewContactEncoder,
        runner: str | None = None,
        cache: ReadCache | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.rows = RowPreparer(clock=clock, encode=encode)  # validation and new contacts' rows
        self._cache = cache or ReadCache()
        # Tells this process's imports from those of a process that stopped.
        self._runner = runner or new_id().hex

    @property
    def runner(self) -> str:
        return self._runner

    async def _location(self, uow: ContactImportsUnitOfWork, location_id: uuid.UUID) -> Location:
        return await live_location(uow, location_id, cache=self._cache)

    async def _fail_abandoned(self, uow: ContactImportsUnitOfWork) -> None:
        now = self._clock.now()
        await uow.contact_imports.fail_abandoned(self._runner, now - STALE_AFTER, now)

    # -- use cases ---------------------------------------------------------------------------------
    async def start(
        self,
        actor: Actor,
        headers: list[str],
        options: ImportOptions,
        *,
        source: str | None = None,
        request_id: str | None = None,
    ) -> ContactImport:
        """Checks the options against the file's header and records a queued import. With `source` (the
        name its file is stored under), the import is durable: its job is enqueued in the same
        transaction (ghl_core.contacts.import_jobs), and a worker runs it."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        errors: list[FieldError] = []
        tags = clean_tags(list(options.tags), "/tags", errors)
        if not any(h for h in headers):
            errors.append(FieldError("/file", "the file has no header row"))
        if errors:
            raise ValidationFailed(errors)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            await self._fail_abandoned(uow)
            # Only the keys, to check the mapping: `run` reads them again under the lock.
            definitions = await cached_definitions(self._cache, uow, location_id)
            mapping = resolve_mapping(headers, options.mapping, [d.key for d in definitions])
            now = self._clock.now()
            job = ContactImport(
                id=new_id(),
                location_id=location_id,
                status=ImportStatus.QUEUED,
                options=replace(options, mapping=mapping, tags=tuple(tags)),
                created_at=now,
                runner=self._runner,
                heartbeat_at=now,
                created_by=actor.id,
                source=source,
            )
            await uow.contact_imports.add(job)
            if source is not None:
                await uow.jobs.enqueue(import_job(actor, job.id, request_id))
            await record_change(
                uow,
                self._clock,
                actor,
                action="create",
                entity_type="contact_import",
                entity_id=job.id,
                agency_id=location.agency_id,
                location_id=location_id,
                before=None,
                after={"mapping": mapping, **job.options.as_dict()},
            )
            await uow.commit()
        return job

    async def get(self, actor: Actor, import_id: uuid.UUID, errors: int = 20) -> ContactImport:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            await self._fail_abandoned(uow)
            job = await uow.contact_imports.get(import_id, errors)
            if job is None:
                raise NotFound(f"import {import_id} not found")
            await uow.commit()
        return job

    async def error_report(self, actor: Actor, import_id: uuid.UUID) -> list[RowError]:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            if await uow.contact_imports.get(import_id, 0) is None:
                raise NotFound(f"import {import_id} not found")
            return await uow.contact_imports.errors(import_id)

    async def run(
        self,
        actor: Actor,
        import_id: uuid.UUID,
        rows: Iterable[CsvRow],
        progress: Progress | None = None,
        batch_size: int = BATCH_SIZE,
        *,
        resume: bool = False,
        read_all: Callable[[], None] | None = None,
    ) -> ContactImport:
        """Runs a queued import over `rows` (the same file `start` saw the header of), which it reads
        more than once. With `resume`, a durable import a stopped process left running goes on after its
        last committed batch (ghl_core.contacts.import_resume). `read_all` is called once every row is
        written, before the import is marked done (its caller lets go of the file then)."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        if isinstance(rows, Iterator):
            raise TypeError("the import reads its rows more than once: pass a CsvSource or a list")
        async with self._uow(actor.scope) as uow:
            job = await uow.contact_imports.get(import_id, 0)
            if job is None:
                raise NotFound(f"import {import_id} not found")
            resuming = resume and job.status is ImportStatus.RUNNING and job.source is not None
            if job.status is not ImportStatus.QUEUED and not resuming:
                raise ValidationFailed.one("/status", f"this import is {job.status.value}, not queued")
            location = await self._location(uow, location_id)
            definitions = await uow.custom_fields.definitions(location_id)
            policy = await uow.contacts.policy(location_id)
            own = await uow.contact_imports.matches((), (), job.open_groups) if job.open_groups else []
            now = self._clock.now()
            job.status, job.started_at, job.heartbeat_at, job.runner = (
                ImportStatus.RUNNING,
                job.started_at or now,
                now,
                self._runner,
            )
            await uow.contact_imports.save(job)
            await uow.commit()
        columns: dict[str, str] = {}
        for header, target in job.options.mapping.items():
            columns.setdefault(target, header)
        ctx = ImportContext(
            location,
            policy,
            definitions,
            columns,
            statistics_at=STATISTICS_FIRST,
            actor_id=actor.id,
            actor_type=actor.kind.value,
            own={c.id for c in own},
        )

        analysing: list[asyncio.Task[None]] = []

        async def write(size: int, prepared: list[Prepared], rejected: list[RowError]) -> None:
            await self._batch(actor, job, ctx, size, prepared, rejected)
            if job.counters.created >= ctx.statistics_at and all(t.done() for t in analysing):
                # On its own connection, beside the next batches (ANALYZE does not block their writes).
                analysing.append(asyncio.create_task(self._statistics(actor, job, ctx)))
            if progress is not None:
                progress(job.counters)

        # Two stages: while one batch is written (mostly waiting on the database), the next is read and
        # validated, a slice at a time so the writer's answers are taken up promptly. Batches are written
        # strictly one after another: each sees what the one before it wrote.
        writing: asyncio.Task[None] | None = None
        try:
            if not (ctx.policy.allow_duplicates and job.options.duplicates is DuplicateMode.CREATE):
                ctx.identities = await self._resolve(actor, job, ctx, rows)
                reopen_groups(ctx.identities, ctx.group_contacts, own)
            iterator = iter(rows)
            if resuming:
                await skip_rows(iterator, job.counters.processed)
            while chunk := list(itertools.islice(iterator, batch_size)):
                prepared, rejected = await self.rows.prepare_sliced(job, ctx, chunk)
                if writing is not None:
                    await writing
                writing = asyncio.create_task(write(len(chunk), prepared, rejected))
            if writing is not None:
                await writing
            await asyncio.gather(*analysing)
            if read_all is not None:
                read_all()
        except ImportTakenOver:
            await asyncio.gather(*analysing, return_exceptions=True)
            raise  # another run of the same import goes on: the import is its to finish
        except Exception as exc:
            # The file failed while a batch was being written: that batch commits or rolls back first
            # (its own failure, if any, is this one's consequence or already raised).
            await asyncio.gather(*([writing] if writing else []), *analysing, return_exceptions=True)
            job.status, job.failure, job.finished_at = ImportStatus.FAILED, str(exc), self._clock.now()
            async with self._uow(actor.scope) as uow:
                await uow.contact_imports.save(job)
                await uow.commit()
            raise
        job.status, job.finished_at = ImportStatus.DONE, self._clock.now()
        async with self._uow(actor.scope) as uow:
            await uow.contact_imports.save(job)
            await uow.commit()
        return job

    async def _resolve(
        self, actor: Actor, job: ContactImport, ctx: ImportContext, rows: Iterable[CsvRow]
    ) -> Identities | None:
        """The file's identity groups (ghl_core.contacts.import_identities), read before any batch."""
        read = self._row_identifiers(actor, job, ctx)
        return None if read is None else await resolve(rows, read, ctx.policy)

    def _row_identifiers(self, actor: Actor, job: ContactImport, ctx: ImportContext) -> RowIdentifiers | None:
        """How `resolve` reads this import's rows; None when no column holds an e-mail or a phone."""
        mapping = job.options.mapping
        email_column = next((h for h, target in mapping.items() if target == "email"), None)
        phone_column = next((h for h, target in mapping.items() if target == "phone"), None)
        if email_column is None and phone_column is None:
            return None
        region = ctx.location.country

        def exact(kind: str, text: str) -> str | None:
            try:
                value = clean_contact_fields({kind: text}, region, memo=ctx.memo).get(kind)
            except ValidationFailed:
                return None
            return str(value) if value else None

        def keys(row: CsvRow) -> tuple[str | None, str | None] | None:
            """Keys equal to the normalised identifiers; None when one is invalid (the row is rejected)."""
            email = phone = None
            if (text := row_cell(row.values, email_column)) and not (
                email := quick_email_key(text) or exact("email", text)
            ):
                return None
            if (text := row_cell(row.values, phone_column)) and not (
                phone := quick_phone_key(text, region) or exact("phone", text)
            ):
                return None
            return email, phone

        def validate(row: CsvRow) -> dict[str, Any] | None:
            checked = self.rows.validate(job, ctx, row)
            return checked if isinstance(checked, dict) else None

        async def lookup(emails: Sequence[str], phones: Sequence[str]) -> list[Contact]:
            async with self._uow(actor.scope) as uow:
                found = await uow.contact_imports.matches(emails, phones)
            # A resumed run's own groups' contacts are not contacts that existed before the import.
            return [c for c in found if c.id not in ctx.own] if ctx.own else found

        async def tick() -> None:
            await asyncio.sleep(0)
            if len(ctx.memo) > MEMO_CAP:
                ctx.memo.clear()
            now = self._clock.now()
            if job.heartbeat_at is None or now - job.heartbeat_at >= HEARTBEAT_EVERY:
                job.heartbeat_at = now
                async with self._uow(actor.scope) as uow:
                    await uow.contact_imports.save(job)
                    await uow.commit()

        return RowIdentifiers(keys, validate, lookup, tick)

    async def fail(self, actor: Actor, import_id: uuid.UUID, reason: str) -> None:
        """Marks an import that could not run (its file unreadable) as failed."""
        actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            job = await uow.contact_imports.get(import_id, 0)
            if job is None or job.status in (ImportStatus.DONE, ImportStatus.FAILED):
                return
            job.status, job.failure, job.finished_at = ImportStatus.FAILED, reason, self._clock.now()
            await uow.contact_imports.save(job)
            await uow.commit()

    async def _statistics(self, actor: Actor, job: ContactImport, ctx: ImportContext) -> None:
        if job.counters.created < ctx.statistics_at:
            return
        ctx.statistics_at = 2 * job.counters.created
        async with self._uow(actor.scope) as uow:
            await uow.contact_imports.refresh_statistics()
            await uow.commit()

    async def _batch(
        self,
        actor: Actor,
        job: ContactImport,
        ctx: ImportContext,
        size: int,
        prepared: list[Prepared],
        rejected: list[RowError],
    ) -> None:
        for attempt in range(_ATTEMPTS):
            try:
                async with self._uow(actor.scope) as uow:
                    await check_progress(uow.contact_imports, job, ctx.location.id)
                    plan = await self._write(uow, actor, job, ctx, prepared)
                    plan.errors = sorted([*rejected, *plan.errors], key=lambda e: e.line)
                    plan.counters.failed = len(plan.errors)
                    counters = job.counters
                    merged = ImportCounters(
                        processed=counters.processed + size,
                        created=counters.created + plan.counters.created,
                        updated=counters.updated + plan.counters.updated,
                        skipped=counters.skipped + plan.counters.skipped,
                        failed=counters.failed + plan.counters.failed,
                    )
                    room = max(0, ERROR_CAP - counters.failed)
                    saved = replace_job(job, merged, self._clock.now())
                    if ctx.identities is not None and job.source is not None:  # only resumed ones
                        saved.open_groups = (*{**ctx.group_contacts, **plan.group_contacts}.values(),)
                    await uow.contact_imports.save(saved, plan.errors[:room])
                    await uow.commit()
                job.counters, job.heartbeat_at = merged, saved.heartbeat_at
                job.open_groups = saved.open_groups
                ctx.group_contacts.update(plan.group_contacts)
                groups_written(ctx, prepared)
                return
            except (_Raced, DuplicateContact):
                if attempt + 1 < _ATTEMPTS:
                    continue
                # Still racing: reject the batch's rows; re-running the file picks them up safely.
                lost = [
                    RowError(line, "a concurrent change took its e-mail or phone; run again")
                    for line, *_ in prepared
                ]
                rejected = sorted([*rejected, *lost], key=lambda e: e.line)
                groups_written(ctx, prepared)
                prepared = []

    async def _write(
        self,
        uow: ContactImportsUnitOfWork,
        actor: Actor,
        job: ContactImport,
        ctx: ImportContext,
        prepared: list[Prepared],
    ) -> BatchPlan:
        repo = uow.contact_imports
        decisions = BatchDecisions(
            ctx.policy,
            job.options.duplicates,
            actor.id,
            self._clock.now(),
            ctx.identities,
            ctx.group_contacts,
        )
        plan = decisions.plan
        if not prepared:
            return plan
        emails = sorted({f["email"] for _, f, *_ in prepared if f.get("email")})
        phones = sorted({f["phone"] for _, f, *_ in prepared if f.get("phone")})
        # The contacts the rows' groups go to, which need not hold the rows' own identifiers.
        targets = sorted(
            {
                target
                for *_, group in prepared
                if group >= 0 and ctx.identities is not None
                for target in (ctx.identities.existing(group), ctx.group_contacts.get(group))
                if target is not None
            }
        )
        for contact in await repo.matches(emails, phones, targets):
            decisions.known(contact)
        drafts: dict[uuid.UUID, tuple[Contact, NewContactRows]] = {}
        for line, fields, draft, rows, group in prepared:
            drafts[draft.id] = (draft, rows)
            decisions.decide(line, fields, draft, group)
        now = self._clock.now()
        creates = [plan.states[i] for i in plan.created]
        updates = [plan.states[i] for i in plan.before]
        tags = sorted({t for c in [*creates, *updates] for t in c.tags})
        if tags:
            await uow.tags.ensure(ctx.location.id, tags)
        # A contact a later row of the batch changed again is written as it ended up.
        new = [
            rows if contact is draft else self.rows.new_rows(ctx, contact)
            for contact in creates
            for draft, rows in (drafts[contact.id],)
        ]
        if new and len(await repo.create_contacts(new)) != len(new):
            raise _Raced
        if updates:
            await repo.update_contacts(updates, ctx.policy)
            audit, events = update_records(actor, ctx.location, plan, now)
            await repo.record(audit, events)
        return plan


def replace_job(job: ContactImport, counters: ImportCounters, now: Any) -> ContactImport:
    return replace(job, counters=counters, heartbeat_at=now)
