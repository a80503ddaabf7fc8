"""The old unit of work that knows every repository. Being retired: each context declares its own narrow
unit of work in its ports.py on top of `ghl_core.shared.uow.Transaction`; this module goes when nothing
imports it."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from ghl_core.audit.ports import AuditLog, EventOutbox
from ghl_core.campaigns.ports import CampaignRepository, TemplateRepository
from ghl_core.contacts.import_models import ContactImportRepository
from ghl_core.contacts.ports import ContactRepository
from ghl_core.contacts.search import ContactSearch
from ghl_core.conversations.ports import (
    ConversationRepository,
    MessageRepository,
    MessagingProviderRepository,
    MessagingSettingsRepository,
)
from ghl_core.custom_fields.ports import CustomFieldRepository
from ghl_core.identity.repositories import ApiKeyRepository, CredentialLookup, RefreshTokenRepository
from ghl_core.inbound.ports import InboundEndpointRepository, InboundEventRepository
from ghl_core.jobs.models import FailedJobRepository
from ghl_core.jobs.ports import JobQueue
from ghl_core.notes.ports import NoteRepository
from ghl_core.pipelines.ports import OpportunityRepository, PipelineRepository
from ghl_core.shared.scope import TenantScope
from ghl_core.smart_lists.ports import SmartListRepository
from ghl_core.tags.ports import TagRepository
from ghl_core.tasks.ports import TaskRepository
from ghl_core.tenancy.ports import AgencyRepository, LocationRepository, UserRepository
from ghl_core.webhooks.ports import WebhookRepository
from ghl_core.workflows.ports import EnrollmentRepository, WorkflowRepository


class UnitOfWork(Protocol):
    scope: TenantScope
    agencies: AgencyRepository
    locations: LocationRepository
    users: UserRepository
    api_keys: ApiKeyRepository
    refresh_tokens: RefreshTokenRepository
    credentials: CredentialLookup
    audit: AuditLog
    events: EventOutbox
    jobs: JobQueue
    failed_jobs: FailedJobRepository
    contacts: ContactRepository
    contact_imports: ContactImportRepository
    tags: TagRepository
    custom_fields: CustomFieldRepository
    contact_search: ContactSearch
    smart_lists: SmartListRepository
    notes: NoteRepository
    tasks: TaskRepository
    pipelines: PipelineRepository
    opportunities: OpportunityRepository
    webhooks: WebhookRepository
    inbound_endpoints: InboundEndpointRepository
    inbound_events: InboundEventRepository
    conversations: ConversationRepository
    messages: MessageRepository
    messaging_providers: MessagingProviderRepository
    messaging_settings: MessagingSettingsRepository
    templates: TemplateRepository
    campaigns: CampaignRepository
    workflows: WorkflowRepository
    enrollments: EnrollmentRepository

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Rolls back whatever was not committed."""
        ...

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, scope: TenantScope) -> UnitOfWork: ...
