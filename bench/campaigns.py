"""Campaign throughput: one `ghl worker`-style process sends a campaign to N recipients (100,000 by
default) through each provider adapter: the local outbox, Twilio (the SDK against a local Twilio double)
and SendGrid (the SDK against a local SendGrid double). Figures: messages per second from "send" to
"completed", and the worker's peak memory (VmHWM).

Baselines in the same run: for Twilio and SendGrid, a bare loop making the same provider calls through
the same SDK adapters at the same concurrency, with no database; for the outbox (no provider call), the
same number of message rows written by one raw SQL statement.

    uv run python bench/campaigns.py                      # embedded PostgreSQL
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres uv run python bench/campaigns.py
    BENCH_RECIPIENTS=20000 uv run python bench/campaigns.py   # a quicker run
    BENCH_PROVIDERS=twilio BENCH_PROFILE=/tmp/worker.prof ...  # one provider, the worker under cProfile
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from common import bench_database

from ghl_adapters.container import build_container, close_container
from ghl_adapters.messaging.configs import SendGridConfig, TwilioConfig
from ghl_adapters.messaging.sendgrid import SendGridEmailGateway
from ghl_adapters.messaging.twilio import TwilioSmsGateway
from ghl_adapters.observability import configure_logging
from ghl_adapters.settings import Settings
from ghl_core.campaigns.services import DEFAULT_BATCH, DEFAULT_LANES
from ghl_core.conversations.gateways import EmailMessage, SendResult, SmsMessage
from ghl_core.conversations.models import Channel
from ghl_core.conversations.providers import ProviderKind
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation
from sendgrid_double import DEFAULT_API_KEY, SendGridDouble
from twilio_double import ACCOUNT_SID, AUTH_TOKEN, TwilioDouble

RECIPIENTS = int(os.environ.get("BENCH_RECIPIENTS", "100000"))
PROVIDERS = os.environ.get("BENCH_PROVIDERS", "outbox,twilio,sendgrid").split(",")
PROFILE = os.environ.get("BENCH_PROFILE")  # a path: the worker's cProfile stats are written there
CONCURRENCY = 64  # provider calls in flight per batch (DeliveryService.deliver_many's default)
SECRET = "bench-" + "x" * 40
FROM = "+14155550100"

_CONTACTS = text(
    """
INSERT INTO contacts (id, location_id, first_name, email, phone, tags, created_at, updated_at)
SELECT gen_random_uuid(), :location, 'Bench ' || i, 'bench' || i || '@example.com',
       '+1415' || lpad((2000000 + i)::text, 7, '0'), ARRAY['blast'], now(), now()
