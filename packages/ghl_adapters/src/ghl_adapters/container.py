"""The composition root: the only place adapters are built. Shells ask it for services."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from dependency_injector import containers, providers
from redis.asyncio import BlockingConnectionPool, Redis

from ghl_adapters.cache import wiring as cache_wiring
from ghl_adapters.identity import Argon2PasswordHasher, ClerkJwtVerifier, JwtAccessTokenCodec
from ghl_adapters.identity.secretbox import AesGcmSecretBox
from ghl_adapters.imports.runner import ContactImportRunner
from ghl_adapters.inbound.wiring import build_inbound_registry
from ghl_adapters.jobs.admin import JobAdmin
from ghl_adapters.jobs.catalog import job_kinds as platform_job_kinds
from ghl_adapters.jobs.queue import procrastinate_app
from ghl_adapters.messaging.configs import (
    SendGridConfig,
    SmtpConfig,
    SmtpSecurity,
    TwilioConfig,
    VendorConfigCodec,
)
from ghl_adapters.messaging.factory import SdkGatewayFactory
from ghl_adapters.messaging.templates import JinjaTemplateRenderer, Nh3HtmlSanitizer
from ghl_adapters.observability import HttpMetrics
from ghl_adapters.ratelimit import (
    InMemoryFailureCounter,
    InMemoryRateLimiter,
    RedisFailureCounter,
    RedisRateLimiter,
)
from ghl_adapters.settings import Settings
from ghl_adapters.sql.contact_imports import encode_new_contact, pending_sources
from ghl_adapters.sql.engines import Engines, create_engines
from ghl_adapters.sql.idempotency import SqlIdempotencyStore
from ghl_adapters.sql.uow import SqlUnitOfWorkFactory
from ghl_adapters.uploads import UploadSpool
from ghl_adapters.webhooks import DnsResolver, HttpxWebhookSender, StandardWebhooksSigner
from ghl_core.audit.services import AuditService
from ghl_core.campaigns.services import CampaignService, TemplateService
from ghl_core.contacts.exports import ContactExportService
from ghl_core.contacts.imports import ContactImportService
from ghl_core.contacts.search import ContactSearchService
from ghl_core.contacts.selection import ContactFinder
from ghl_core.contacts.services import ContactService
from ghl_core.conversations.composing import OutboundComposer
from ghl_core.conversations.configs import ProviderConfigs
from ghl_core.conversations.delivery import DeliveryService
from ghl_core.conversations.dispatch import ProviderCalls
from ghl_core.conversations.inbox import InboxService
from ghl_core.conversations.links import LinkSigner
from ghl_core.conversations.models import Channel
from ghl_core.conversations.quota import SendQuota
from ghl_core.conversations.receiving import ReceivingService
from ghl_core.conversations.reports import ReportService
from ghl_core.conversations.sender import MessageSender
from ghl_core.conversations.sending import SendingService
from ghl_core.conversations.setup import MessagingSetupService
from ghl_core.conversations.templates import SanitizingRenderer
from ghl_core.custom_fields.services import CustomFieldService
from ghl_core.identity.api_keys import ApiKeyService
from ghl_core.identity.auth import AuthService
from ghl_core.identity.ports import ExternalTokenVerifier, FailureCounter
from ghl_core.inbound.endpoints import InboundEndpointService
from ghl_core.inbound.services import InboundService
from ghl_core.jobs.services import JobService
from ghl_core.notes.services import NoteService
from ghl_core.pipelines.opportunities import OpportunityService
from ghl_core.pipelines.services import PipelineService
from ghl_core.shared.cache import ReadCache
from ghl_core.shared.clock import SystemClock
from ghl_core.shared.ratelimit import RateLimiter
from ghl_core.smart_lists.services import SmartListService
from ghl_core.tags.services import TagService
from ghl_core.tasks.services import TaskService
from ghl_core.tenancy.plans import PlanCatalog
from ghl_core.tenancy.services import TenancyService
from ghl_core.webhooks.addresses import UrlGuard
from ghl_core.webhooks.services import WebhookService
from ghl_core.workflows.engine import StepServices, WorkflowEngine
from ghl_core.workflows.services import WorkflowService

REDIS_MAX_CONNECTIONS = 100


def _redis(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    # A blocking pool: a burst of more concurrent requests than the pool holds waits (up to 2 s) for a
    # connection instead of failing with MaxConnectionsError, which the default pool raises at once.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=2,
        socket_connect_timeout=2,
        socket_timeout=2,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


def _rate_limiter(redis: Redis | None) -> RateLimiter:
    return RedisRateLimiter(redis) if redis is not None else InMemoryRateLimiter()


def _failure_counter(redis: Redis | None) -> FailureCounter:
    return RedisFailureCounter(redis) if redis is not None else InMemoryFailureCounter()


def _external_verifiers(settings: Settings) -> list[ExternalTokenVerifier]:
    if settings.clerk_publishable_key:
        return [
            ClerkJwtVerifier.from_publishable_key(
                settings.clerk_publishable_key,
                jwks_url=settings.clerk_jwks_url,
                authorized_parties=settings.clerk_authorized_parties,
            )
        ]
    return []


def _link_signer(secret_key: str) -> LinkSigner:
    # A key of its own, derived from the platform secret, so a link MAC never doubles as anything else.
    return LinkSigner(hashlib.sha256(b"ghl links v1\x00" + secret_key.encode()).digest())


def platform_providers(settings: Settings) -> dict[Channel, TwilioConfig | SendGridConfig | SmtpConfig]:
    """The platform-wide providers from the environment, for locations (and agencies) that configure
    none: Twilio for SMS; SendGrid, else SMTP, for e-mail. Incomplete settings configure nothing
    (`ghl doctor` says what is missing)."""
    s = settings
    found: dict[Channel, TwilioConfig | SendGridConfig | SmtpConfig] = {}
    if (
        s.twilio_account_sid
        and s.twilio_auth_token
        and (s.twilio_from_number or s.twilio_messaging_service_sid)
    ):
        found[Channel.SMS] = TwilioConfig(
            account_sid=s.twilio_account_sid,
            auth_token=s.twilio_auth_token.get_secret_value(),
            from_number=s.twilio_from_number,
            messaging_service_sid=s.twilio_messaging_service_sid,
        )
    if s.sendgrid_api_key and s.sendgrid_from_email:
        found[Channel.EMAIL] = SendGridConfig(
            api_key=s.sendgrid_api_key.get_secret_value(),
            from_email=s.sendgrid_from_email,
            from_name=s.sendgrid_from_name,
            event_webhook_public_key=s.sendgrid_webhook_public_key,
            inbound_parse_public_key=s.sendgrid_parse_public_key,
        )
    elif s.smtp_host and s.smtp_from_email:
        found[Channel.EMAIL] = SmtpConfig(
            host=s.smtp_host,
            port=s.smtp_port,
            from_email=s.smtp_from_email,
            from_name=s.smtp_from_name,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            security=SmtpSecurity(s.smtp_security),
        )
    return found


def _plans(settings: Settings) -> PlanCatalog:
    return PlanCatalog.from_overrides(settings.plan_limits)


def _token_ttl(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.access_token_minutes)


def _upload_spool(settings: Settings) -> UploadSpool:
    return UploadSpool(Path(settings.data_dir).expanduser().resolve() / "spool" / "imports")


def _pending_imports(engines: Engines) -> Callable[[], Awaitable[set[str]]]:
    return lambda: pending_sources(engines.owner)


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    database_url = providers.Dependency(instance_of=str)
    secret_key = providers.Dependency(instance_of=str)

    clock = providers.Singleton(SystemClock)
    plans = providers.Singleton(_plans, settings)
    engines = providers.Singleton(
        create_engines,
        database_url,
        pool_size=settings.provided.db_pool_size,
        app_database_url=settings.provided.app_database_url,
    )
    job_app = providers.Singleton(procrastinate_app, database_url)
    uow = providers.Singleton(SqlUnitOfWorkFactory, engines, job_app)
    redis = providers.Singleton(_redis, settings)
    rate_limiter = providers.Singleton(_rate_limiter, redis)
    failure_counter = providers.Singleton(_failure_counter, redis)
    cache_bus = providers.Singleton(cache_wiring.cache_bus, settings, redis, database_url, engines)
    cache = providers.Singleton(cache_wiring.cache, settings, redis, cache_bus)
    read_cache = providers.Singleton(ReadCache, cache, settings.provided.cache_ttl_seconds)
    idempotency = providers.Singleton(SqlIdempotencyStore, uow, clock)
    metrics = providers.Singleton(HttpMetrics)

    password_hasher = providers.Singleton(Argon2PasswordHasher)
    access_tokens = providers.Singleton(
        JwtAccessTokenCodec, secret_key, clock=clock, ttl=providers.Callable(_token_ttl, settings)
    )
    external_verifiers = providers.Singleton(_external_verifiers, settings)
    secret_box = providers.Singleton(AesGcmSecretBox.from_secret, secret_key)

    tenancy = providers.Singleton(TenancyService, uow, clock, password_hasher, read_cache)
    api_keys = providers.Singleton(ApiKeyService, uow, clock, read_cache, plans)
    audit = providers.Singleton(AuditService, uow)
    contacts = providers.Singleton(ContactService, uow, clock, read_cache)
    contact_imports = providers.Singleton(
        ContactImportService, uow, clock, encode_new_contact, cache=read_cache
    )
    contact_exports = providers.Singleton(ContactExportService, uow, clock, cache=read_cache)
    upload_spool = providers.Singleton(_upload_spool, settings)
    contact_import_runner = providers.Singleton(
        ContactImportRunner,
        imports=contact_imports,
        spool=upload_spool,
        pending=providers.Callable(_pending_imports, engines),
        batch_size=settings.provided.import_batch_size,
    )
    contact_finder = providers.Singleton(ContactFinder, uow, clock, read_cache)
    contact_search = providers.Singleton(ContactSearchService, uow, read_cache)
    smart_lists = providers.Singleton(SmartListService, uow, clock, read_cache)
    tag_service = providers.Singleton(TagService, uow, clock)
    custom_field_service = providers.Singleton(CustomFieldService, uow, clock, read_cache)
    notes = providers.Singleton(NoteService, uow, clock)
    tasks = providers.Singleton(TaskService, uow, clock)
    pipelines = providers.Singleton(PipelineService, uow, clock)
    opportunities = providers.Singleton(OpportunityService, uow, clock)
    inbound_endpoints = providers.Singleton(InboundEndpointService, uow, clock, secret_box)
    jobs = providers.Singleton(JobService, uow)
    webhook_resolver = providers.Singleton(DnsResolver)
    webhook_guard = providers.Singleton(
        UrlGuard, webhook_resolver, allow_private=settings.provided.webhooks_allow_private
    )
    # The same guard for the SMTP servers tenants configure, with its own switch for private addresses.
    smtp_guard = providers.Singleton(
        UrlGuard, webhook_resolver, allow_private=settings.provided.smtp_allow_private
    )
    platform_messaging = providers.Singleton(platform_providers, settings)
    gateways = providers.Singleton(
        SdkGatewayFactory,
        clock,
        twilio_api_base=settings.provided.twilio_api_base,
        sendgrid_api_base=settings.provided.sendgrid_api_base,
        timeout=settings.provided.messaging_timeout_seconds,
        smtp_guard=smtp_guard,
        platform=platform_messaging,
    )
    html_sanitizer = providers.Singleton(Nh3HtmlSanitizer)
    link_signer = providers.Singleton(_link_signer, secret_key)
    provider_configs = providers.Singleton(
        ProviderConfigs,
        box=secret_box,
        codec=providers.Singleton(VendorConfigCodec),
        platform=platform_messaging,
    )
    message_sending = providers.Singleton(
        SendingService,
        uow=uow,
        clock=clock,
        sanitizer=html_sanitizer,
        quota=providers.Singleton(SendQuota, plans, clock),
    )
    message_delivery = providers.Singleton(
        DeliveryService,
        uow=uow,
        clock=clock,
        configs=provider_configs,
        calls=providers.Singleton(ProviderCalls, gateways=gateways),
        composer=providers.Singleton(
            OutboundComposer, links=link_signer, public_url=settings.provided.base_url
        ),
    )
    message_receiving = providers.Singleton(
        ReceivingService, clock=clock, sanitizer=html_sanitizer, sending=message_sending
    )
    message_reports = providers.Singleton(
        ReportService, uow=uow, clock=clock, links=link_signer, configs=provider_configs
    )
    inbox = providers.Singleton(InboxService, uow=uow, clock=clock)
    # What campaigns and workflows send through: sending and delivery together.
    conversations = providers.Singleton(MessageSender, sending=message_sending, delivery=message_delivery)
    messaging_setup = providers.Singleton(
        MessagingSetupService,
        uow=uow,
        clock=clock,
        configs=provider_configs,
        guard=smtp_guard,
        links=link_signer,
        plans=plans,
    )
    # Email HTML is sanitised again after each render: a merge value can bring a javascript: link.
    template_renderer = providers.Singleton(
        SanitizingRenderer, providers.Singleton(JinjaTemplateRenderer), html_sanitizer
    )
    templates = providers.Singleton(TemplateService, uow, clock, template_renderer, html_sanitizer)
    campaigns = providers.Singleton(
        CampaignService, uow, clock, conversations, templates, template_renderer, contact_finder
    )
    inbound_registry = providers.Singleton(
        build_inbound_registry, clock, receiving=message_receiving, reports=message_reports
    )
    inbound = providers.Singleton(InboundService, uow, clock, inbound_registry)
    webhook_signer = providers.Singleton(StandardWebhooksSigner)
    webhook_sender = providers.Singleton(
        HttpxWebhookSender, timeout_seconds=settings.provided.webhook_timeout_seconds
    )
    webhooks = providers.Singleton(
        WebhookService,
        uow,
        clock,
        secret_box,
        webhook_guard,
        webhook_signer,
        webhook_sender,
        disable_after=settings.provided.webhook_disable_after,
    )
    workflow_engine = providers.Singleton(
        WorkflowEngine,
        uow,
        clock,
        conversations,
        template_renderer,
        providers.Singleton(
            StepServices,
            contacts=contacts,
            tags=tag_service,
            notes=notes,
            tasks=tasks,
            opportunities=opportunities,
        ),
        webhook_guard,
        webhook_sender,
    )
    workflows = providers.Singleton(WorkflowService, uow, clock, workflow_engine, contact_finder)
    job_admin = providers.Singleton(JobAdmin, engines.provided.owner)
    # Every job kind the workers run, each handler bound here to the services it needs.
    job_kinds = providers.Singleton(
        platform_job_kinds,
        owner=engines.provided.owner,
        webhooks=webhooks,
        webhook_retry_schedule=settings.provided.webhook_retry_schedule,
        workflow_engine=workflow_engine,
        inbound=inbound,
        message_delivery=message_delivery,
        campaigns=campaigns,
        contact_import_runner=contact_import_runner,
    )
    auth = providers.Singleton(
        AuthService,
        uow,
        clock,
        password_hasher,
        access_tokens,
        failure_counter,
        external_verifiers,
        cache=read_cache,
    )


async def close_container(container: Container) -> None:
    """Releases the container's pools. Clients connect lazily, so building one here costs nothing."""
    await container.gateways().aclose()
    bus = container.cache_bus()
    if bus is not None:
        await bus.close()  # its listening task first: it uses the Redis client or its own connection
    client = container.redis()
    if client is not None:
        await client.aclose(close_connection_pool=True)  # the pool was built apart from the client
    await container.engines().dispose()


def build_container(settings: Settings, database_url: str) -> Container:
    return Container(settings=settings, database_url=database_url, secret_key=settings.resolved_secret_key())
