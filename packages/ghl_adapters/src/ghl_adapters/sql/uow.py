"""The SQL unit of work: one connection, one transaction, the tenant scope set with SET LOCAL."""

from __future__ import annotations

import uuid
from types import TracebackType

from procrastinate import App
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ghl_adapters.jobs.events import consume_jobs, write_outbox
from ghl_adapters.jobs.queue import ProcrastinateJobQueue
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
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.scope import ScopeKind, TenantScope
from ghl_core.smart_lists.ports import SmartListRepository
from ghl_core.tags.ports import TagRepository
from ghl_core.tasks.ports import TaskRepository
from ghl_core.tenancy.ports import AgencyRepository, LocationRepository, UserRepository
from ghl_core.webhooks.ports import WebhookRepository
from ghl_core.workflows.ports import EnrollmentRepository, WorkflowRepository

from .audit import SqlAuditLog, SqlEventOutbox
from .campaigns import SqlCampaignRepository, SqlTemplateRepository
from .contact_imports import SqlContactImportRepository
from .contact_search import SqlContactSearch
from .contacts import SqlContactRepository
from .conversations import SqlConversationRepository
from .custom_fields import SqlCustomFieldRepository
from .engines import Engines
from .identity import SqlApiKeyRepository, SqlCredentialLookup, SqlRefreshTokenRepository
from .inbound import SqlInboundEndpointRepository, SqlInboundEventRepository
from .jobs import SqlFailedJobRepository
from .messages import SqlMessageRepository
from .messaging import SqlMessagingProviderRepository, SqlMessagingSettingsRepository
from .notes_tasks import SqlNoteRepository, SqlTaskRepository
from .pipelines import SqlOpportunityRepository, SqlPipelineRepository
from .repositories import SqlAgencyRepository, SqlLocationRepository, SqlUserRepository
from .request_context import current_request_id
from .smart_lists import SqlSmartListRepository
from .tags import SqlTagRepository
from .webhooks import SqlWebhookRepository
from .workflows import SqlEnrollmentRepository, SqlWorkflowRepository


def _uuid_literal(value: uuid.UUID | None) -> str:
    """A UUID as a quoted SQL literal, rebuilt from its 128-bit value: nothing but hex digits and dashes
    can reach the statement, whatever object the scope holds."""
    if value is None:
        return "''"
    if not isinstance(value, uuid.UUID):
        raise TypeError(f"a tenant scope id must be a uuid.UUID, not {type(value).__name__}")
    return f"'{uuid.UUID(int=value.int)}'"


def scope_statement(scope: TenantScope) -> str:
    """BEGIN and the transaction-local tenant settings, as one simple-query message: one round trip
    where psycopg's own BEGIN and a bound set_config took two. The ids are formatted as literals
    because a simple-query message carries no parameters (and a parameterized message holds one
    statement); `_uuid_literal` admits UUID objects only."""
    return (
        "BEGIN; SELECT set_config('app.agency_id', "
        f"{_uuid_literal(scope.agency_id)}, true), "
        f"set_config('app.location_id', {_uuid_literal(scope.location_id)}, true)"
    )


