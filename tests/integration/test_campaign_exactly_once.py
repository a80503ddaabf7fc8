"""A campaign survives its worker being killed (`kill -9`) again and again mid-send: every recipient gets
exactly one SMS, through the Twilio SDK to a local Twilio double. Kills land while provider calls are
in flight (the double answers slowly, after recording), so both halves of the ledger are exercised: a
claim whose provider call never happened is sent on the next run, and one whose call happened but whose
outcome was lost is found at the provider (`find_sent`) and not sent again."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text
from worker_kit import start_worker, stop, tail, wait_until, worker_env

from ghl_adapters.container import close_container
from ghl_adapters.settings import Settings
from ghl_core.conversations.models import Channel
from ghl_core.conversations.providers import ProviderKind
from ghl_core.tenancy.permissions import Actor
from support import make_container, new_tenant
from twilio_double import ACCOUNT_SID, AUTH_TOKEN, TwilioDouble

pytestmark = pytest.mark.slow

RECIPIENTS = 400
KILLS = 4
WAIT_S = 240.0
FROM = "+14155550100"


def phone(i: int) -> str:
    return f"+1415{2000000 + i * 7:07d}"


async def test_killing_the_worker_mid_campaign_skips_no_recipient_and_sends_none_twice(
    settings: Settings, tmp_path: Path
) -> None:
    container = make_container(settings)
    log = tmp_path / "workers.log"
    try:
        tenant = await new_tenant(container)
        actor = Actor.operator_at(tenant.location_id)
        await container.messaging_setup().set_provider(
            actor,
            Channel.SMS,
            ProviderKind.TWILIO,
            {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": FROM},
        )
        # A pace of 100 per second: batches of 100, so every kill finds a batch part-way.
        await container.messaging_setup().update_settings(actor, {"sms_per_second": 100})
        contacts = container.contacts()
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with gate:
                await contacts.create(actor, {"first_name": f"R{i}", "phone": phone(i), "tags": ["blast"]})

        await asyncio.gather(*(one(i) for i in range(RECIPIENTS)))
        await contacts.create(
            actor,
            {
                "first_name": "Opted",
                "phone": phone(RECIPIENTS),
                "tags": ["blast"],
                "dnd_channels": {"sms": True},
            },
        )
        campaign = await container.campaigns().create(
            actor,
            {
                "name": "Blast",
                "channel": "sms",
                "body": "Hi {{contact.first_name}}!",
                "audience": {"tags": ["blast"]},
            },
        )
        with TwilioDouble() as double:
            double.answer_latency = 0.15  # recorded, then answered late: kills catch calls in flight
            env = worker_env(settings, tmp_path, stalled_after="2", GHL_TWILIO_API_BASE=double.base_url)
            await container.campaigns().send(actor, campaign.id)
            worker = start_worker(env, log, queues="campaigns,messages", concurrency=4)
            try:
                for k in range(1, KILLS + 1):
                    target = k * RECIPIENTS // (KILLS + 2)

                    def reached(t: int = target) -> bool:
                        return len(double.messages) >= t

                    await wait_until(
                        reached,
                        f"{target} sends",
                        within=WAIT_S,
                        poll=0.02,
                    )
                    worker.send_signal(signal.SIGKILL)
                    worker.wait()
                    worker = start_worker(env, log, queues="campaigns,messages", concurrency=4)
                deadline = time.monotonic() + WAIT_S
                status = ""
                while status != "completed" and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    status = (await container.campaigns().get(actor, campaign.id)).status.value
                assert status == "completed", tail(log)
            finally:
                stop(worker)
            received = Counter(m.to for m in double.messages)

        expected = {phone(i) for i in range(RECIPIENTS)}
        assert set(received) == expected, f"missing {len(expected - set(received))}"
        twice = {number: n for number, n in received.items() if n > 1}
        assert twice == {}, f"sent twice: {twice}"
        assert phone(RECIPIENTS) not in received
        stats = await container.campaigns().stats(actor, campaign.id)
        assert (stats.recipients, stats.sent, stats.skipped, stats.pending) == (
            RECIPIENTS + 1,
            RECIPIENTS,
            1,
            0,
        )
        async with container.engines().owner.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT count(*) AS n, count(DISTINCT contact_id) AS d "
                    "FROM messages WHERE campaign_id = :c"
                ),
                {"c": campaign.id},
            )
            counts = rows.one()
        assert counts.n == counts.d == RECIPIENTS
    finally:
        await close_container(container)


CANCEL_RECIPIENTS = 150


async def test_a_cancel_while_a_worker_sends_wins_and_nothing_is_claimed_after_it(
    settings: Settings, tmp_path: Path
) -> None:
    """A worker process sends (three lanes, provider calls in flight) when the cancel comes: the cancel
    succeeds, and no message is handed to the provider after it: the ones claimed before it are the
    only ones that ever go out, each once."""
    container = make_container(settings)
    log = tmp_path / "workers.log"
    try:
        tenant = await new_tenant(container)
        actor = Actor.operator_at(tenant.location_id)
        await container.messaging_setup().set_provider(
            actor,
            Channel.SMS,
            ProviderKind.TWILIO,
            {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": FROM},
        )
        # 30 a second: batches of 10 in each of the three lanes, so the cancel finds a campaign part-way.
        await container.messaging_setup().update_settings(actor, {"sms_per_second": 30})
        contacts = container.contacts()
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with gate:
                await contacts.create(actor, {"first_name": f"C{i}", "phone": phone(i), "tags": ["stop"]})

        await asyncio.gather(*(one(i) for i in range(CANCEL_RECIPIENTS)))
        campaign = await container.campaigns().create(
            actor, {"name": "Stopped", "channel": "sms", "body": "Hi!", "audience": {"tags": ["stop"]}}
        )

        async def claimed() -> int:
            async with container.engines().owner.connect() as conn:
                found = await conn.execute(
                    text("SELECT count(*) FROM messages WHERE campaign_id = :c AND claimed_at IS NOT NULL"),
                    {"c": campaign.id},
                )
                return int(found.scalar_one())

        async def idle() -> bool:
            async with container.engines().owner.connect() as conn:
                busy = await conn.execute(
                    text(
                        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'campaigns.run' "
                        "AND status IN ('todo', 'doing') AND args->>'campaign_id' = :c"
                    ),
                    {"c": str(campaign.id)},
                )
                return int(busy.scalar_one()) == 0

        with TwilioDouble() as double:
            double.answer_latency = 0.05
            env = worker_env(settings, tmp_path, stalled_after="5", GHL_TWILIO_API_BASE=double.base_url)
            await container.campaigns().send(actor, campaign.id)
            worker = start_worker(env, log, queues="campaigns,messages", concurrency=4)
            try:
                await wait_until(lambda: len(double.messages) >= 30, "30 sends", within=WAIT_S, poll=0.01)
                cancelled = await container.campaigns().cancel(actor, campaign.id)
                handed_over = await claimed()
                await wait_until(idle, "the run to stop", within=WAIT_S, poll=0.1, log=log)
            finally:
                stop(worker)
            received = Counter(m.to for m in double.messages)

        assert cancelled.status.value == "cancelled"
        assert await claimed() == handed_over  # none claimed after the cancel committed
        assert sum(received.values()) <= handed_over < CANCEL_RECIPIENTS
        assert max(received.values()) == 1
        stats = await container.campaigns().stats(actor, campaign.id)
        assert stats.pending == 0
    finally:
        await close_container(container)
