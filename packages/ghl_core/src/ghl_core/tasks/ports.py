"""Repository of the tasks context."""

from __future__ import annotations

import uuid
from typing import Protocol

from ghl_core.notes.records import ContactRecordsUnitOfWork
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.tasks.models import Task, TaskFilter
from ghl_core.tenancy.ports import AssigneesUnitOfWork


class TaskRepository(Protocol):
    async def add(self, task: Task) -> bool:
        """Stores it unless a task with its id exists (in any location): then False, nothing stored."""
        ...

    async def update(self, task: Task) -> None: ...

    async def get(self, task_id: uuid.UUID, *, lock: bool = False) -> Task | None:
        """Soft-deleted tasks too; callers decide. `lock` holds the row until the transaction ends, so
        two concurrent completions apply one after the other (and only one sees the transition)."""
        ...

    async def list_for_contact(self, contact_id: uuid.UUID, page: PageRequest) -> Page[Task]:
        """Live tasks of the contact, soonest due first, those without a due time last."""
        ...

    async def list(self, filter: TaskFilter, page: PageRequest) -> Page[Task]:
        """Live tasks of the scope's location whose contact is live, in the same order as above."""
        ...


class TasksUnitOfWork(ContactRecordsUnitOfWork, AssigneesUnitOfWork, Protocol):
    """What the tasks context touches in one transaction."""

    @property
    def tasks(self) -> TaskRepository: ...
