"""A write made by another process (the `ghl` command line, a second server) reaches this process's
cache at once: through Redis pub/sub when REDIS_URL is set, through PostgreSQL LISTEN/NOTIFY otherwise.

The other process is a real Python process building its own container from the same settings; once it
has exited, this process's cached read must answer the new state. The only wait is for the invalidation
message to be delivered (bounded), never for a TTL to run out."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_core.identity.secrets import secret_hash
from ghl_core.shared.cache import api_key_cache_key, custom_fields_cache_key, user_cache_key
from ghl_core.shared.errors import Unauthenticated
from ghl_core.tenancy.models import AgencyRole
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewUser
from support import make_container, new_tenant

PASSWORD = "correct horse battery staple"

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, uuid
    from ghl_adapters.container import build_container, close_container
    from ghl_adapters.settings import load_settings
    from ghl_core.tenancy.permissions import Actor

    async def main(action: str, location: str, target: str) -> None:
        settings = load_settings()
        container = build_container(settings, settings.database_url)
        try:
            if action == "revoke":
                await container.api_keys().revoke(Actor.operator(), uuid.UUID(target))
            elif action == "remove_user":
                await container.tenancy().delete_user(Actor.operator(), uuid.UUID(target))
            else:
                await container.custom_field_service().create(
                    Actor.operator_at(uuid.UUID(location)),
                    {"key": "vip_level", "label": "VIP level", "type": "number"},
                )
        finally:
            await close_container(container)

    asyncio.run(main(*sys.argv[1:]))
    """
)

MODES = ["postgres", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=MODES)
async def local(
    request: pytest.FixtureRequest, settings: Settings, redis_url: str | None
) -> AsyncIterator[Container]:
    if request.param == "redis" and not redis_url:
        pytest.skip("REDIS_URL is not set")
    own = settings.model_copy(update={"redis_url": redis_url if request.param == "redis" else None})
    container = make_container(own)
    try:
        yield container
    finally:
        await close_container(container)


def run_other_process(settings: Settings, tmp_path: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "REDIS_URL", "DATABASE_URL"))}
    assert settings.database_url
    assert settings.secret_key
    env |= {
        "DATABASE_URL": settings.database_url,
        "GHL_SECRET_KEY": settings.secret_key.get_secret_value(),
        "GHL_DATA_DIR": str(tmp_path),
        "GHL_LOG_JSON": "false",
    }
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SCRIPT, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


async def listening(container: Container) -> None:
    """The first read starts this process's subscription; wait (bounded) until it is up."""
    bus = container.cache_bus()
    assert bus is not None
    await container.cache().get("warm-up")
    for _ in range(500):
        if bus.connected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the invalidation bus never connected")


async def test_a_key_revoked_by_another_process_stops_here_at_once(local: Container, tmp_path: Path) -> None:
    tenant = await new_tenant(local)
    await listening(local)
    auth = local.auth()
    actor = await auth.authenticate(tenant.api_key)
    assert await local.cache().get(api_key_cache_key(secret_hash(tenant.api_key))) is not None

    run_other_process(local.settings(), tmp_path, "revoke", str(tenant.location_id), str(actor.id))

    # The message may still be in flight when the process exits: wait for it, for at most 5 s.
    for _ in range(500):
        try:
            await auth.authenticate(tenant.api_key)
        except Unauthenticated:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the revoked key still works in this process")


async def test_a_user_removed_by_another_process_is_refused_here_at_once(
    local: Container, tmp_path: Path
) -> None:
    tenant = await new_tenant(local)
    email = f"gone.{uuid.uuid4().hex[:8]}@example.com"
    user = await local.tenancy().create_user(
        Actor.operator(), NewUser(email, "Gone Soon", AgencyRole.ADMIN, PASSWORD), agency_id=tenant.agency_id
    )
    await listening(local)
    auth = local.auth()
    token = (await auth.log_in(email, PASSWORD)).access_token
    await auth.authenticate(token)
    assert await local.cache().get(user_cache_key(user.id)) is not None

    run_other_process(local.settings(), tmp_path, "remove_user", str(tenant.location_id), str(user.id))

    for _ in range(500):
        try:
            await auth.authenticate(token)
        except Unauthenticated:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the removed user's access token still works in this process")


async def test_a_field_defined_by_another_process_is_seen_here_at_once(
    local: Container, tmp_path: Path
) -> None:
    tenant = await new_tenant(local)
    await listening(local)
    actor = await local.auth().authenticate(tenant.api_key)
    fields = local.custom_field_service()
    assert [d.key for d in await fields.list(actor)] == []
    assert await local.cache().get(custom_fields_cache_key(tenant.location_id)) is not None

    run_other_process(local.settings(), tmp_path, "define", str(tenant.location_id), str(tenant.agency_id))

    for _ in range(500):
        if [d.key for d in await fields.list(actor)] == ["vip_level"]:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("this process still answers the old definitions")
