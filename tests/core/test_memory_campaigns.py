"""Templates and campaigns on `build_memory_container()` (no database): a template rendered for a
campaign, a tagged audience frozen and sent to the local outbox by the campaign's run, statistics."""

from __future__ import annotations

import pytest

from ghl_adapters.memory.container import MemoryContainer, build_memory_container
from ghl_core.campaigns.models import CampaignStatus
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation


@pytest.fixture
def app() -> MemoryContainer:
    return build_memory_container(clock=FixedClock())


async def test_a_tagged_audience_gets_the_template_once(app: MemoryContainer) -> None:
    operator = Actor.operator()
    agency = await app.tenancy.create_agency(operator, "Memory Agency")
    location = await app.tenancy.create_location(
        operator, NewLocation("Alpha", timezone="America/Chicago", tier=PlanTier.PRO), agency.id
    )
    other = await app.tenancy.create_location(operator, NewLocation("Beta", tier=PlanTier.PRO), agency.id)
    here, elsewhere = Actor.operator_at(location.id), Actor.operator_at(other.id)
    ann = await app.contacts.create(here, {"first_name": "Ann", "phone": "+13125550101", "tags": ["vip"]})
    await app.contacts.create(here, {"first_name": "Bob", "phone": "+13125550102", "tags": ["vip"]})
    await app.contacts.create(here, {"first_name": "Cy", "phone": "+13125550103"})  # not in the audience

    template = await app.templates.create(
        here, {"name": "Sale", "channel": "sms", "body": "Hi {{contact.first_name}}, 20% off today"}
    )
    assert [t.id for t in (await app.templates.list(here, PageRequest())).items] == [template.id]
    campaign = await app.campaigns.create(
        here,
        {"name": "Spring", "channel": "sms", "template_id": str(template.id), "audience": {"tags": ["vip"]}},
    )
    assert campaign.status is CampaignStatus.DRAFT
    started = await app.campaigns.send(here, campaign.id)
    assert started.status in (CampaignStatus.SENDING, CampaignStatus.SCHEDULED)

    # The campaign's run is a job the embedder runs (or registers); a rerun sends nothing again.
    assert await app.campaigns.run(location.id, campaign.id) is CampaignStatus.COMPLETED
    assert await app.campaigns.run(location.id, campaign.id) is CampaignStatus.COMPLETED
    await app.queue.run_pending()

    outbox = await app.inbox.outbox(here, PageRequest())
    assert sorted(m.body for m in outbox.items) == ["Hi Ann, 20% off today", "Hi Bob, 20% off today"]
    assert ann.id in {m.contact_id for m in outbox.items}
    stats = await app.campaigns.stats(here, campaign.id)
    assert (stats.recipients, stats.pending, stats.skipped) == (2, 0, 0)
    assert (stats.sent, stats.delivered, stats.failed) == (2, 2, 0)  # delivered ones count as sent
    done = await app.campaigns.get(here, campaign.id)
    assert done.status is CampaignStatus.COMPLETED
    with pytest.raises(NotFound):
        await app.campaigns.get(elsewhere, campaign.id)
