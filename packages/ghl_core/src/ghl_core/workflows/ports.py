"""Repositories of workflows, versions, enrollments and the execution ledger, and the unit of work the
workflows context takes.

Workflows is the top layer: a step changes a contact, its tags or do-not-disturb, or queues a message
through that context's service, in the step's own transaction (the change, its audit row and events,
the ledger row and the move commit together). So `WorkflowsUnitOfWork` is the union of the narrow units
of work of the services the steps call in that transaction, plus workflows' own repositories and what
publishing checks (pipelines, custom fields) and bulk enrollment searches (contact search, smart lists).
The SQL and in-memory units of work hold every repository, so they satisfy it."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ghl_core.contacts.ports import ContactRepository, ContactsUnitOfWork
from ghl_core.contacts.selection import SelectionUnitOfWork
from ghl_core.conversations.ports import ConversationRepository, MessageRepository, SendingUnitOfWork
from ghl_core.jobs.ports import JobQueue
from ghl_core.pipelines.ports import OpportunityRepository, PipelineRepository
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.tags.ports import TagRepository, TagsUnitOfWork
from ghl_core.tenancy.ports import LocationRepository
from ghl_core.workflows.models import (
    Enrollment,
    EnrollmentStatus,
    StepRun,
    Workflow,
    WorkflowVersion,
)


class WorkflowRepository(Protocol):
    async def add(self, workflow: Workflow) -> None: ...

    async def get(self, workflow_id: uuid.UUID, *, lock: bool = False) -> Workflow | None:
        """Deleted ones too (the caller decides); `lock`: FOR UPDATE."""
        ...

    async def update(self, workflow: Workflow) -> None: ...

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Workflow]:
        """Newest first (created_at DESC, id DESC), without deleted ones; keyset cursor."""
        ...

    async def add_version(self, version: WorkflowVersion) -> None: ...

    async def version(self, workflow_id: uuid.UUID, version: int) -> WorkflowVersion | None: ...

    async def versions(self, workflow_id: uuid.UUID) -> builtins.list[WorkflowVersion]:
        """Newest first."""
        ...

    async def published(self, location_id: uuid.UUID) -> builtins.list[WorkflowVersion]:
        """The current version of every published, not deleted workflow of the location."""
        ...


class EnrollmentRepository(Protocol):
    async def add(self, enrollment: Enrollment) -> bool:
        """False (and nothing written) when the workflow already has an enrollment with the same cause
        (a unique index, so a redelivered trigger never enrolls twice)."""
        ...

    async def add_exclusive(self, enrollment: Enrollment) -> bool:
        """`add`, also refused (False) while the contact has a running (active/waiting) enrollment in the
        workflow: a partial unique index, so concurrent enrollments of one contact never make two."""
        ...

    async def get(self, enrollment_id: uuid.UUID, *, lock: bool = False) -> Enrollment | None: ...

    async def update(self, enrollment: Enrollment) -> None: ...

    async def running_for_contact(
        self, location_id: uuid.UUID, contact_id: uuid.UUID
    ) -> builtins.list[Enrollment]:
        """Active and waiting enrollments of the contact in every workflow, locked FOR UPDATE in id order
        (two transactions never deadlock on them)."""
        ...

    async def running_in_workflow(self, workflow_id: uuid.UUID, contact_id: uuid.UUID) -> Enrollment | None:
        """The contact's running enrollment in the workflow (locked), if any."""
        ...

    async def stop_all(
        self,
        *,
        workflow_id: uuid.UUID | None = None,
        contact_id: uuid.UUID | None = None,
        location_id: uuid.UUID,
        reason: str,
        now: datetime,
    ) -> int:
        """Sets every running enrollment of the workflow (or the contact, or both) to stopped with the
        reason, set-based; answers how many."""
        ...

    async def list(
        self,
        workflow_id: uuid.UUID,
        page: PageRequest,
        *,
        status: EnrollmentStatus | None = None,
        contact_id: uuid.UUID | None = None,
    ) -> Page[Enrollment]:
        """Newest first (started_at DESC, id DESC); keyset cursor."""
        ...

    async def counts(self, workflow_id: uuid.UUID) -> dict[EnrollmentStatus, int]: ...

    async def claim_step(self, run: StepRun) -> StepRun | None:
        """Inserts the ledger row (status running) unless one exists for (enrollment, step, tick);
        answers the existing row in that case, None when this call inserted it."""
        ...

    async def finish_step(self, run: StepRun) -> None:
        """Writes status, outcome, detail, output, error, finished_at of the row (enrollment, step, tick)."""
        ...

    async def add_steps(self, runs: Sequence[StepRun]) -> None:
        """Inserts finished rows (goals reached, stops) ignoring any that exist already."""
        ...

    async def history(self, enrollment_id: uuid.UUID) -> builtins.list[StepRun]:
        """In order of tick (then started_at)."""
        ...

    async def step_counts(self, workflow_id: uuid.UUID) -> dict[str, dict[str, int]]:
        """step id -> step-run status -> count."""
        ...


class WorkflowsUnitOfWork(
    ContactsUnitOfWork, TagsUnitOfWork, SendingUnitOfWork, SelectionUnitOfWork, Protocol
):
    """What workflows touch in one transaction (see the module's docstring)."""

    locations: LocationRepository
    contacts: ContactRepository
    tags: TagRepository
    conversations: ConversationRepository
    messages: MessageRepository
    jobs: JobQueue
    opportunities: OpportunityRepository
    pipelines: PipelineRepository
    workflows: WorkflowRepository
    enrollments: EnrollmentRepository
