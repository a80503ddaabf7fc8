"""`build_memory_container()`: every service of the core on the in-memory adapters, for embedders and the
fast tests. No database, no Redis; nothing leaves the process unless a service is asked to reach out (a
webhook delivery, a workflow's webhook step).

Decisions:
- A plain object with one lazily built attribute per service (`functools.cached_property`), named as the
  providers of `ghl_adapters.container.Container` are, so code written against one reads the other. No
  dependency-injector: an embedder swaps an adapter by passing it in (`clock`, `hasher`, `gateways`,
  `plans`) or by setting an attribute before its first use.
- SMS and e-mail go to the local outbox (`OutboxGateway`), the embedded default: every message is
  recorded as delivered and nothing leaves the process. `gateways=` takes a real factory instead
  (`ghl_adapters.messaging.factory.SdkGatewayFactory`).
- Jobs run on a `MemoryJobQueue`: inline after each commit that enqueued (the default), or when the
  embedder calls `container.queue.run_pending()` (`inline_jobs=False`). Registered here: sending and
  reconciling messages, the two event consumers (webhook fan-out; workflow triggers, event waits and
  goals), workflow steps and webhook deliveries, each run once (no retry schedule: a failure is kept in
  `queue.failed`). Other kinds (durable imports, reminders) wait until the embedder registers a handler.
- The lower contexts (tenancy to pipelines) and the adapters are built in `services.py`; this module adds
  conversations, templates, campaigns, inbound, webhooks and workflows.
"""

from __future__ import annotations

import uuid
from functools import cached_property

from ghl_adapters.inbound.wiring import build_inbound_registry
from ghl_adapters.messaging.configs import VendorConfigCodec
from ghl_core.campaigns.services import CampaignService, TemplateService
from ghl_core.conversations.common import RECONCILE_KIND, SEND_KIND
from ghl_core.conversations.composing import OutboundComposer
from ghl_core.conversations.configs import ProviderConfigs
from ghl_core.conversations.delivery import DeliveryService
from ghl_core.conversations.dispatch import ProviderCalls
from ghl_core.conversations.inbox import InboxService
from ghl_core.conversations.links import LinkSigner
from ghl_core.conversations.providers import GatewayFactory
from ghl_core.conversations.quota import SendQuota
from ghl_core.conversations.receiving import ReceivingService
from ghl_core.conversations.reports import ReportService
from ghl_core.conversations.sender import MessageSender
from ghl_core.conversations.sending import SendingService
from ghl_core.conversations.setup import MessagingSetupService
from ghl_core.conversations.templates import SanitizingRenderer
from ghl_core.inbound.endpoints import InboundEndpointService
from ghl_core.inbound.ports import InboundRegistry
from ghl_core.inbound.services import InboundService
from ghl_core.jobs.ports import JobContext, JobRequest
from ghl_core.shared.clock import Clock
from ghl_core.tenancy.plans import PlanCatalog
from ghl_core.tenancy.ports import PasswordHasher
from ghl_core.webhooks.delivery import DELIVER_KIND
from ghl_core.webhooks.event_types import public_type
from ghl_core.webhooks.services import WebhookService
from ghl_core.workflows.engine import STEP_KIND, StepServices, WorkflowEngine
from ghl_core.workflows.services import WorkflowService
from ghl_core.workflows.triggers import READERS

from .queue import CONSUME_KIND
from .recording import EVENTS
from .services import CoreServices, OutboxGateways

PUBLIC_URL = "http://localhost"  # where links in messages point; an embedder serving pages sets its own

__all__ = ["MemoryContainer", "OutboxGateways", "build_memory_container"]


