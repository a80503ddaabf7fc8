"""The template and campaign repositories' contract, over the in-memory and the SQL implementation."""

from __future__ import annotations

import uuid
from dataclasses import replace

from makers import NOW, World, at, message, new_contact, new_conversation

from ghl_core.campaigns.models import (
    Campaign,
    CampaignStatus,
    EngagementKind,
    MessageTemplate,
    RecipientStatus,
)
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import Channel, Direction
from ghl_core.shared.pagination import PageRequest, decode_cursor


def template(location_id: uuid.UUID, minutes: int = 0, **fields: object) -> MessageTemplate:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "location_id": location_id,
        "name": f"template {minutes}",
        "channel": Channel.SMS,
        "created_at": at(minutes),
        "updated_at": at(minutes),
        "body": "Hi {{contact.first_name}}",
        **fields,
    }
    return MessageTemplate(**values)  # type: ignore[arg-type]


def campaign(location_id: uuid.UUID, minutes: int = 0, **fields: object) -> Campaign:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "location_id": location_id,
        "name": f"campaign {minutes}",
        "channel": Channel.SMS,
        "status": CampaignStatus.DRAFT,
        "created_at": at(minutes),
        "updated_at": at(minutes),
        "body": "Spring sale",
        **fields,
    }
    return Campaign(**values)  # type: ignore[arg-type]


async def test_templates_are_listed_oldest_first_in_their_location(world: World) -> None:
    mine = [template(world.location_id, minutes=i) for i in range(3)]
    gone = template(world.location_id, minutes=5, deleted_at=NOW)
    async with world.uow(world.scope) as work:
        for t in [*mine, gone]:
            await work.templates.add(t)
        await work.commit()
    async with world.uow(world.scope) as work:
        page = await work.templates.list(world.location_id, PageRequest(limit=2))
        assert [t.id for t in page.items] == [mine[0].id, mine[1].id]
        assert page.next_cursor is not None
        rest = await work.templates.list(
            world.location_id, PageRequest(after=decode_cursor(page.next_cursor))
        )
        assert [t.id for t in rest.items] == [mine[2].id]
        assert (await work.templates.get(gone.id)) == gone
        edited = replace(mine[0], name="renamed", body="new", updated_at=at(9))
        await work.templates.update(edited)
        await work.commit()
    async with world.uow(world.scope) as work:
        assert (await work.templates.get(mine[0].id)) == edited
    async with world.uow(world.other_scope) as work:
        assert await work.templates.get(mine[0].id) is None
        assert (await work.templates.list(world.location_id, PageRequest())).items == []


async def test_campaigns_are_listed_newest_first(world: World) -> None:
    mine = [campaign(world.location_id, minutes=i) for i in range(3)]
    gone = campaign(world.location_id, minutes=5, deleted_at=NOW)
    async with world.uow(world.scope) as work:
        for c in [*mine, gone]:
            await work.campaigns.add(c)
        await work.commit()
    async with world.uow(world.scope) as work:
        page = await work.campaigns.list(world.location_id, PageRequest(limit=2))
        assert [c.id for c in page.items] == [mine[2].id, mine[1].id]
        assert page.next_cursor is not None
        rest = await work.campaigns.list(
            world.location_id, PageRequest(after=decode_cursor(page.next_cursor))
        )
        assert [c.id for c in rest.items] == [mine[0].id]
        await work.campaigns.gate(mine[0].id, exclusive=True)
        locked = await work.campaigns.get(mine[0].id, lock=True)
        assert locked == mine[0]
        sending = replace(mine[0], status=CampaignStatus.SENDING, started_at=at(10), recipients=3, note="go")
        await work.campaigns.update(sending)
        await work.commit()
    async with world.uow(world.scope) as work:
        await work.campaigns.gate(mine[0].id, exclusive=False)
        assert (await work.campaigns.get(mine[0].id, share=True)) == sending
    async with world.uow(world.other_scope) as work:
        assert await work.campaigns.get(mine[0].id) is None