class SqlUnitOfWork:
    # Each repository is typed by its port, not by its SQL class: a protocol's attribute is invariant, so
    # only these types let this unit of work satisfy every context's narrow unit of work protocol (and mypy
    # checks here that each SQL repository implements its port).
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
    _outbox: SqlEventOutbox  # the events, as the SQL class that holds what commit() writes out

    def __init__(self, engines: Engines, scope: TenantScope, jobs: App) -> None:
        self.scope = scope
        self._engines = engines
        self._jobs_app = jobs
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        engine = self._engines.owner if self.scope.kind is ScopeKind.OPERATOR else self._engines.app
        conn = await self._begin(engine)
        self._conn = conn
        self.agencies = SqlAgencyRepository(conn)
        self.locations = SqlLocationRepository(conn)
        self.users = SqlUserRepository(conn)
        self.api_keys = SqlApiKeyRepository(conn)
        self.refresh_tokens = SqlRefreshTokenRepository(conn)
        self.credentials = SqlCredentialLookup(conn)
        self.audit = SqlAuditLog(conn, current_request_id())
        self._outbox = SqlEventOutbox(conn)
        self.events = self._outbox
        self.jobs = ProcrastinateJobQueue(conn, self._jobs_app)
        self.failed_jobs = SqlFailedJobRepository(conn)
        self.contacts = SqlContactRepository(conn)
        self.contact_imports = SqlContactImportRepository(conn, current_request_id(), self.events)
        self.tags = SqlTagRepository(conn)
        self.custom_fields = SqlCustomFieldRepository(conn)
        self.contact_search = SqlContactSearch(conn)
        self.smart_lists = SqlSmartListRepository(conn)
        self.notes = SqlNoteRepository(conn)
        self.tasks = SqlTaskRepository(conn)
        self.pipelines = SqlPipelineRepository(conn)
        self.opportunities = SqlOpportunityRepository(conn)
        self.webhooks = SqlWebhookRepository(conn)
        self.inbound_endpoints = SqlInboundEndpointRepository(conn)
        self.inbound_events = SqlInboundEventRepository(conn)
        self.conversations = SqlConversationRepository(conn)
        self.messages = SqlMessageRepository(conn)
        self.messaging_providers = SqlMessagingProviderRepository(conn)
        self.messaging_settings = SqlMessagingSettingsRepository(conn)
        self.templates = SqlTemplateRepository(conn)
        self.campaigns = SqlCampaignRepository(conn)
        self.workflows = SqlWorkflowRepository(conn)
        self.enrollments = SqlEnrollmentRepository(conn)
        return self

    async def _begin(self, engine: AsyncEngine) -> AsyncConnection:
        scoped = self.scope.kind in (ScopeKind.AGENCY, ScopeKind.LOCATION)
        for attempt in (1, 2):
            conn = await engine.connect()
            try:
                if not scoped:
                    # Anonymous and operator need no statement; psycopg sends BEGIN before the first one.
                    await conn.begin()
                    return conn
                # The driver leaves transactions to us (autocommit) for this checkout only: the pool puts
                # its default back at check-in. Our own BEGIN then travels with the scope, and COMMIT or
                # ROLLBACK (sent because the server is in a transaction) end both: the settings are
                # transaction-local, so a pooled connection starts its next transaction with none.
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.begin()
                await conn.exec_driver_sql(scope_statement(self.scope))
                return conn
            except DBAPIError as error:
                await conn.close()
                # A pooled connection used within the ping window may have died since (see engines.py):
                # nothing has run yet, so start over once on a fresh one (the pool was invalidated).
                if attempt == 2 or not error.connection_invalidated:
                    raise
            except BaseException:
                await conn.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                await conn.rollback()
        finally:
            await conn.close()

    @property
    def recorded_events(self) -> list[DomainEvent]:
        """The events recorded in this unit and not written out yet: what commit() hands to the outbox."""
        return self._outbox.recorded

    @property
    def connection(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    async def commit(self) -> None:
        # The events recorded here leave through jobs enqueued in this same transaction: both exist, or
        # (rolled back) neither does.
        if self._outbox.recorded:
            needed = await write_outbox(self.connection, self._outbox.recorded)
            await self.jobs.enqueue(*consume_jobs(needed))
            self._outbox.recorded.clear()
        # The tenant settings were SET LOCAL: they end with this transaction, so the unit of work ends too.
        await self.connection.commit()


class SqlUnitOfWorkFactory:
    def __init__(self, engines: Engines, jobs: App) -> None:
        self._engines = engines
        self._jobs = jobs

    def __call__(self, scope: TenantScope) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engines, scope, self._jobs)
