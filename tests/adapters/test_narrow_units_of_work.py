"""Every unit of work we ship satisfies the narrow unit of work of each context (docs/architecture.md).

Checked twice: by mypy (the assignments below; `make lint` runs mypy over tests/), and at run time by
the names each protocol lists, on the in-memory unit of work."""

from __future__ import annotations

import pytest

from ghl_adapters.memory import MemoryUnitOfWorkFactory
from ghl_adapters.memory.uow import MemoryUnitOfWork
from ghl_adapters.sql.uow import SqlUnitOfWork
from ghl_core.audit.ports import AuditUnitOfWork
from ghl_core.contacts.exports import ExportUnitOfWork
from ghl_core.contacts.ports import ContactImportsUnitOfWork, ContactsUnitOfWork
from ghl_core.custom_fields.ports import CustomFieldsUnitOfWork
from ghl_core.identity.ports import IdentityUnitOfWork
from ghl_core.inbound.ports import InboundUnitOfWork
from ghl_core.jobs.ports import JobsUnitOfWork
from ghl_core.notes.ports import NotesUnitOfWork
from ghl_core.pipelines.ports import PipelinesUnitOfWork
from ghl_core.shared.scope import TenantScope
from ghl_core.smart_lists.ports import SmartListsUnitOfWork
from ghl_core.tags.ports import TagsUnitOfWork
from ghl_core.tasks.ports import TasksUnitOfWork
from ghl_core.tenancy.ports import TenancyUnitOfWork
from ghl_core.webhooks.ports import WebhooksUnitOfWork

NARROW = (
    AuditUnitOfWork,
    ContactImportsUnitOfWork,
    ContactsUnitOfWork,
    CustomFieldsUnitOfWork,
    ExportUnitOfWork,
    IdentityUnitOfWork,
    InboundUnitOfWork,
    JobsUnitOfWork,
    NotesUnitOfWork,
    PipelinesUnitOfWork,
    SmartListsUnitOfWork,
    TagsUnitOfWork,
    TasksUnitOfWork,
    TenancyUnitOfWork,
    WebhooksUnitOfWork,
)


def _sql_satisfies_them(uow: SqlUnitOfWork) -> None:
    """Never run: mypy checks each assignment."""
    audit: AuditUnitOfWork = uow
    imports: ContactImportsUnitOfWork = uow
    contacts: ContactsUnitOfWork = uow
    custom_fields: CustomFieldsUnitOfWork = uow
    exports: ExportUnitOfWork = uow
    identity: IdentityUnitOfWork = uow
    inbound: InboundUnitOfWork = uow
    jobs: JobsUnitOfWork = uow
    pipelines: PipelinesUnitOfWork = uow
    smart_lists: SmartListsUnitOfWork = uow
    tags: TagsUnitOfWork = uow
    notes: NotesUnitOfWork = uow
    tasks: TasksUnitOfWork = uow
    tenancy: TenancyUnitOfWork = uow
    webhooks: WebhooksUnitOfWork = uow
    del audit, imports, contacts, custom_fields, exports, identity, inbound, jobs, pipelines
    del smart_lists, tags, tenancy, webhooks, notes, tasks


def _memory_satisfies_them(uow: MemoryUnitOfWork) -> None:
    """Never run: mypy checks each assignment."""
    audit: AuditUnitOfWork = uow
    imports: ContactImportsUnitOfWork = uow
    contacts: ContactsUnitOfWork = uow
    custom_fields: CustomFieldsUnitOfWork = uow
    exports: ExportUnitOfWork = uow
    identity: IdentityUnitOfWork = uow
    inbound: InboundUnitOfWork = uow
    jobs: JobsUnitOfWork = uow
    pipelines: PipelinesUnitOfWork = uow
    smart_lists: SmartListsUnitOfWork = uow
    tags: TagsUnitOfWork = uow
    notes: NotesUnitOfWork = uow
    tasks: TasksUnitOfWork = uow
    tenancy: TenancyUnitOfWork = uow
    webhooks: WebhooksUnitOfWork = uow
    del audit, imports, contacts, custom_fields, exports, identity, inbound, jobs, pipelines
    del smart_lists, tags, tenancy, webhooks, notes, tasks


def _members(protocol: type) -> set[str]:
    names: set[str] = set()
    for klass in protocol.__mro__:
        names |= set(getattr(klass, "__annotations__", {}))
        names |= {n for n, v in vars(klass).items() if isinstance(v, property)}
    return names


@pytest.mark.parametrize("protocol", NARROW, ids=lambda p: p.__name__)
async def test_the_memory_unit_of_work_holds_what_each_context_names(protocol: type) -> None:
    async with MemoryUnitOfWorkFactory()(TenantScope.operator()) as uow:
        missing = sorted(n for n in _members(protocol) if not hasattr(uow, n))
    assert missing == []