async def test_the_audience_is_taken_in_order_once(world: World) -> None:
    c = campaign(world.location_id)
    contacts = [await new_contact(world) for _ in range(5)]
    async with world.uow(world.scope) as work:
        await work.campaigns.add(c)
        assert await work.campaigns.add_recipients(c.id, world.location_id, contacts[:3], 0) == 3
        # A contact already in the audience is not added twice.
        assert await work.campaigns.add_recipients(c.id, world.location_id, contacts[2:], 3) == 2
        assert await work.campaigns.add_recipients(c.id, world.location_id, [], 5) == 0
        await work.commit()

    async with world.uow(world.scope) as work:
        first = await work.campaigns.take(c.id, 2)
        assert [(r.contact_id, r.position, r.status) for r in first] == [
            (contacts[0], 0, RecipientStatus.PENDING),
            (contacts[1], 1, RecipientStatus.PENDING),
        ]
        later = await work.campaigns.take(c.id, 10, after=1)
        assert [r.contact_id for r in later] == contacts[2:]
        conversation = await new_conversation(world, contacts[0])
        sent = message(conversation, campaign_id=c.id)
        await work.messages.add(sent)
        await work.campaigns.set_recipients(
            c.id,
            [
                (contacts[0], RecipientStatus.SENDING, sent.id, None),
                (contacts[1], RecipientStatus.SKIPPED, None, "no phone"),
            ],
        )
        await work.commit()

    async with world.uow(world.scope) as work:
        resumed = await work.campaigns.take(c.id, 10, resume=True)
        assert [(r.contact_id, r.message_id) for r in resumed] == [(contacts[0], sent.id)]
        # Done keeps the message id when the update carries none.
        await work.campaigns.set_recipients(c.id, [(contacts[0], RecipientStatus.DONE, None, None)])
        assert await work.campaigns.cancel_pending(c.id) == 3
        # A batch finishing after the cancel does not revive a cancelled recipient.
        await work.campaigns.set_recipients(c.id, [(contacts[4], RecipientStatus.DONE, None, None)])
        await work.commit()

    async with world.uow(world.scope) as work:
        assert await work.campaigns.recipient_counts(c.id) == {
            RecipientStatus.DONE: 1,
            RecipientStatus.SKIPPED: 1,
            RecipientStatus.CANCELLED: 3,
        }
        assert await work.campaigns.take(c.id, 10) == []
        assert await work.campaigns.take(c.id, 10, resume=True) == []
        assert await work.campaigns.message_counts(c.id) == {MessageStatus.QUEUED: 1}
    async with world.uow(world.other_scope) as work:
        assert await work.campaigns.recipient_counts(c.id) == {}
        assert await work.campaigns.take(c.id, 10) == []


async def test_engagement_counts_once_per_recipient_and_kind(world: World) -> None:
    c = campaign(world.location_id)
    first, second = await new_contact(world), await new_contact(world)
    async with world.uow(world.scope) as work:
        await work.campaigns.add(c)
        await work.campaigns.add_recipients(c.id, world.location_id, [first, second], 0)
        assert await work.campaigns.record_engagement(
            c.id, first, world.location_id, EngagementKind.OPEN, at(1)
        )
        again = await work.campaigns.record_engagement(
            c.id, first, world.location_id, EngagementKind.OPEN, at(2)
        )
        assert again is False
        assert await work.campaigns.record_engagement(
            c.id, second, world.location_id, EngagementKind.OPEN, at(3)
        )
        assert await work.campaigns.record_engagement(
            c.id, first, world.location_id, EngagementKind.CLICK, at(4)
        )
        await work.commit()
    async with world.uow(world.scope) as work:
        assert await work.campaigns.engagement_counts(c.id) == {
            EngagementKind.OPEN: 2,
            EngagementKind.CLICK: 1,
        }
    async with world.uow(world.other_scope) as work:
        assert await work.campaigns.engagement_counts(c.id) == {}


async def test_the_latest_campaign_message_of_a_conversation(world: World) -> None:
    older, newer = campaign(world.location_id), campaign(world.location_id, minutes=1)
    contact = await new_contact(world)
    conversation = await new_conversation(world, contact)
    async with world.uow(world.scope) as work:
        await work.campaigns.add(older)
        await work.campaigns.add(newer)
        await work.messages.add_many(
            [
                message(conversation, minutes=1, campaign_id=older.id),
                message(conversation, minutes=5, campaign_id=newer.id),
                message(conversation, minutes=9),  # not a campaign's
                message(conversation, minutes=10, campaign_id=older.id, direction=Direction.INBOUND),
            ]
        )
        await work.commit()
    async with world.uow(world.scope) as work:
        assert await work.campaigns.latest_campaign_message(conversation.id, at(0)) == (newer.id, contact)
        assert await work.campaigns.latest_campaign_message(conversation.id, at(6)) is None
    async with world.uow(world.other_scope) as work:
        assert await work.campaigns.latest_campaign_message(conversation.id, at(0)) is None