class MemoryContainer(CoreServices):
    def __init__(
        self,
        *,
        clock: Clock | None = None,
        secret_key: str | None = None,
        hasher: PasswordHasher | None = None,
        gateways: GatewayFactory | None = None,
        plans: PlanCatalog | None = None,
        inline_jobs: bool = True,
        public_url: str = PUBLIC_URL,
    ) -> None:
        super().__init__(
            clock=clock,
            secret_key=secret_key,
            hasher=hasher,
            gateways=gateways,
            plans=plans,
            inline_jobs=inline_jobs,
        )
        self.public_url = public_url
        self.queue.register(SEND_KIND, self._send_message)
        self.queue.register(RECONCILE_KIND, self._reconcile_message)
        self.queue.register(CONSUME_KIND, self._consume_events)
        self.queue.register(STEP_KIND, self._run_steps)
        self.queue.register(DELIVER_KIND, self._deliver_webhook)
        # The consumers and what they read, as `ghl_adapters.jobs.events.INTERESTS` says for SQL.
        self.queue.subscribe("webhooks", lambda event_type: public_type(event_type) is not None)
        self.queue.subscribe("workflows", lambda event_type: event_type in READERS)

    async def _consume_events(self, job: JobRequest) -> None:
        if job.location_id is None:
            raise ValueError("an events.consume job names its location")
        logged = self.store.committed(EVENTS)
        wanted = (logged.get(uuid.UUID(i)) for i in job.args["events"])
        events = [e for e in wanted if e is not None and e.location_id == job.location_id]
        if job.args["consumer"] == "webhooks":
            await self.webhooks.fan_out(job.location_id, events)
        else:
            await self.workflow_engine.handle_events(job.location_id, events)

    async def _run_steps(self, job: JobRequest) -> None:
        if job.location_id is None:
            raise ValueError("a workflows.run job names its location")
        enrollment_id = uuid.UUID(str(job.args["enrollment_id"]))
        await self.workflow_engine.run(job.location_id, enrollment_id, int(job.args["tick"]))

    async def _deliver_webhook(self, job: JobRequest) -> None:
        if job.location_id is None:
            raise ValueError("a webhooks.deliver job names its location")
        # One attempt, and the final one: the memory queue keeps no retry schedule.
        ctx = JobContext(job_id=0, kind=DELIVER_KIND, attempt=1, max_attempts=1, location_id=job.location_id)
        await self.webhooks.deliver(job.location_id, uuid.UUID(str(job.args["delivery_id"])), ctx)

    async def _send_message(self, job: JobRequest) -> None:
        if job.location_id is None:
            raise ValueError("a messages.send job names its location")
        message_id = uuid.UUID(str(job.args["message_id"]))
        await self.message_delivery.deliver(job.location_id, message_id, final_attempt=True)

    async def _reconcile_message(self, job: JobRequest) -> None:
        if job.location_id is None:
            raise ValueError("a messages.reconcile job names its location")
        message_id = uuid.UUID(str(job.args["message_id"]))
        await self.message_delivery.reconcile(job.location_id, message_id, final_attempt=True)

    # -- conversations -------------------------------------------------------------------------------
    @cached_property
    def link_signer(self) -> LinkSigner:
        return LinkSigner(self.link_key)

    @cached_property
    def provider_configs(self) -> ProviderConfigs:
        return ProviderConfigs(box=self.secret_box, codec=VendorConfigCodec())

    @cached_property
    def message_sending(self) -> SendingService:
        quota = SendQuota(self.plans, self.clock)
        return SendingService(uow=self.uow, clock=self.clock, sanitizer=self.html_sanitizer, quota=quota)

    @cached_property
    def message_delivery(self) -> DeliveryService:
        return DeliveryService(
            uow=self.uow,
            clock=self.clock,
            configs=self.provider_configs,
            calls=ProviderCalls(gateways=self.gateways),
            composer=OutboundComposer(links=self.link_signer, public_url=self.public_url),
        )

    @cached_property
    def message_receiving(self) -> ReceivingService:
        return ReceivingService(clock=self.clock, sanitizer=self.html_sanitizer, sending=self.message_sending)

    @cached_property
    def message_reports(self) -> ReportService:
        return ReportService(
            uow=self.uow, clock=self.clock, links=self.link_signer, configs=self.provider_configs
        )

    @cached_property
    def inbox(self) -> InboxService:
        return InboxService(uow=self.uow, clock=self.clock)

    @cached_property
    def conversations(self) -> MessageSender:
        """What campaigns and workflows send through: sending and delivery together."""
        return MessageSender(sending=self.message_sending, delivery=self.message_delivery)

    @cached_property
    def messaging_setup(self) -> MessagingSetupService:
        return MessagingSetupService(
            uow=self.uow,
            clock=self.clock,
            configs=self.provider_configs,
            guard=self.webhook_guard,
            links=self.link_signer,
            plans=self.plans,
        )

    # -- templates and campaigns ---------------------------------------------------------------------
    @cached_property
    def template_renderer(self) -> SanitizingRenderer:
        # E-mail HTML is sanitised again after each render: a merge value can bring a javascript: link.
        return SanitizingRenderer(self.base_renderer, self.html_sanitizer)

    @cached_property
    def templates(self) -> TemplateService:
        return TemplateService(self.uow, self.clock, self.template_renderer, self.html_sanitizer)

    @cached_property
    def campaigns(self) -> CampaignService:
        return CampaignService(
            self.uow,
            self.clock,
            self.conversations,
            self.templates,
            self.template_renderer,
            self.contact_finder,
        )

    # -- inbound and webhooks ------------------------------------------------------------------------
    @cached_property
    def inbound_registry(self) -> InboundRegistry:
        return build_inbound_registry(
            self.clock, receiving=self.message_receiving, reports=self.message_reports
        )

    @cached_property
    def inbound(self) -> InboundService:
        return InboundService(self.uow, self.clock, self.inbound_registry)

    @cached_property
    def inbound_endpoints(self) -> InboundEndpointService:
        return InboundEndpointService(self.uow, self.clock, self.secret_box)

    @cached_property
    def webhooks(self) -> WebhookService:
        return WebhookService(
            self.uow,
            self.clock,
            self.secret_box,
            self.webhook_guard,
            self.webhook_signer,
            self.webhook_sender,
        )

    # -- workflows -----------------------------------------------------------------------------------
    @cached_property
    def workflow_engine(self) -> WorkflowEngine:
        steps = StepServices(
            contacts=self.contacts,
            tags=self.tag_service,
            notes=self.notes,
            tasks=self.tasks,
            opportunities=self.opportunities,
        )
        return WorkflowEngine(
            self.uow,
            self.clock,
            self.conversations,
            self.template_renderer,
            steps,
            self.webhook_guard,
            self.webhook_sender,
        )

    @cached_property
    def workflows(self) -> WorkflowService:
        return WorkflowService(self.uow, self.clock, self.workflow_engine, self.contact_finder)


def build_memory_container(
    *,
    clock: Clock | None = None,
    secret_key: str | None = None,
    hasher: PasswordHasher | None = None,
    gateways: GatewayFactory | None = None,
    plans: PlanCatalog | None = None,
    inline_jobs: bool = True,
    public_url: str = PUBLIC_URL,
) -> MemoryContainer:
    """Every service of the core on the in-memory adapters (see the module docstring)."""
    return MemoryContainer(
        public_url=public_url,
        clock=clock,
        secret_key=secret_key,
        hasher=hasher,
        gateways=gateways,
        plans=plans,
        inline_jobs=inline_jobs,
    )
