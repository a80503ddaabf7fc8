"""Row-level security of the inbound webhook tables, and the one look-up the unauthenticated path makes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from standardwebhooks import Webhook

from ghl_adapters.container import Container
from ghl_core.inbound.models import InboundRequest
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.permissions import Actor
from support import Tenant

TABLES = ("inbound_endpoints", "inbound_events")


async def test_inbound_tables_are_forced_and_scoped(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with container.engines().owner.connect() as conn:
        flags = (
            await conn.execute(
                text(
                    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                    "WHERE relname IN ('inbound_endpoints', 'inbound_events') ORDER BY relname"
                )
            )
        ).all()
    assert [tuple(f) for f in flags] == [(name, True, True) for name in TABLES]

    endpoint, secret = await container.inbound_endpoints().create(
        Actor.operator_at(tenant.location_id), {"name": "Hook"}
    )
    target = await container.inbound_endpoints().target(endpoint.id)
    now = datetime.now(UTC)
    body = '{"a": 1}'
    msg_id = f"msg_{uuid.uuid4().hex}"
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }
    receipt = await container.inbound().receive(
        target, InboundRequest("POST", "https://x/hook", headers, body.encode())
    )
    assert receipt.event_id is not None

    for scope, expected in (
        (TenantScope.location(tenant.location_id), 1),
        (TenantScope.location(other_tenant.location_id), 0),
        (TenantScope.anonymous(), 0),
    ):
        async with container.uow()(scope) as uow:
            for table in TABLES:
                seen = (
                    await uow.connection.execute(
                        text(f"SELECT count(*) FROM {table} WHERE location_id = :l"),
                        {"l": tenant.location_id},
                    )
                ).scalar_one()
                assert seen == expected, (table, scope)
            # Another location cannot write into this one's rows either.
            if scope.location_id == other_tenant.location_id:
                changed = await uow.connection.execute(
                    text("UPDATE inbound_events SET status = 'failed' WHERE id = :e"), {"e": receipt.event_id}
                )
                assert changed.rowcount == 0
    # The anonymous scope reads no row, yet may ask the narrow look-up about one endpoint.
    async with container.uow()(TenantScope.anonymous()) as uow:
        key = await uow.inbound_endpoints.lookup(endpoint.id)
        assert key is not None
        assert key.location_id == tenant.location_id
        assert key.active is True
        assert await uow.inbound_endpoints.lookup(uuid.uuid4()) is None
