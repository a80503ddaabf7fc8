"""Rate limits per credential and per location by plan tier, with RateLimit-* headers and 429 +
Retry-After; the cap on a location's live API keys; limits the operator sets (GHL_PLAN_LIMITS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.plans import DEFAULT_PLAN_LIMITS, PlanLimitReached
from http_kit import API, Tenant, assert_problem, bearer, new_tenant, open_api, unique_email
from support import make_container

FREE = DEFAULT_PLAN_LIMITS[PlanTier.FREE]
FREE_BURST = FREE.api_burst


@pytest.fixture
async def free_tenant(container: Container) -> Tenant:
    return await new_tenant(container, PlanTier.FREE)


async def test_a_free_key_gets_a_burst_of_ten(api: httpx.AsyncClient, free_tenant: Tenant) -> None:
    remaining = []
    for _ in range(FREE_BURST):
        response = await api.get(f"{API}/location", headers=free_tenant.headers)
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-limit"] == str(FREE_BURST)
        remaining.append(int(response.headers["ratelimit-remaining"]))

    refused = await api.get(f"{API}/location", headers=free_tenant.headers)

    assert remaining == list(range(FREE_BURST - 1, -1, -1))
    assert_problem(refused, 429, "too_many_requests")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == str(FREE_BURST)
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["ratelimit-reset"]) >= 1
    assert "w=60" in refused.headers["ratelimit-policy"]


async def test_limits_are_per_credential(
    api: httpx.AsyncClient, container: Container, free_tenant: Tenant
) -> None:
    _, second_key = await container.api_keys().create(
        Actor.operator(), "second", location_id=free_tenant.location_id
    )
    other = await new_tenant(container, PlanTier.FREE)
    for _ in range(FREE_BURST + 1):
        await api.get(f"{API}/location", headers=free_tenant.headers)
    assert_problem(await api.get(f"{API}/location", headers=free_tenant.headers), 429)

    same_location = await api.get(f"{API}/location", headers=bearer(second_key))
    other_tenant = await api.get(f"{API}/location", headers=other.headers)

    for response in (same_location, other_tenant):
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-remaining"] == str(FREE_BURST - 1)


async def test_higher_tiers_get_bigger_buckets(api: httpx.AsyncClient, container: Container) -> None:
    pro = await new_tenant(container, PlanTier.PRO)
    enterprise = await new_tenant(container, PlanTier.ENTERPRISE)

    pro_response = await api.get(f"{API}/location", headers=pro.headers)
    enterprise_response = await api.get(f"{API}/location", headers=enterprise.headers)

    assert pro_response.headers["ratelimit-limit"] == "50"
    assert enterprise_response.headers["ratelimit-limit"] == "100"


async def test_errors_count_against_the_limit_too(api: httpx.AsyncClient, free_tenant: Tenant) -> None:
    for _ in range(FREE_BURST):
        response = await api.post(f"{API}/api-keys", json={"name": ""}, headers=free_tenant.headers)
        assert response.status_code == 422
        assert "ratelimit-remaining" in response.headers

    assert_problem(await api.get(f"{API}/location", headers=free_tenant.headers), 429)


async def test_public_endpoints_are_limited_per_client_address(container: Container) -> None:
    async with open_api(container) as api:
        for _ in range(FREE_BURST):
            response = await api.post(
                f"{API}/auth/login", json={"email": unique_email(), "password": "whatever-pass"}
            )
            assert response.status_code == 401, response.text
        refused = await api.post(f"{API}/auth/login", json={"email": unique_email(), "password": "x" * 12})

        assert_problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
    async with open_api(container) as elsewhere:
        other = await elsewhere.post(
            f"{API}/auth/login", json={"email": unique_email(), "password": "x" * 12}
        )
        assert other.status_code == 401


async def free_keys(container: Container, tenant: Tenant, count: int) -> list[str]:
    """The tenant's key and `count - 1` more of the same location."""
    secrets = [tenant.api_key]
    for i in range(count - 1):
        _, secret = await container.api_keys().create(
            Actor.operator(), f"extra {i}", location_id=tenant.location_id
        )
        secrets.append(secret)
    return secrets


