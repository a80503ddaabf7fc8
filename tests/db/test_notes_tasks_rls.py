"""Row-level security of the notes and tasks tables, beneath the services."""

from __future__ import annotations

from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_core.shared.scope import TenantScope
from support import Tenant, open_api


async def test_notes_and_tasks_are_forced_and_scoped(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with container.engines().owner.connect() as conn:
        flags = (
            await conn.execute(
                text(
                    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                    "WHERE relname IN ('notes', 'tasks') ORDER BY relname"
                )
            )
        ).all()
    assert [tuple(f) for f in flags] == [("notes", True, True), ("tasks", True, True)]

    async with open_api(container) as api:
        contact = (
            await api.post("/api/v1/contacts", headers=tenant.headers, json={"first_name": "Rita"})
        ).json()
        base = f"/api/v1/contacts/{contact['id']}"
        assert (
            await api.post(f"{base}/notes", headers=tenant.headers, json={"body": "x"})
        ).status_code == 201
        assert (
            await api.post(f"{base}/tasks", headers=tenant.headers, json={"title": "x"})
        ).status_code == 201

    for scope, expected in (
        (TenantScope.location(tenant.location_id), 1),
        (TenantScope.location(other_tenant.location_id), 0),
    ):
        async with container.uow()(scope) as uow:
            conn = uow.connection
            for table in ("notes", "tasks"):
                seen = (
                    await conn.execute(
                        text(f"SELECT count(*) FROM {table} WHERE contact_id = :c"),
                        {"c": contact["id"]},
                    )
                ).scalar_one()
                assert seen == expected, (table, scope)
    # Without a location in scope the application role sees no row at all.
    async with container.engines().app.connect() as conn:
        for table in ("notes", "tasks"):
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0
