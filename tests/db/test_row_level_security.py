"""Row-level security proved at the database level, beneath the services."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from ghl_adapters.container import Container
from ghl_adapters.sql.audit import SqlAuditLog
from ghl_adapters.sql.engines import APP_ROLE
from ghl_adapters.sql.identity import SqlApiKeyRepository
from ghl_adapters.sql.repositories import SqlLocationRepository
from ghl_core.shared.pagination import PageRequest
from ghl_core.shared.scope import TenantScope
from support import Tenant

TENANT_TABLES = [
    "agencies",
    "locations",
    "users",
    "user_location_grants",
    "api_keys",
    "refresh_tokens",
    "audit_log",
    "domain_events",
    "idempotency_keys",
]


async def test_app_role_owns_nothing_and_cannot_bypass(container: Container) -> None:
    async with container.engines().app.connect() as conn:
        who = (await conn.execute(text("SELECT current_user, session_user"))).one()
        assert who[0] == APP_ROLE
        role = (
            await conn.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
        assert role == (False, False)
        owned = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                    "WHERE r.rolname = :r"
                ),
                {"r": APP_ROLE},
            )
        ).scalar_one()
        assert owned == 0


async def test_every_tenant_table_forces_row_level_security(container: Container) -> None:
    async with container.engines().owner.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                    "WHERE relname = ANY(:t)"
                ),
                {"t": TENANT_TABLES},
            )
        ).all()
    assert {r.relname for r in rows} == set(TENANT_TABLES)
    assert all(r.relrowsecurity and r.relforcerowsecurity for r in rows)


async def test_no_location_set_sees_no_rows(container: Container, tenant: Tenant) -> None:
    async with container.engines().app.connect() as conn:
        for table in TENANT_TABLES:
            count = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            assert count == 0, table
    # The same rows exist: the owner sees them.
    async with container.engines().owner.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM api_keys"))).scalar_one() >= 1


async def test_location_session_cannot_read_or_write_another_locations_rows(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with container.uow()(TenantScope.location(tenant.location_id)) as uow:
        conn = uow.connection
        mine = (await conn.execute(text("SELECT count(*) FROM api_keys"))).scalar_one()
        assert mine == 1
        theirs = (
            await conn.execute(
                text("SELECT count(*) FROM api_keys WHERE location_id = :l"), {"l": other_tenant.location_id}
            )
        ).scalar_one()
        assert theirs == 0
        updated = await conn.execute(
            text("UPDATE api_keys SET name = 'stolen' WHERE location_id = :l"),
            {"l": other_tenant.location_id},
        )
        assert updated.rowcount == 0
        with pytest.raises(ProgrammingError, match="row-level security"):
            await conn.execute(
                text(
                    "INSERT INTO api_keys (id, location_id, agency_id, name, prefix, key_hash, scopes) "
                    "VALUES (:i, :l, :a, 'x', 'x', :h, '{}')"
                ),
                {
                    "i": uuid.uuid4(),
                    "l": other_tenant.location_id,
                    "a": other_tenant.agency_id,
                    "h": uuid.uuid4().hex,
                },
            )


async def test_a_repository_bug_cannot_leak_across_tenants(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with container.uow()(TenantScope.operator()) as uow:
        their_keys = await uow.api_keys.list(other_tenant.location_id, PageRequest())
    their_key_id = their_keys.items[0].id
    async with container.uow()(TenantScope.location(tenant.location_id)) as uow:
        # A buggy caller passing the other tenant's ids straight to the repositories gets nothing.
        conn = uow.connection
        assert await SqlApiKeyRepository(conn).get(their_key_id) is None
        listed = await SqlApiKeyRepository(conn).list(other_tenant.location_id, PageRequest())
        assert listed.items == []
        everyone = await SqlLocationRepository(conn).list(None, PageRequest(limit=100))
        assert [loc.id for loc in everyone.items] == [tenant.location_id]
        audit = await SqlAuditLog(conn).list(other_tenant.location_id, PageRequest())
        assert audit.items == []


async def test_agency_session_sees_only_its_agency(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with container.uow()(TenantScope.agency(tenant.agency_id)) as uow:
        conn = uow.connection
        agencies = (await conn.execute(text("SELECT id FROM agencies"))).scalars().all()
        assert agencies == [tenant.agency_id]
        locations = (await conn.execute(text("SELECT id FROM locations"))).scalars().all()
        assert locations == [tenant.location_id]
        # Location-owned credentials stay invisible even to the agency scope.
        assert (await conn.execute(text("SELECT count(*) FROM api_keys"))).scalar_one() == 0


async def test_audit_log_is_append_only_for_the_application(container: Container, tenant: Tenant) -> None:
    async with container.uow()(TenantScope.location(tenant.location_id)) as uow:
        conn = uow.connection
        assert (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar_one() >= 1
        with pytest.raises(ProgrammingError, match="permission denied"):
            await conn.execute(text("DELETE FROM audit_log"))


async def test_anonymous_scope_reaches_only_the_narrow_lookups(container: Container, tenant: Tenant) -> None:
    async with container.uow()(TenantScope.anonymous()) as uow:
        conn = uow.connection
        assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0
        found = await uow.credentials.api_key("0" * 64)
        assert found is None


async def test_the_application_cannot_become_the_owner(container: Container) -> None:
    async with container.engines().owner.connect() as conn:
        owner = (await conn.execute(text("SELECT current_user"))).scalar_one()
    async with container.engines().app.connect() as conn:
        assert (await conn.execute(text("SELECT session_user"))).scalar_one() == APP_ROLE
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text(f'SET ROLE "{owner}"'))
    async with container.engines().app.connect() as conn:
        await conn.execute(text("RESET ROLE"))
        assert (await conn.execute(text("SELECT current_user"))).scalar_one() == APP_ROLE
        assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0


async def test_settings_end_with_the_transaction(container: Container, tenant: Tenant) -> None:
    async with container.engines().app.connect() as conn:
        async with conn.begin():
            await conn.execute(
                text("SELECT set_config('app.location_id', :l, true)"), {"l": str(tenant.location_id)}
            )
            assert (await conn.execute(text("SELECT count(*) FROM api_keys"))).scalar_one() == 1
        assert (await conn.execute(text("SELECT count(*) FROM api_keys"))).scalar_one() == 0