async def test_more_keys_do_not_buy_more_requests(
    api: httpx.AsyncClient, container: Container, free_tenant: Tenant
) -> None:
    """Every key of a free location together gets the location's burst, not one burst per key."""
    keys = await free_keys(container, free_tenant, FREE.api_keys)
    answers = [
        await api.get(f"{API}/location", headers=bearer(key)) for _ in range(FREE_BURST) for key in keys
    ]

    allowed = [r for r in answers if r.status_code == 200]
    assert len(allowed) == FREE.location_burst < FREE_BURST * len(keys)
    refused = next(r for r in answers if r.status_code != 200)
    body = assert_problem(refused, 429, "too_many_requests")
    assert "location" in body["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    # The headers describe the bucket that refused: the location's.
    assert refused.headers["ratelimit-limit"] == str(FREE.location_burst)
    assert f"rate={FREE.location_per_minute}" in refused.headers["ratelimit-policy"]
    # Another location of the same tier is not held back by this one.
    other = await new_tenant(container, PlanTier.FREE)
    assert (await api.get(f"{API}/location", headers=other.headers)).status_code == 200


async def test_a_location_holds_at_most_its_plans_live_keys(
    api: httpx.AsyncClient, container: Container, free_tenant: Tenant
) -> None:
    await free_keys(container, free_tenant, FREE.api_keys)

    refused = await api.post(f"{API}/api-keys", json={"name": "one too many"}, headers=free_tenant.headers)

    body = assert_problem(refused, 409, "plan_limit")
    assert (body["limit"], body["tier"], body["allowed"]) == ("api_keys", "free", FREE.api_keys)
    assert "revoke" in body["detail"]
    listed = (await api.get(f"{API}/api-keys", headers=free_tenant.headers)).json()
    assert len(listed["items"]) == FREE.api_keys  # nothing was created
    # Revoking one makes room for one.
    await api.delete(f"{API}/api-keys/{listed['items'][-1]['id']}", headers=free_tenant.headers)
    made = await api.post(f"{API}/api-keys", json={"name": "replacement"}, headers=free_tenant.headers)
    assert made.status_code == 201, made.text


async def test_concurrent_creates_cannot_pass_the_key_cap_together(
    container: Container, free_tenant: Tenant
) -> None:
    await free_keys(container, free_tenant, FREE.api_keys - 1)
    service = container.api_keys()

    outcomes = await asyncio.gather(
        *(
            service.create(Actor.operator(), f"racer {i}", location_id=free_tenant.location_id)
            for i in range(4)
        ),
        return_exceptions=True,
    )

    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, PlanLimitReached) for o in outcomes if isinstance(o, BaseException))


@pytest.fixture
async def tight_container(settings: Settings) -> AsyncIterator[Container]:
    """Limits the operator set: a free location's bucket of 3 and room for 2 keys."""
    built = make_container(
        settings.model_copy(update={"plan_limits": {"free": {"location_burst": 3, "api_keys": 2}}})
    )
    try:
        yield built
    finally:
        await close_container(built)


async def test_the_operator_sets_the_limits(tight_container: Container) -> None:
    tenant = await new_tenant(tight_container, PlanTier.FREE)
    keys = await free_keys(tight_container, tenant, 2)
    async with open_api(tight_container) as api:
        answers = [await api.get(f"{API}/location", headers=bearer(key)) for key in keys * 2]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[0].headers["ratelimit-limit"] == "3"  # the location's bucket, the tighter one
    with pytest.raises(PlanLimitReached) as raised:
        await tight_container.api_keys().create(Actor.operator(), "third", location_id=tenant.location_id)
    assert raised.value.allowed == 2
