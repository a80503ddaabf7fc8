"""The conversation and message repositories' contract, over the in-memory and the SQL implementation."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

from makers import World, at, message, new_contact, new_conversation

from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import Channel, Conversation, Direction
from ghl_core.conversations.ports import ConversationTouch, InboxFilter, InboxOrder
from ghl_core.shared.pagination import PageRequest, decode_cursor


async def test_one_conversation_per_contact_and_channel(world: World) -> None:
    contact = await new_contact(world)
    first = await new_conversation(world, contact)
    again = await new_conversation(world, contact)
    email = await new_conversation(world, contact, channel=Channel.EMAIL)
    assert again.id == first.id
    assert email.id != first.id
    other_contact = await new_contact(world)
    async with world.uow(world.scope) as work:
        ids = await work.conversations.get_or_create_many(
            world.location_id, Channel.SMS, [contact, other_contact, other_contact], at(1)
        )
        assert set(ids) == {contact, other_contact}
        assert ids[contact] == first.id
        assert await work.conversations.get_or_create_many(world.location_id, Channel.SMS, [], at(1)) == {}
        await work.commit()
    async with world.uow(world.scope) as work:
        made = await work.conversations.get(ids[other_contact])
        assert made is not None
        assert (made.contact_id, made.channel, made.unread_count) == (other_contact, Channel.SMS, 0)
    async with world.uow(world.other_scope) as work:
        assert await work.conversations.get(first.id) is None


async def test_the_inbox_lists_newest_activity_first_and_unread_first(world: World) -> None:
    conversations: list[Conversation] = []
    for _ in range(3):
        conversations.append(await new_conversation(world, await new_contact(world)))
    silent = await new_conversation(world, await new_contact(world))  # never touched: not listed
    a, b, c = conversations
    async with world.uow(world.scope) as work:
        await work.conversations.touch_many(
            [
                ConversationTouch(a.id, at(1), "one", Direction.OUTBOUND),
                ConversationTouch(b.id, at(2), "two", Direction.OUTBOUND),
                ConversationTouch(c.id, at(3), "three", Direction.OUTBOUND),
                ConversationTouch(a.id, at(4), "four", Direction.OUTBOUND),
            ]
        )
        stored_b = await work.conversations.get(b.id)
        assert stored_b is not None
        await work.conversations.update(replace(stored_b, unread_count=2, last_direction=Direction.INBOUND))
        await work.commit()
    async with world.uow(world.scope) as work:
        newest = await work.conversations.list(world.location_id, InboxFilter(), PageRequest(limit=2))
        assert [x.id for x in newest.items] == [a.id, c.id]
        assert newest.items[0].last_message_preview == "four"
        assert newest.next_cursor is not None
        rest = await work.conversations.list(
            world.location_id, InboxFilter(), PageRequest(limit=2, after=decode_cursor(newest.next_cursor))
        )
        assert [x.id for x in rest.items] == [b.id]
        unread_first = InboxFilter(order=InboxOrder.UNREAD_FIRST)
        page = await work.conversations.list(world.location_id, unread_first, PageRequest(limit=2))
        assert [x.id for x in page.items] == [b.id, a.id]
        assert page.next_cursor is not None
        tail = await work.conversations.list(
            world.location_id, unread_first, PageRequest(limit=2, after=decode_cursor(page.next_cursor))
        )
        assert [x.id for x in tail.items] == [c.id]
        unread = await work.conversations.list(world.location_id, InboxFilter(unread=True), PageRequest())
        assert [x.id for x in unread.items] == [b.id]
        read = await work.conversations.list(world.location_id, InboxFilter(unread=False), PageRequest())
        assert [x.id for x in read.items] == [a.id, c.id]
        email = await work.conversations.list(
            world.location_id, InboxFilter(channel=Channel.EMAIL), PageRequest()
        )
        assert email.items == []
        assert silent.id not in {x.id for x in newest.items + rest.items}
    async with world.uow(world.other_scope) as work:
        assert (await work.conversations.list(world.location_id, InboxFilter(), PageRequest())).items == []


async def test_a_cause_sends_once(world: World) -> None:
    conversation = await new_conversation(world, await new_contact(world))
    first = message(conversation, cause="workflow:1")
    async with world.uow(world.scope) as work:
        assert await work.messages.add(first) is True
        await work.commit()
    async with world.uow(world.scope) as work:
        assert await work.messages.add(message(conversation, cause="workflow:1")) is False
        batch = [message(conversation, cause="campaign:1"), message(conversation, cause="workflow:1")]
        batch.append(message(conversation, cause=None, minutes=1))
        stored = await work.messages.add_many(batch)
        assert stored == {batch[0].id, batch[2].id}
        assert await work.messages.add_many([]) == set()
        await work.commit()
    async with world.uow(world.scope) as work:
        assert (await work.messages.by_cause(world.location_id, "workflow:1")) == first
        found = await work.messages.by_causes(world.location_id, ["workflow:1", "campaign:1", "nope"])
        assert {k: v.id for k, v in found.items()} == {"workflow:1": first.id, "campaign:1": batch[0].id}
        assert await work.messages.by_cause(world.other_location_id, "workflow:1") is None
    async with world.uow(world.other_scope) as work:
        assert await work.messages.get(first.id) is None
        assert await work.messages.by_cause(world.location_id, "workflow:1") is None


async def test_claims_and_send_outcomes(world: World) -> None:
    conversation = await new_conversation(world, await new_contact(world))
    queued, settled = message(conversation), message(conversation, minutes=1, status=MessageStatus.FAILED)
    async with world.uow(world.scope) as work:
        await work.messages.add_many([queued, settled])
        await work.messages.claim_many([(queued.id, at(5), "+15125550199"), (settled.id, at(5), None)])
        await work.commit()
    async with world.uow(world.scope) as work:
        got = await work.messages.get_many([settled.id, queued.id, uuid.uuid4()], lock=True)
        assert [m.id for m in got] == sorted([queued.id, settled.id])
        claimed = next(m for m in got if m.id == queued.id)
        assert (claimed.claimed_at, claimed.sender, claimed.attempts) == (at(5), "+15125550199", 1)
        sent = replace(
            claimed,
            status=MessageStatus.SENT,
            provider="outbox",
            provider_message_id="pm-1",
            sent_at=at(6),
            updated_at=at(6),
            rfc_message_id="<a@b>",
        )
        await work.messages.mark_sent_many([sent, replace(settled, status=MessageStatus.SENT, sent_at=at(6))])
        await work.commit()
    async with world.uow(world.scope) as work:
        after_sent = await work.messages.get(queued.id)
        assert after_sent is not None
        assert (after_sent.status, after_sent.provider_message_id, after_sent.sent_at) == (
            MessageStatus.SENT,
            "pm-1",
            at(6),
        )
        still = await work.messages.get(settled.id)
        assert still is not None
        assert (still.status, still.sent_at) == (MessageStatus.FAILED, None)
        assert (await work.messages.by_provider_id(world.location_id, "pm-1")) == after_sent
        assert (
            await work.messages.by_provider_id(world.location_id, "pm-1", recipient="+15125550100")
        ) == after_sent
        assert await work.messages.by_provider_id(world.location_id, "pm-1", recipient="x@y") is None
        assert (await work.messages.by_rfc_id(world.location_id, ["<z@z>", "<a@b>"])) == after_sent
        assert await work.messages.by_rfc_id(world.location_id, []) is None
        outbox = await work.messages.outbox(world.location_id, PageRequest())
        assert [m.id for m in outbox.items] == [queued.id]
        counts = await work.messages.count_by_status(world.location_id)
        assert counts == {MessageStatus.SENT: 1, MessageStatus.FAILED: 1}
        thread = await work.messages.thread(conversation.id, PageRequest(limit=1))
        assert [m.id for m in thread.items] == [settled.id]
        assert thread.next_cursor is not None
        older = await work.messages.thread(
            conversation.id, PageRequest(after=decode_cursor(thread.next_cursor))
        )
        assert [m.id for m in older.items] == [queued.id]


async def test_erasing_a_contact_keeps_its_rows_without_content(world: World) -> None:
    contact = await new_contact(world)
    conversation = await new_conversation(world, contact)
    kept = await new_conversation(world, await new_contact(world))
    mine = [message(conversation, minutes=i, subject="s", sender="+15125550111") for i in range(2)]
    other = message(kept)
    async with world.uow(world.scope) as work:
        await work.messages.add_many([*mine, other])
        await work.conversations.touch_many(
            [ConversationTouch(conversation.id, at(1), "hi", Direction.OUTBOUND)]
        )
        assert await work.messages.erase_contact(contact) == 2
        await work.commit()
    async with world.uow(world.scope) as work:
        for m in mine:
            erased = await work.messages.get(m.id)
            assert erased is not None
            assert (erased.body, erased.subject, erased.sender, erased.recipient) == ("", None, None, None)
        untouched = await work.messages.get(other.id)
        assert untouched == other
        conv = await work.conversations.get(conversation.id)
        assert conv is not None
        assert conv.last_message_preview is None
        assert conv.last_message_at == at(1)


async def test_merging_contacts_moves_their_conversations(world: World) -> None:
    loser, survivor = await new_contact(world), await new_contact(world)
    loser_sms = await new_conversation(world, loser)
    loser_email = await new_conversation(world, loser, channel=Channel.EMAIL)
    survivor_sms = await new_conversation(world, survivor)
    sms, email = message(loser_sms), message(loser_email)
    async with world.uow(world.scope) as work:
        await work.messages.add_many([sms, email])
        await work.conversations.update(replace(loser_sms, unread_count=2))
        await work.conversations.update(replace(survivor_sms, unread_count=1))
        assert await work.conversations.move_contact(loser, survivor) == 2
        await work.commit()
    async with world.uow(world.scope) as work:
        moved_sms, moved_email = await work.messages.get(sms.id), await work.messages.get(email.id)
        assert moved_sms is not None
        assert moved_email is not None
        assert (moved_sms.conversation_id, moved_sms.contact_id) == (survivor_sms.id, survivor)
        assert (moved_email.conversation_id, moved_email.contact_id) == (loser_email.id, survivor)
        merged = await work.conversations.get(survivor_sms.id)
        emptied = await work.conversations.get(loser_sms.id)
        taken = await work.conversations.get(loser_email.id)
        assert merged is not None
        assert emptied is not None
        assert taken is not None
        assert merged.unread_count == 3
        assert (emptied.unread_count, emptied.last_message_at) == (0, None)
        assert taken.contact_id == survivor


async def test_the_daily_count_never_passes_its_limit(world: World) -> None:
    day = date(2026, 3, 2)
    async with world.uow(world.scope) as work:
        assert await work.messages.count_daily(world.location_id, day) == 0
        assert await work.messages.reserve_daily(world.location_id, day, 7, 10) == 7
        assert await work.messages.reserve_daily(world.location_id, day, 7, 10) == 3
        assert await work.messages.reserve_daily(world.location_id, day, 1, 10) == 0
        await work.messages.release_daily(world.location_id, day, 4)
        await work.commit()
    async with world.uow(world.scope) as work:
        assert await work.messages.count_daily(world.location_id, day) == 6
        await work.messages.release_daily(world.location_id, day, 100)
        await work.messages.release_daily(world.location_id, date(2026, 3, 3), 5)  # no row: nothing
        assert await work.messages.count_daily(world.location_id, day) == 0
        assert await work.messages.count_daily(world.location_id, date(2026, 3, 3)) == 0
        await work.commit()
    async with world.uow(world.other_scope) as work:
        assert await work.messages.count_daily(world.other_location_id, day) == 0


async def test_nothing_is_kept_without_a_commit(world: World) -> None:
    conversation = await new_conversation(world, await new_contact(world))
    dropped = message(conversation, cause="dropped")
    async with world.uow(world.scope) as work:
        await work.messages.add(dropped)
    async with world.uow(world.scope) as work:
        assert await work.messages.get(dropped.id) is None
        assert await work.messages.add(message(conversation, cause="dropped")) is True


async def test_a_cause_another_transaction_committed_meanwhile_is_refused(world: World) -> None:
    conversation = await new_conversation(world, await new_contact(world))
    async with world.uow(world.scope) as late, world.uow(world.scope) as early:
        assert await late.messages.get(uuid.uuid4()) is None  # begun, and has read the table
        assert await early.messages.add(message(conversation, cause="race")) is True
        await early.commit()
        assert await late.messages.add(message(conversation, cause="race")) is False
        assert await late.messages.add_many([message(conversation, cause="race")]) == set()


async def test_a_conversation_another_transaction_made_meanwhile_is_the_one(world: World) -> None:
    contact = await new_contact(world)
    async with world.uow(world.scope) as late, world.uow(world.scope) as early:
        assert await late.conversations.get(uuid.uuid4()) is None  # begun, and has read the table
        made = await early.conversations.get_or_create(
            Conversation(uuid.uuid4(), world.location_id, contact, Channel.SMS, at(0), at(0))
        )
        await early.commit()
        found = await late.conversations.get_or_create(
            Conversation(uuid.uuid4(), world.location_id, contact, Channel.SMS, at(1), at(1))
        )
        assert found.id == made.id
        await late.conversations.touch_many([ConversationTouch(found.id, at(2), "hi", Direction.OUTBOUND)])
        await late.commit()
    async with world.uow(world.scope) as work:
        touched = await work.conversations.get(made.id)
        assert touched is not None
        assert (touched.last_message_at, touched.last_message_preview) == (at(2), "hi")
