"""The in-memory unit of work: every repository over one working set, in one tenant scope.

Like `ghl_adapters.sql.uow.SqlUnitOfWork` it holds every repository, so it satisfies every context's
narrow unit of work protocol at once (the attributes are typed as the core's ports, so mypy checks that).
Changes are visible to other units of work only after `commit()`; leaving `async with` without it
discards them (see `store.py` for the copy-on-write working set and how commits merge).

Row-level security lets the anonymous scope write nothing but an API key's last use; a commit in that
scope that changed anything else raises PermissionError, as the database would have refused the write.
"""

from __future__ import annotations

from types import TracebackType

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
from ghl_core.shared.recording import AuditLog, EventOutbox
from ghl_core.shared.scope import ScopeKind, TenantScope
from ghl_core.smart_lists.ports import SmartListRepository
from ghl_core.tags.ports import TagRepository
from ghl_core.tasks.ports import TaskRepository
from ghl_core.tenancy.ports import AgencyRepository, LocationRepository, UserRepository
from ghl_core.webhooks.ports import WebhookRepository
from ghl_core.workflows.ports import EnrollmentRepository, WorkflowRepository

from .campaigns import MemoryCampaignRepository, MemoryTemplateRepository
from .contact_imports import MemoryContactImportRepository
from .contact_search import MemoryContactSearch
from .contacts import MemoryContactRepository
from .conversations import (
    MemoryConversationRepository,
    MemoryMessageRepository,
    MemoryMessagingProviderRepository,
    MemoryMessagingSettingsRepository,
)
from .custom_fields import MemoryCustomFieldRepository
from .identity import (
    API_KEYS,
    MemoryApiKeyRepository,
    MemoryCredentialLookup,
    MemoryRefreshTokenRepository,
)
from .inbound import MemoryInboundEndpointRepository, MemoryInboundEventRepository
from .jobs import MemoryFailedJobRepository
from .notes_tasks import MemoryNoteRepository, MemoryTaskRepository
from .pipelines import MemoryOpportunityRepository, MemoryPipelineRepository
from .queue import JOBS, MemoryJobQueue, StagedJobQueue
from .recording import EVENTS, MemoryAuditLog, MemoryEventOutbox
from .smart_lists import MemorySmartListRepository
from .store import MemoryStore, WorkingSet
from .tags import MemoryTagRepository
from .tenancy import MemoryAgencyRepository, MemoryLocationRepository, MemoryUserRepository
from .webhooks import MemoryWebhookRepository
from .workflows import MemoryEnrollmentRepository, MemoryWorkflowRepository


class MemoryUnitOfWork:
    def __init__(self, store: MemoryStore, scope: TenantScope, queue: MemoryJobQueue) -> None:
        self.store = store
        self.scope = scope
        self.committed = False
        self._queue = queue
        self._work: WorkingSet | None = None
        self.agencies: AgencyRepository = MemoryAgencyRepository(self)
        self.locations: LocationRepository = MemoryLocationRepository(self)
        self.users: UserRepository = MemoryUserRepository(self)
        self.api_keys: ApiKeyRepository = MemoryApiKeyRepository(self)
        self.refresh_tokens: RefreshTokenRepository = MemoryRefreshTokenRepository(self)
        self.credentials: CredentialLookup = MemoryCredentialLookup(self)
        self.audit: AuditLog = MemoryAuditLog(self)
        self.events: EventOutbox = MemoryEventOutbox(self)
        self.jobs: JobQueue = StagedJobQueue(self, queue)
        self.failed_jobs: FailedJobRepository = MemoryFailedJobRepository(self)
        self.contacts: ContactRepository = MemoryContactRepository(self)
        self.contact_imports: ContactImportRepository = MemoryContactImportRepository(self)
        self.tags: TagRepository = MemoryTagRepository(self)
        self.custom_fields: CustomFieldRepository = MemoryCustomFieldRepository(self)
        self.contact_search: ContactSearch = MemoryContactSearch(self)
        self.smart_lists: SmartListRepository = MemorySmartListRepository(self)
        self.notes: NoteRepository = MemoryNoteRepository(self)
        self.tasks: TaskRepository = MemoryTaskRepository(self)
        self.pipelines: PipelineRepository = MemoryPipelineRepository(self)
        self.opportunities: OpportunityRepository = MemoryOpportunityRepository(self)
        self.webhooks: WebhookRepository = MemoryWebhookRepository(self)
        self.inbound_endpoints: InboundEndpointRepository = MemoryInboundEndpointRepository(self)
        self.inbound_events: InboundEventRepository = MemoryInboundEventRepository(self)
        self.conversations: ConversationRepository = MemoryConversationRepository(self)
        self.messages: MessageRepository = MemoryMessageRepository(self)
        self.messaging_providers: MessagingProviderRepository = MemoryMessagingProviderRepository(self)
        self.messaging_settings: MessagingSettingsRepository = MemoryMessagingSettingsRepository(self)
        self.templates: TemplateRepository = MemoryTemplateRepository(self)
        self.campaigns: CampaignRepository = MemoryCampaignRepository(self)
        self.workflows: WorkflowRepository = MemoryWorkflowRepository(self)
        self.enrollments: EnrollmentRepository = MemoryEnrollmentRepository(self)

    def working(self) -> WorkingSet:
        if self._work is None:
            raise RuntimeError("use the unit of work inside 'async with'")
        return self._work

    async def __aenter__(self) -> MemoryUnitOfWork:
        self._work = WorkingSet(self.store)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._work = None  # whatever was not committed is gone

    async def commit(self) -> None:
        work = self.working()
        if self.scope.kind is ScopeKind.ANONYMOUS:
            _check_anonymous_writes(work)
        # The events recorded here leave through jobs enqueued in this same transaction (as in SQL).
        consume = self._queue.consume_requests(work.added(EVENTS))
        if consume:
            await self.jobs.enqueue(*consume)
        enqueued = work.changed(JOBS.name)
        work.publish()
        self.store.commits += 1
        self.committed = True
        await self._queue.after_commit(enqueued)


def _check_anonymous_writes(work: WorkingSet) -> None:
    """Row-level security lets the anonymous scope write nothing but a key's last use."""
    for name in work.touched():
        if name != API_KEYS.name and work.changed(name):
            raise PermissionError(f"row-level security: the anonymous scope may not write to {name}")


class MemoryUnitOfWorkFactory:
    """The `UnitOfWorkFactory` of every context, over one store and one job queue."""

    def __init__(self, store: MemoryStore | None = None, queue: MemoryJobQueue | None = None) -> None:
        self.store = store or MemoryStore()
        self.queue = queue or MemoryJobQueue(self.store)
        self.scopes: list[TenantScope] = []  # every scope a unit of work was opened in

    def __call__(self, scope: TenantScope) -> MemoryUnitOfWork:
        self.scopes.append(scope)
        return MemoryUnitOfWork(self.store, scope, self.queue)
