"""The adapters and the services of the lower contexts (tenancy to pipelines) on the in-memory adapters;
`container.py` adds conversations, campaigns, inbound, webhooks and workflows on top, and
`build_memory_container()`.

Decisions:
- A plain object with one lazily built attribute per service (`functools.cached_property`), named as the
  providers of `ghl_adapters.container.Container` are, so code written against one reads the other. No
  dependency-injector here: an embedder swaps an adapter by passing it in (`clock`, `hasher`, `gateways`,
  ...) or by replacing an attribute before first use.
- SMS and e-mail go to the local outbox (`OutboxGateway`), the embedded default: every message is
  recorded as delivered and nothing leaves the process. `gateways=` takes a real factory instead.
- Jobs run on a `MemoryJobQueue`: inline after each commit when `inline_jobs` (the default), else when
  the embedder calls `container.queue.run_pending()`. The message jobs are registered; other kinds stay
  pending until the embedder registers a handler.
- Caching goes through the clocked in-memory cache, so moving a `FixedClock` expires entries too.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import cached_property

from ghl_adapters.identity.passwords import Argon2PasswordHasher
from ghl_adapters.identity.secretbox import AesGcmSecretBox
from ghl_adapters.identity.tokens import JwtAccessTokenCodec
from ghl_adapters.messaging.outbox import OutboxGateway
from ghl_adapters.messaging.templates import JinjaTemplateRenderer, Nh3HtmlSanitizer
from ghl_adapters.webhooks.resolver import DnsResolver
from ghl_adapters.webhooks.sender import HttpxWebhookSender
from ghl_adapters.webhooks.signing import StandardWebhooksSigner
from ghl_core.audit.services import AuditService
from ghl_core.contacts.exports import ContactExportService
from ghl_core.contacts.imports import ContactImportService
from ghl_core.contacts.search import ContactSearchService
from ghl_core.contacts.selection import ContactFinder
from ghl_core.contacts.services import ContactService
from ghl_core.conversations.gateways import EmailGateway, SmsGateway
from ghl_core.conversations.providers import GatewayFactory, ProviderConfig
from ghl_core.custom_fields.services import CustomFieldService
from ghl_core.identity.api_keys import ApiKeyService
from ghl_core.identity.auth import AuthService
from ghl_core.jobs.services import JobService
from ghl_core.notes.services import NoteService
from ghl_core.pipelines.opportunities import OpportunityService
from ghl_core.pipelines.services import PipelineService
from ghl_core.shared.cache import ReadCache
from ghl_core.shared.clock import Clock, SystemClock
from ghl_core.smart_lists.services import SmartListService
from ghl_core.tags.services import TagService
from ghl_core.tasks.services import TaskService
from ghl_core.tenancy.plans import PlanCatalog
from ghl_core.tenancy.ports import PasswordHasher
from ghl_core.tenancy.services import TenancyService
from ghl_core.webhooks.addresses import UrlGuard

from .clocked import MemoryCache, MemoryFailureCounter
from .contact_imports import MemoryNewContactEncoder
from .queue import MemoryJobQueue
from .store import MemoryStore
from .uow import MemoryUnitOfWorkFactory


class OutboxGateways:
    """A `GatewayFactory` that hands every message to the local outbox, whatever is configured."""

    def __init__(self, clock: Clock) -> None:
        self._outbox = OutboxGateway(clock)

    def sms(self, config: ProviderConfig | None) -> SmsGateway:
        return self._outbox

    def email(self, config: ProviderConfig | None) -> EmailGateway:
        return self._outbox


class CoreServices:
    def __init__(
        self,
        *,
        clock: Clock | None = None,
        secret_key: str | None = None,
        hasher: PasswordHasher | None = None,
        gateways: GatewayFactory | None = None,
        plans: PlanCatalog | None = None,
        inline_jobs: bool = True,
        allow_private_webhooks: bool = False,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        # None: a key of this process's own (tokens and sealed secrets then last as long as the store).
        self.secret_key = secret_key or secrets.token_urlsafe(48)
        self.store = MemoryStore(self.clock)
        self.queue = MemoryJobQueue(self.store, inline=inline_jobs)
        self.uow = MemoryUnitOfWorkFactory(self.store, self.queue)
        self.plans = plans or PlanCatalog()
        self.password_hasher: PasswordHasher = hasher or Argon2PasswordHasher()
        self.gateways: GatewayFactory = gateways or OutboxGateways(self.clock)
        self.read_cache = ReadCache(MemoryCache(self.clock))
        self.failure_counter = MemoryFailureCounter(self.clock)
        self.allow_private_webhooks = allow_private_webhooks

    # -- adapters ------------------------------------------------------------------------------------
    @cached_property
    def access_tokens(self) -> JwtAccessTokenCodec:
        return JwtAccessTokenCodec(self.secret_key, clock=self.clock)

    @cached_property
    def secret_box(self) -> AesGcmSecretBox:
        return AesGcmSecretBox.from_secret(self.secret_key)

    @cached_property
    def webhook_guard(self) -> UrlGuard:
        return UrlGuard(DnsResolver(), allow_private=self.allow_private_webhooks)

    @cached_property
    def webhook_sender(self) -> HttpxWebhookSender:
        return HttpxWebhookSender()

    @cached_property
    def webhook_signer(self) -> StandardWebhooksSigner:
        return StandardWebhooksSigner()

    @cached_property
    def html_sanitizer(self) -> Nh3HtmlSanitizer:
        return Nh3HtmlSanitizer()

    @cached_property
    def base_renderer(self) -> JinjaTemplateRenderer:
        return JinjaTemplateRenderer()

    @cached_property
    def link_key(self) -> bytes:
        # Derived as the SQL container derives it (ghl_adapters.container._link_signer).
        return hashlib.sha256(b"ghl links v1\x00" + self.secret_key.encode()).digest()

    # -- tenancy, identity, audit, jobs --------------------------------------------------------------
    @cached_property
    def tenancy(self) -> TenancyService:
        return TenancyService(self.uow, self.clock, self.password_hasher, self.read_cache)

    @cached_property
    def api_keys(self) -> ApiKeyService:
        return ApiKeyService(self.uow, self.clock, self.read_cache, self.plans)

    @cached_property
    def auth(self) -> AuthService:
        return AuthService(
            self.uow,
            self.clock,
            self.password_hasher,
            self.access_tokens,
            self.failure_counter,
            [],
            cache=self.read_cache,
        )

    @cached_property
    def audit(self) -> AuditService:
        return AuditService(self.uow)

    @cached_property
    def jobs(self) -> JobService:
        return JobService(self.uow)

    # -- contacts and what hangs off them -----------------------------------------------------------
    @cached_property
    def contacts(self) -> ContactService:
        return ContactService(self.uow, self.clock, self.read_cache)

    @cached_property
    def contact_imports(self) -> ContactImportService:
        encoder = MemoryNewContactEncoder(self.store)
        return ContactImportService(self.uow, self.clock, encoder, cache=self.read_cache)

    @cached_property
    def contact_exports(self) -> ContactExportService:
        return ContactExportService(self.uow, self.clock, cache=self.read_cache)

    @cached_property
    def contact_finder(self) -> ContactFinder:
        return ContactFinder(self.uow, self.clock, self.read_cache)

    @cached_property
    def contact_search(self) -> ContactSearchService:
        return ContactSearchService(self.uow, self.read_cache)

    @cached_property
    def smart_lists(self) -> SmartListService:
        return SmartListService(self.uow, self.clock, self.read_cache)

    @cached_property
    def tag_service(self) -> TagService:
        return TagService(self.uow, self.clock)

    @cached_property
    def custom_field_service(self) -> CustomFieldService:
        return CustomFieldService(self.uow, self.clock, self.read_cache)

    @cached_property
    def notes(self) -> NoteService:
        return NoteService(self.uow, self.clock)

    @cached_property
    def tasks(self) -> TaskService:
        return TaskService(self.uow, self.clock)

    @cached_property
    def pipelines(self) -> PipelineService:
        return PipelineService(self.uow, self.clock)

    @cached_property
    def opportunities(self) -> OpportunityService:
        return OpportunityService(self.uow, self.clock)