FROM generate_series(1, :n) AS i
"""
)


def settings_for(url: str, twilio: str, sendgrid: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url=url,
        secret_key=SECRET,
        twilio_api_base=twilio,
        sendgrid_api_base=sendgrid,
        _env_file=None,
    )


def worker_main(url: str, twilio: str, sendgrid: str) -> None:
    from ghl_adapters.jobs.worker import run_worker

    configure_logging("WARNING")
    settings = settings_for(url, twilio, sendgrid)

    async def main() -> None:
        container = build_container(settings, url)
        try:
            await run_worker(container, queues=["campaigns", "messages"])
        finally:
            await close_container(container)

    if not PROFILE:
        asyncio.run(main())
        return
    import cProfile
    import signal

    profile = cProfile.Profile()

    def dump(*_: object) -> None:
        profile.disable()
        profile.dump_stats(PROFILE)
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)  # the worker's own handler may replace it: then it ends below
    profile.enable()
    try:
        asyncio.run(main())
    finally:
        dump()


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - Linux only


async def until_completed(container: Any, actor: Actor, campaign_id: uuid.UUID) -> None:
    while True:
        if (await container.campaigns().get(actor, campaign_id)).status.value == "completed":
            return
        await asyncio.sleep(0.25)


async def bare_loop(send: Any, n: int) -> float:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await send(i)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - started


async def run(url: str) -> None:
    configure_logging("WARNING")
    twilio, sendgrid = TwilioDouble().start(), SendGridDouble().start()
    settings = settings_for(url, twilio.base_url, sendgrid.base_url)
    container = build_container(settings, url)
    operator = Actor.operator()
    agency = await container.tenancy().create_agency(operator, "Bench Agency")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHL_")}
    worker = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter and script, started once
        [sys.executable, __file__, "--worker", url, twilio.base_url, sendgrid.base_url], env=env
    )
    lines = [f"Campaign of {RECIPIENTS} recipients, one worker process ({_where(url)} PostgreSQL):"]
    try:
        await asyncio.sleep(2)
        for label, channel, provider in (
            ("outbox", Channel.SMS, None),
            ("twilio", Channel.SMS, ProviderKind.TWILIO),
            ("sendgrid", Channel.EMAIL, ProviderKind.SENDGRID),
        ):
            if label not in PROVIDERS:
                continue
            location = await container.tenancy().create_location(
                operator, NewLocation(name=f"Bench {label}", tier=PlanTier.ENTERPRISE), agency_id=agency.id
            )
            actor = Actor.operator_at(location.id)
            if provider is ProviderKind.TWILIO:
                config = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": FROM}
                await container.messaging_setup().set_provider(actor, channel, provider, config)
            elif provider is ProviderKind.SENDGRID:
                config = {"api_key": DEFAULT_API_KEY, "from_email": "news@bench.example"}
                await container.messaging_setup().set_provider(actor, channel, provider, config)
            async with container.engines().owner.begin() as conn:
                await conn.execute(_CONTACTS, {"location": location.id, "n": RECIPIENTS})
                await conn.execute(text("ANALYZE contacts"))
            content: dict[str, Any] = {"body": "Hi {{contact.first_name}}, our sale starts today!"}
            if channel is Channel.EMAIL:
                content |= {"subject": "Sale", "html": "<p>Hi {{contact.first_name}}</p>"}
            campaign = await container.campaigns().create(
                actor, {"name": label, "channel": channel.value, "audience": {"tags": ["blast"]}, **content}
            )
            started, cpu = time.perf_counter(), cpu_seconds(worker.pid)
            await container.campaigns().send(actor, campaign.id)
            await until_completed(container, actor, campaign.id)
            seconds = time.perf_counter() - started
            cpu = cpu_seconds(worker.pid) - cpu
            stats = await container.campaigns().stats(actor, campaign.id)
            assert stats.sent == RECIPIENTS, stats
            baseline, what = await _baseline(container, label, location.id, twilio, sendgrid)
            lines.append(
                f"  {label:<9} ours: {RECIPIENTS / seconds:8.0f} msg/s ({seconds:6.1f} s)   "
                f"baseline {what}: {RECIPIENTS / baseline:8.0f} msg/s ({baseline:6.1f} s)   "
                f"worker CPU {cpu * 1e6 / RECIPIENTS:5.0f} µs/msg ({cpu / seconds:4.0%} of a core)   "
                f"worker peak RSS {peak_rss_mib(worker.pid):6.0f} MiB   load {os.getloadavg()[0]:.1f}"
            )
            print(lines[-1], flush=True)
        print("\n".join(lines))
    finally:
        worker.terminate()
        worker.wait(60)
        twilio.stop()
        sendgrid.stop()
        await close_container(container)


async def _baseline(
    container: Any, label: str, location_id: uuid.UUID, twilio: TwilioDouble, sendgrid: SendGridDouble
) -> tuple[float, str]:
    if label == "twilio":
        gateway = TwilioSmsGateway(
            TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM),
            api_base=twilio.base_url,
        )
        try:
            return await bare_loop(
                lambda i: gateway.send_sms(
                    SmsMessage(key=str(i), to=f"+1415{2000000 + i:07d}", from_number=FROM, body=f"Hi {i}")
                ),
                RECIPIENTS,
            ), "bare SDK loop"
        finally:
            await gateway.aclose()
    if label == "sendgrid":
        sg = SendGridEmailGateway(
            SendGridConfig(api_key=DEFAULT_API_KEY, from_email="news@bench.example"),
            api_base=sendgrid.base_url,
        )

        def email(i: int) -> EmailMessage:
            return EmailMessage(
                key=str(uuid.uuid4()),
                to=f"bench{i}@example.com",
                from_email="news@bench.example",
                subject="Sale",
                text=f"Hi Bench {i}, our sale starts today!",
                html=f"<p>Hi Bench {i}</p>",
                headers={"List-Unsubscribe": f"<https://bench.example/unsubscribe/{i}>"},
                tags={"ghl_message": str(i)},
            )

        # The same calls as the campaign's: one bulk mail send per batch, as many in flight as lanes.
        gate = asyncio.Semaphore(DEFAULT_LANES)

        async def batch(start: int) -> None:
            async with gate:
                answers = await sg.send_emails(
                    [email(i) for i in range(start, min(start + DEFAULT_BATCH, RECIPIENTS))]
                )
            assert all(isinstance(a, SendResult) for a in answers)

        started = time.perf_counter()
        await asyncio.gather(*(batch(start) for start in range(0, RECIPIENTS, DEFAULT_BATCH)))
        return time.perf_counter() - started, "bare SDK loop (bulk)"
    started = time.perf_counter()
    async with container.engines().owner.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))  # rows only, no FK checks
        await conn.execute(
            text(
                "INSERT INTO messages (id, location_id, conversation_id, contact_id, channel, direction, "
                "status, source, body) SELECT gen_random_uuid(), :l, gen_random_uuid(), gen_random_uuid(), "
                "'sms', 'outbound', 'delivered', 'campaign', 'Hi' FROM generate_series(1, :n)"
            ),
            {"l": location_id, "n": RECIPIENTS},
        )
        await conn.execute(
            text(
                "DELETE FROM messages WHERE location_id = :l AND conversation_id NOT IN "
                "(SELECT id FROM conversations)"
            ),
            {"l": location_id},
        )
    return time.perf_counter() - started, "raw SQL rows"


def _where(url: str) -> str:
    return "embedded" if "host=" in url else "DATABASE_URL"


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    with bench_database() as url:
        asyncio.run(run(url))


if __name__ == "__main__":
    main()
